import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { CsvSource } from '../../../src/config/schema.js';
import type { SourceRecord } from '../../../src/core/record.js';
import { csvParseOptions, csvSource, parseCsvChunks } from '../../../src/extract/csv.js';
import { ndjsonSource } from '../../../src/extract/ndjson.js';
import { NdjsonSource } from '../../../src/config/schema.js';
import type { RunWarning } from '../../../src/core/errors.js';
import { collect, context, withTempDir } from './helpers.js';

/** Parse `bytes` fed `step` bytes at a time. */
async function parse(bytes: Buffer, options: Record<string, unknown>, step = bytes.length): Promise<SourceRecord[]> {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += step) yield bytes.subarray(i, i + step);
  }
  const out: SourceRecord[] = [];
  for await (const batch of parseCsvChunks({ chunks: chunks(), source: 'f.csv', firstSeq: 0 }, options)) out.push(...batch);
  return out;
}

const TEXT = 'name,city\r\nZoë,Zürich\r\n"Lefèvre, F.","Besançon\r\nFrance"\r\nAnn,Boston\r\n';

describe('csv encodings', () => {
  for (const step of [1, 2, 5, 4096]) {
    it(`encoding: windows-1252 is transcoded (chunks of ${step} bytes): rows, lines, no offsets`, async () => {
      const records = await parse(iconv.encode(TEXT, 'windows-1252'), { encoding: 'windows-1252' }, step);
      expect(records.map((r) => [r.row, r.pos.line, r.pos.offset])).toEqual([
        [{ name: 'Zoë', city: 'Zürich' }, 2, undefined],
        [{ name: 'Lefèvre, F.', city: 'Besançon\r\nFrance' }, 3, undefined],
        [{ name: 'Ann', city: 'Boston' }, 5, undefined],
      ]);
    });

    it(`UTF-16LE and UTF-16BE files are read by their BOM whatever encoding says (chunks of ${step} bytes)`, async () => {
      for (const [bom, enc] of [
        [[0xff, 0xfe], 'utf-16le'],
        [[0xfe, 0xff], 'utf-16be'],
      ] as const) {
        const records = await parse(Buffer.concat([Buffer.from(bom), iconv.encode(TEXT, enc)]), { encoding: 'latin1' }, step);
        expect(records.map((r) => r.row.name)).toEqual(['Zoë', 'Lefèvre, F.', 'Ann']);
      }
    });

    it(`bytes that are not UTF-8 in a UTF-8 file are INVALID_ENCODING rejects at their line (chunks of ${step} bytes)`, async () => {
      const bytes = Buffer.concat([Buffer.from('name,city\nZoë,Zürich\n'), Buffer.from([0x4a, 0x6f, 0xe9, 0x2c, 0x58, 0x0a]), Buffer.from('"a\n\xff",b\nAnn,Boston\n', 'latin1')]);
      const records = await parse(bytes, {}, step);
      expect(records.map((r) => [r.error?.code, r.pos.line])).toEqual([
        [undefined, 2],
        ['INVALID_ENCODING', 3],
        ['INVALID_ENCODING', 4],
        [undefined, 6],
      ]);
      expect(records[1]!.error!.message).toMatch(/Line 3 holds bytes that are not UTF-8 \(byte 0xE9 at byte 3 of the row\).*set `encoding`/);
      expect(records[1]!.row).toEqual({});
      expect(records[0]!.row).toEqual({ name: 'Zoë', city: 'Zürich' });
    });
  }

  it('a U+FFFD written in the file (valid UTF-8) is not an error', async () => {
    const records = await parse(Buffer.from('a,b\n\ufffd,x\n'), {});
    expect(records).toMatchObject([{ row: { a: '\ufffd', b: 'x' } }]);
    expect(records[0]!.error).toBeUndefined();
  });

  it('a header that is not UTF-8 fails the file with SOURCE_READ and the encoding hint', async () => {
    await expect(parse(Buffer.from('name,ville\xe9\nA,B\n', 'latin1'), {})).rejects.toMatchObject({ code: 'SOURCE_READ', message: expect.stringMatching(/header.*not UTF-8.*windows-1252/) });
  });

  it('a resume in a transcoded file skips by line (the file is read again from its start)', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'in.csv'), iconv.encode(TEXT, 'windows-1252'));
      const config = CsvSource.parse({ type: 'csv', path: 'in.csv', encoding: 'windows-1252' });
      const fresh = await collect(csvSource.create(config, context(dir)));
      const resumed = await collect(csvSource.create(config, context(dir, { startAfter: fresh[0]!.pos })));
      expect(resumed).toEqual(fresh.slice(1));
    });
  });

  it('encoding accepts the names people have and refuses unknown ones; delimiter tab and \\t are a tab', () => {
    for (const encoding of ['windows-1252', 'cp1252', 'latin1', 'ISO-8859-15', 'utf-16le', 'UTF-8', 'shift_jis']) {
      expect(CsvSource.safeParse({ type: 'csv', path: 'x', encoding }).success, encoding).toBe(true);
    }
    expect(CsvSource.safeParse({ type: 'csv', path: 'x', encoding: 'klingon' }).success).toBe(false);
    for (const delimiter of ['tab', '\\t', '\t']) expect(csvParseOptions(CsvSource.parse({ type: 'csv', path: 'x', delimiter })).delimiter).toBe('\t');
  });

  it('empty and header-only files warn SOURCE_FILE_EMPTY / SOURCE_FILE_NO_ROWS (csv and ndjson)', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), '');
      await writeFile(join(dir, 'b.csv'), 'email,name\n');
      await writeFile(join(dir, 'c.csv'), 'email,name\nx@example.com,X\n');
      await writeFile(join(dir, 'a.ndjson'), '\n\n');
      const warnings: RunWarning[] = [];
      const warn = (w: RunWarning) => warnings.push(w);
      expect(await collect(csvSource.create(CsvSource.parse({ type: 'csv', path: '*.csv' }), context(dir, { warn })))).toHaveLength(1);
      expect(await collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: '*.ndjson' }), context(dir, { warn })))).toHaveLength(0);
      expect(warnings.map((w) => [w.code, w.file])).toEqual([
        ['SOURCE_FILE_EMPTY', 'a.csv'],
        ['SOURCE_FILE_NO_ROWS', 'b.csv'],
        ['SOURCE_FILE_NO_ROWS', 'a.ndjson'],
      ]);
    });
  });

  it('ndjson: a line that is not UTF-8 is an INVALID_ENCODING reject', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.ndjson'), Buffer.concat([Buffer.from('{"a":"ok"}\n{"a":"'), Buffer.from([0xe9]), Buffer.from('"}\n{"a":"é"}\n')]));
      const records = await collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: 'a.ndjson' }), context(dir)));
      expect(records.map((r) => r.error?.code ?? r.row.a)).toEqual(['ok', 'INVALID_ENCODING', 'é']);
    });
  });
});
