import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { NdjsonSource } from '../../../src/config/schema.js';
import type { SourceRecord } from '../../../src/core/record.js';
import type { FilesWatermark } from '../../../src/extract/files.js';
import { ndjsonSource, parseNdjsonChunks } from '../../../src/extract/ndjson.js';
import type { ExtractContext } from '../../../src/extract/types.js';
import { FIXTURES, collect, context, lineAt, withTempDir } from './helpers.js';

async function read(baseDir: string, path: string | string[], extra: Partial<ExtractContext> = {}): Promise<SourceRecord[]> {
  return collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path }), context(baseDir, extra)));
}

describe('ndjson source', () => {
  it('NDJSON errors: blank lines skipped, bad JSON and non-objects are NDJSON_PARSE_ERROR records at their line', async () => {
    const records = await read(FIXTURES, 'small/events.ndjson');
    expect(records.map((r) => [r.pos.seq, r.pos.line, r.error?.code ?? r.row.event])).toEqual([
      [0, 1, 'Viewed Product'],
      [1, 3, 'Added to Cart'],
      [2, 4, 'NDJSON_PARSE_ERROR'],
      [3, 5, 'NDJSON_PARSE_ERROR'],
      [4, 7, 'Placed Order'],
    ]);
    expect(records[1]!.row.value).toBe(35);
    expect(records[2]!.raw).toBe('{"email": broken json');
    expect(records[3]!.error!.message).toContain('array');
  });

  it('positions: offsets slice the file at each record, lines match', async () => {
    const file = readFileSync(join(FIXTURES, 'small/events.ndjson'));
    const records = await read(FIXTURES, 'small/events.ndjson');
    for (const r of records) {
      expect(file.subarray(r.pos.offset!, r.pos.offset! + Buffer.byteLength(r.raw!)).toString()).toBe(r.raw);
      expect(r.pos.line).toBe(lineAt(file, r.pos.offset!));
    }
  });

  it('BOM and CRLF: removed; a last line without a line break is read', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.ndjson'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\r\n{"a":"é"}')]));
      const records = await read(dir, 'a.ndjson');
      expect(records.map((r) => [r.row, r.pos.line, r.pos.offset, r.raw])).toEqual([
        [{ a: 1 }, 1, 3, '{"a":1}'],
        [{ a: 'é' }, 2, 12, '{"a":"é"}'],
      ]);
    });
  });

  it('gz and glob order: decompressed, sorted, seq continuous', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'b.ndjson'), '{"n":3}\n');
      await writeFile(join(dir, 'a.ndjson.gz'), gzipSync('{"n":1}\n{"n":2}\n'));
      const records = await read(dir, '*.ndjson*');
      expect(records.map((r) => [r.pos.seq, r.pos.source, r.row.n, r.pos.offset])).toEqual([
        [0, 'a.ndjson.gz', 1, 0],
        [1, 'a.ndjson.gz', 2, 8],
        [2, 'b.ndjson', 3, 0],
      ]);
    });
  });

  it('resume via startAfter: plain and gz give the same records as a fresh run', async () => {
    await withTempDir(async (dir) => {
      const text = readFileSync(join(FIXTURES, 'small/events.ndjson'));
      await writeFile(join(dir, 'a.ndjson'), text);
      await writeFile(join(dir, 'b.ndjson.gz'), gzipSync(text));
      const fresh = await read(dir, ['a.ndjson', 'b.ndjson.gz']);
      expect(fresh).toHaveLength(10);
      for (const k of [0, 2, 4, 6, 9]) {
        expect(await read(dir, ['a.ndjson', 'b.ndjson.gz'], { startAfter: fresh[k]!.pos })).toEqual(fresh.slice(k + 1));
      }
    });
  });

  it('watermark: unchanged files are skipped on the next run', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.ndjson'), '{"n":1}\n');
      const first = ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: 'a.ndjson' }), context(dir));
      expect(await collect(first)).toHaveLength(1);
      const mark = first.watermark!() as FilesWatermark;
      expect(mark.files).toHaveLength(1);
      expect(await read(dir, 'a.ndjson', { watermark: mark })).toEqual([]);
    });
  });

  it('a long line is joined once, not once per chunk (linear time: issue 16, 8 MB lines took 3.4 s, 32 MB 40.6 s)', async () => {
    const value = 'x'.repeat(8 * 1024 * 1024);
    const text = Buffer.from(`{"a":1}\n{"long":"${value}"}\n{"b":2}\n{"tail":"${value}"}`);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < text.length; i += 64 * 1024) yield text.subarray(i, i + 64 * 1024);
    }
    const concat = vi.spyOn(Buffer, 'concat');
    let copied = 0;
    concat.mockImplementation(((list: readonly Uint8Array[], total?: number) => {
      const out = Buffer.allocUnsafe(total ?? list.reduce((n, b) => n + b.length, 0));
      let at = 0;
      for (const b of list) {
        out.set(b, at);
        at += b.length;
      }
      copied += at;
      return out;
    }) as typeof Buffer.concat);
    const records: unknown[] = [];
    try {
      for await (const batch of parseNdjsonChunks({ chunks: chunks(), source: 'long.ndjson', firstSeq: 0 })) records.push(...batch.map((r) => r.row));
    } finally {
      concat.mockRestore();
    }
    expect(records).toEqual([{ a: 1 }, { long: value }, { b: 2 }, { tail: value }]);
    // Each byte of the two long lines is copied about once (joining per chunk copied 128 chunks' worth each time: ~64x more).
    expect(copied).toBeLessThan(2 * text.length);
  });
});
