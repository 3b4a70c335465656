import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NdjsonSource } from '../../../src/config/schema.js';
import { MAX_ROW_CHARS, MAX_ROW_DEPTH, guardRecord, rowLimitError } from '../../../src/extract/limits.js';
import { getExtractor } from '../../../src/extract/registry.js';
import { collect, context, withTempDir } from './helpers.js';

/** Issue 16: one hostile value (nested 5,000 deep) rejects its row instead of failing every run at the same row. */

function nested(depth: number, array = false): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = array ? [v] : { a: v };
  return v;
}

describe('row limits', () => {
  it('depth: a row within the limit passes; one value nested deeper (object or array) is VALUE_TOO_DEEP', () => {
    expect(rowLimitError({ p: nested(MAX_ROW_DEPTH - 1) })).toBeUndefined();
    expect(rowLimitError({ p: nested(MAX_ROW_DEPTH) })?.code).toBe('VALUE_TOO_DEEP');
    expect(rowLimitError({ p: nested(100_000) })?.code).toBe('VALUE_TOO_DEEP');
    expect(rowLimitError({ x: 1, p: [1, 2, { q: nested(5_000, true) }] })?.code).toBe('VALUE_TOO_DEEP');
    expect(rowLimitError({ when: new Date(), n: 1, s: 'x', none: null })).toBeUndefined();
  });

  it('size: strings adding up to more than the limit are RECORD_TOO_LARGE, flat or nested', () => {
    const big = 'x'.repeat(MAX_ROW_CHARS / 2 + 1);
    expect(rowLimitError({ a: big })).toBeUndefined();
    expect(rowLimitError({ a: big, b: big })?.code).toBe('RECORD_TOO_LARGE');
    expect(rowLimitError({ a: { b: [big, big] } })?.code).toBe('RECORD_TOO_LARGE');
  });

  it('a rejected record keeps its position and raw text (cut at 64 Ki characters), not its row', () => {
    const raw = 'r'.repeat(100_000);
    const out = guardRecord({ pos: { seq: 4, source: 'a.ndjson', line: 5, offset: 9 }, row: { p: nested(50) }, raw });
    expect(out).toEqual({
      pos: { seq: 4, source: 'a.ndjson', line: 5, offset: 9 },
      row: {},
      raw: raw.slice(0, 65_536) + '…',
      error: { code: 'VALUE_TOO_DEEP', message: expect.stringContaining('nested more than 32 levels') },
    });
    const fine = { pos: { seq: 0, source: 'x' }, row: { a: '1' } };
    expect(guardRecord(fine)).toBe(fine);
  });

  it('every source from the registry rejects such a row and reads on (ndjson, 5,000 deep)', async () => {
    await withTempDir(async (dir) => {
      const deep = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
      await writeFile(join(dir, 'a.ndjson'), `{"id":1}\n{"id":2,"p":${deep}}\n{"id":3}\n`);
      const reader = getExtractor('ndjson').create(NdjsonSource.parse({ type: 'ndjson', path: 'a.ndjson' }), context(dir));
      const records = await collect(reader);
      expect(records.map((r) => [r.pos.line, r.error?.code ?? r.row.id])).toEqual([
        [1, 1],
        [2, 'VALUE_TOO_DEEP'],
        [3, 3],
      ]);
      const batches = [];
      for await (const batch of reader.batches!()) batches.push(...batch.map((r) => r.error?.code ?? r.row.id));
      expect(batches).toEqual([1, 'VALUE_TOO_DEEP', 3]);
    });
  });
});
