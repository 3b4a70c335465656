import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CsvSource, type CsvSourceConfig } from '../../../src/config/schema.js';
import { isEtlError } from '../../../src/core/errors.js';
import type { SourceRecord } from '../../../src/core/record.js';
import { CsvChunkParser, csvSource } from '../../../src/extract/csv.js';
import type { FilesWatermark } from '../../../src/extract/files.js';
import type { ExtractContext } from '../../../src/extract/types.js';
import { FIXTURES, collect, context, lineAt, memoryLogger, withTempDir } from './helpers.js';

function config(input: Record<string, unknown>): CsvSourceConfig {
  return CsvSource.parse({ type: 'csv', ...input });
}

async function read(baseDir: string, input: Record<string, unknown>, extra: Partial<ExtractContext> = {}): Promise<SourceRecord[]> {
  return collect(csvSource.create(config(input), context(baseDir, extra)));
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isEtlError(error), `expected EtlError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

/** Every record's offset points at its raw text and its line is the line of that offset. */
function expectPositions(file: Buffer, records: SourceRecord[]): void {
  for (const r of records) {
    const raw = r.raw!;
    expect(file.subarray(r.pos.offset!, r.pos.offset! + Buffer.byteLength(raw)).toString('utf8'), `record ${r.pos.seq}`).toBe(raw);
    expect(r.pos.line, `line of record ${r.pos.seq}`).toBe(lineAt(file, r.pos.offset!));
  }
}

describe('csv source', () => {
  it('header: the first line names the columns', async () => {
    const records = await read(FIXTURES, { path: 'customers.csv' });
    expect(records).toHaveLength(30);
    expect(records[0]!.row).toMatchObject({ email: 'ava.thompson@example.com', phone: '(415) 555-0132', signup_date: '03/14/2021' });
    expect(records[29]!.row.company).toBe('Ross "The Boss" Consulting');
    expect(records.map((r) => r.pos.seq)).toEqual([...Array(30).keys()]);
    expect(records.every((r) => r.error === undefined && r.pos.source === 'customers.csv')).toBe(true);
  });

  it('header: given column names for a file without a header line', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), 'a@example.com,Ann\nb@example.com,Bob\n');
      const records = await read(dir, { path: 'a.csv', header: ['email', 'name'] });
      expect(records.map((r) => r.row)).toEqual([
        { email: 'a@example.com', name: 'Ann' },
        { email: 'b@example.com', name: 'Bob' },
      ]);
      expect(records[0]!.pos.line).toBe(1);
      expect(records[0]!.pos.offset).toBe(0);
    });
  });

  it('header: unusual column names (quotes, backslash, __proto__, duplicates) become own keys', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'h.csv'), '"a ""q""",b\\c,__proto__,dup,dup\n1,2,3,4,5\n');
      const records = await read(dir, { path: 'h.csv' });
      const row = records[0]!.row;
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(Object.keys(row)).toEqual(['a "q"', 'b\\c', '__proto__', 'dup']);
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe('3');
      expect(row.dup).toBe('5');
    });
  });

  it('delimiter: semicolons (and encoding: latin1)', async () => {
    const records = await read(FIXTURES, { path: 'small/customers-latin1.csv', delimiter: ';', encoding: 'latin1' });
    expect(records.map((r) => r.row.last_name)).toEqual(['García', 'Walker', 'Campbell']);
    expect(records.map((r) => r.row.first_name)).toEqual(['Sophia', 'Chloé', 'Zoë']);
    expect(records[1]!.raw).toBe('chloe.walker@example.co.uk;Chloé;Walker;Manchester');
  });

  it('delimiter: tab', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 't.tsv'), 'email\tcity\na@example.com\tSan Francisco, CA\n');
      const records = await read(dir, { path: 't.tsv', delimiter: '\t' });
      expect(records[0]!.row).toEqual({ email: 'a@example.com', city: 'San Francisco, CA' });
    });
  });

  it('quote: a custom quote character', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'q.csv'), "email,company\na@example.com,'Smith, Jones & Co'\nb@example.com,\"x\"\n");
      const records = await read(dir, { path: 'q.csv', quote: "'" });
      expect(records.map((r) => r.row.company)).toEqual(['Smith, Jones & Co', '"x"']);
    });
  });

  it('escape: a backslash escape inside quoted fields', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'e.csv'), 'email,note\na@example.com,"said \\"hi\\""\n');
      const records = await read(dir, { path: 'e.csv', escape: '\\' });
      expect(records[0]!.row.note).toBe('said "hi"');
    });
  });

  it('BOM and CRLF: the BOM is removed, CRLF handled, embedded CRLF kept, positions exact', async () => {
    const file = readFileSync(join(FIXTURES, 'small/customers-bom-crlf.csv'));
    const records = await read(FIXTURES, { path: 'small/customers-bom-crlf.csv' });
    expect(records).toHaveLength(5);
    expect(Object.keys(records[0]!.row)[0]).toBe('email');
    expect(records[0]!.row.email).toBe('ava.thompson@example.com');
    expect(records[2]!.row.company).toBe('Harris & Sons\r\nLtd');
    expect(records.map((r) => r.pos.line)).toEqual([2, 3, 4, 6, 7]);
    expect(records[0]!.raw!.endsWith('\r')).toBe(false);
    expectPositions(file, records);
  });

  it('CRLF: line endings and a final line without a line break', async () => {
    await withTempDir(async (dir) => {
      const text = 'email,name\r\na@example.com,Ann\r\n\r\nb@example.com,Bob';
      await writeFile(join(dir, 'c.csv'), text);
      const records = await read(dir, { path: 'c.csv' });
      expect(records.map((r) => r.row.name)).toEqual(['Ann', 'Bob']);
      expect(records.map((r) => r.pos.line)).toEqual([2, 4]);
      expect(records.map((r) => r.raw)).toEqual(['a@example.com,Ann', 'b@example.com,Bob']);
      expectPositions(Buffer.from(text), records);
    });
  });

  it('quoted newline: line numbers are the line where each record starts', async () => {
    const file = readFileSync(join(FIXTURES, 'bad/customers-bad.csv'));
    const records = await read(FIXTURES, { path: 'bad/customers-bad.csv' });
    const sophia = records.find((r) => r.row.email === 'sophia.garcia@example.com')!;
    expect(sophia.pos.line).toBe(8);
    expect(sophia.row.company).toBe('Garcia Imports\nMiami Branch');
    const james = records.find((r) => r.row.email === 'james.evans@example.co.uk')!;
    expect(james.pos.line).toBe(10);
    expectPositions(file, records);
  });

  it('gz: a .gz file is decompressed in the stream, offsets are in the decompressed bytes', async () => {
    const plain = await read(FIXTURES, { path: 'small/customers-small.csv' });
    const gz = await read(FIXTURES, { path: 'small/customers-small.csv.gz' });
    expect(gz).toHaveLength(5);
    expect(gz.map((r) => [r.row, r.pos.line, r.pos.offset, r.raw])).toEqual(plain.map((r) => [r.row, r.pos.line, r.pos.offset, r.raw]));
    expect(gz[0]!.pos.source).toBe('small/customers-small.csv.gz');
  });

  it('gz: a corrupt .gz file is SOURCE_READ naming the file', async () => {
    await withTempDir(async (dir) => {
      const gz = gzipSync('id\n' + '1\n'.repeat(1000));
      gz[20] ^= 0xff;
      gz[21] ^= 0xff;
      await writeFile(join(dir, 'bad.csv.gz'), gz);
      await expectCode(read(dir, { path: 'bad.csv.gz' }), 'SOURCE_READ');
    });
  });

  it('signal: an aborted run stops with INTERRUPTED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expectCode(read(FIXTURES, { path: 'customers.csv' }, { signal: controller.signal }), 'INTERRUPTED');
  });

  it('glob order: files are read in sorted path order with seq continuous across files', async () => {
    await withTempDir(async (dir) => {
      await mkdir(join(dir, 'in/2024'), { recursive: true });
      await writeFile(join(dir, 'in/b.csv'), 'id\nb1\nb2\n');
      await writeFile(join(dir, 'in/a.csv'), 'id\na1\n');
      await writeFile(join(dir, 'in/2024/c.csv.gz'), gzipSync('id\nc1\n'));
      await writeFile(join(dir, 'in/skip.txt'), 'id\nx\n');
      const records = await read(join(dir, 'in'), { path: ['*.csv', '**/*.csv.gz'] });
      expect(records.map((r) => [r.pos.seq, r.pos.source, r.row.id])).toEqual([
        [0, '2024/c.csv.gz', 'c1'],
        [1, 'a.csv', 'a1'],
        [2, 'b.csv', 'b1'],
        [3, 'b.csv', 'b2'],
      ]);
    });
  });

  it('path: a list with a missing file or a glob matching nothing is SOURCE_NOT_FOUND', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), 'id\n1\n');
      await expectCode(read(dir, { path: ['a.csv', 'missing.csv'] }), 'SOURCE_NOT_FOUND');
      await expectCode(read(dir, { path: 'nothing/*.csv' }), 'SOURCE_NOT_FOUND');
    });
  });

  it('ragged row: CSV_RAGGED_ROW with the fields it had, and the file goes on', async () => {
    const records = await read(FIXTURES, { path: 'bad/customers-bad.csv' });
    const ragged = records.find((r) => r.error?.code === 'CSV_RAGGED_ROW')!;
    expect(ragged.pos.line).toBe(7);
    expect(ragged.row).toEqual({
      email: 'oliver.brown@example.com',
      phone: '2065550171',
      first_name: 'Oliver',
      last_name: 'Brown',
      company: 'Initech',
      city: 'Seattle',
      country: 'US',
      zip: '98101',
    });
    expect(ragged.raw).toBe('oliver.brown@example.com,2065550171,Oliver,Brown,Initech,Seattle,US,98101');
    expect(records.filter((r) => r.error === undefined)).toHaveLength(7); // elijah is inside the unclosed quote
  });

  it('relaxColumnCount: a short row is accepted without error', async () => {
    const records = await read(FIXTURES, { path: 'bad/customers-bad.csv', relaxColumnCount: true });
    expect(records.some((r) => r.error?.code === 'CSV_RAGGED_ROW')).toBe(false);
    expect(records.find((r) => r.row.email === 'oliver.brown@example.com')!.row.zip).toBe('98101');
  });

  it('unclosed quote: one CSV_UNCLOSED_QUOTE record from its line to the end, then the next file', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), readFileSync(join(FIXTURES, 'bad/customers-bad.csv')));
      await writeFile(join(dir, 'b.csv'), 'email\nnext@example.com\n');
      const records = await read(dir, { path: '*.csv' });
      const unclosed = records.filter((r) => r.error?.code === 'CSV_UNCLOSED_QUOTE');
      expect(unclosed).toHaveLength(1);
      expect(unclosed[0]!.pos).toMatchObject({ source: 'a.csv', line: 11 });
      expect(unclosed[0]!.raw!.startsWith('isla.mcdonald@example.co.uk')).toBe(true);
      expect(unclosed[0]!.raw).toContain('elijah.johnson@example.com');
      const last = records.at(-1)!;
      expect(last.row).toEqual({ email: 'next@example.com' });
      expect(last.pos).toMatchObject({ source: 'b.csv', line: 2, seq: unclosed[0]!.pos.seq + 1 });
      expect(records.map((r) => r.pos.seq)).toEqual([...Array(records.length).keys()]);
    });
  });

  it('parse error: a malformed quote mid-file is CSV_PARSE_ERROR at its line, the next line is read', async () => {
    await withTempDir(async (dir) => {
      const text = 'email,name\na@example.com,Ann\nb@example.com,"Bo"b\nc@example.com,Cy\nd@example.com,D"an\ne@example.com,Eve\n';
      await writeFile(join(dir, 'p.csv'), text);
      const records = await read(dir, { path: 'p.csv' });
      expect(records.map((r) => [r.pos.line, r.error?.code ?? r.row.name])).toEqual([
        [2, 'Ann'],
        [3, 'CSV_PARSE_ERROR'],
        [4, 'Cy'],
        [5, 'CSV_PARSE_ERROR'],
        [6, 'Eve'],
      ]);
      expect(records[1]!.raw).toBe('b@example.com,"Bo"b');
      expectPositions(Buffer.from(text), records);
    });
  });

  it('positions: line and offset of every record of the orders fixture slice the file at the record', async () => {
    const file = readFileSync(join(FIXTURES, 'orders/shopify-orders.csv'));
    const records = await read(FIXTURES, { path: 'orders/shopify-orders.csv' });
    expect(records.length).toBe(65);
    expect(records[0]!.pos).toEqual({
      seq: 0,
      source: 'orders/shopify-orders.csv',
      line: 2,
      offset: file.indexOf('\n') + 1,
      // the file as read (a resume checks it is the same file): size, modification time, sha256 of the bytes read
      cursor: {
        size: file.length,
        mtimeMs: statSync(join(FIXTURES, 'orders/shopify-orders.csv')).mtimeMs,
        hashed: file.length,
        sha256: createHash('sha256').update(file).digest('hex'),
      },
    });
    expectPositions(file, records);
  });

  it('positions: identical when the input arrives one byte at a time', async () => {
    const file = readFileSync(join(FIXTURES, 'bad/customers-bad.csv'));
    const whole = new CsvChunkParser({ source: 'x' });
    const expected = [...whole.push(file), ...whole.end()];
    const bytewise = new CsvChunkParser({ source: 'x' });
    const got: SourceRecord[] = [];
    for (let i = 0; i < file.length; i++) got.push(...bytewise.push(file.subarray(i, i + 1)));
    got.push(...bytewise.end());
    expect(got).toEqual(expected);
    expect(expected.length).toBe(9);
  });

  for (const [name, path] of [
    ['plain file (seek)', 'orders/shopify-orders.csv'],
    ['gz file (re-parse and skip)', 'orders.csv.gz'],
  ] as const) {
    it(`resume via startAfter: ${name} gives the same records and seq as a fresh run`, async () => {
      await withTempDir(async (dir) => {
        await mkdir(join(dir, 'orders'));
        const text = readFileSync(join(FIXTURES, 'orders/shopify-orders.csv'));
        await writeFile(join(dir, 'orders/shopify-orders.csv'), text);
        await writeFile(join(dir, 'orders.csv.gz'), gzipSync(text));
        const fresh = await read(dir, { path });
        for (const k of [0, 17, fresh.length - 2, fresh.length - 1]) {
          const resumed = await read(dir, { path }, { startAfter: fresh[k]!.pos });
          expect(resumed).toEqual(fresh.slice(k + 1));
        }
      });
    });
  }

  it('resume via startAfter: a plain file is entered by seeking (rows before the position are not parsed)', async () => {
    await withTempDir(async (dir) => {
      const text = 'id,name\n1,Ann\n2,Bob\n3,Cy\n4,Dee\n';
      await writeFile(join(dir, 'a.csv'), text);
      const fresh = await read(dir, { path: 'a.csv' });
      // Same length, but an unclosed quote at line 2 would swallow the rest if the reader re-parsed from the start.
      // (A position without the file's identity, as written before resumes checked it: nothing tells the change.)
      await writeFile(join(dir, 'a.csv'), text.replace('1,Ann', '"xxxx'));
      const { cursor, ...legacy } = fresh[1]!.pos;
      expect(cursor).toBeDefined();
      const resumed = await read(dir, { path: 'a.csv' }, { startAfter: legacy });
      expect(resumed.map(({ pos: { cursor: _, ...pos }, ...r }) => ({ ...r, pos }))).toEqual(
        fresh.slice(2).map(({ pos: { cursor: _, ...pos }, ...r }) => ({ ...r, pos })),
      );
    });
  });

  it('resume via startAfter: across files, earlier files are not re-read', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), 'id\n1\n2\n');
      await writeFile(join(dir, 'b.csv'), 'id\n3\n4\n5\n');
      const fresh = await read(dir, { path: '*.csv' });
      const reader = csvSource.create(config({ path: '*.csv' }), context(dir, { startAfter: fresh[2]!.pos }));
      const resumed = await collect(reader);
      expect(resumed).toEqual(fresh.slice(3));
      expect((reader.watermark!() as FilesWatermark).files.map((f) => f.path)).toEqual(['a.csv', 'b.csv']);
      await expectCode(read(dir, { path: '*.csv' }, { startAfter: { seq: 1, source: 'gone.csv', line: 2, offset: 3 } }), 'CHECKPOINT_MISMATCH');
    });
  });

  it('watermark: files read completely are listed; unchanged files are skipped, changed ones re-read with a warning', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), 'id\n1\n2\n');
      await writeFile(join(dir, 'b.csv.gz'), gzipSync('id\n3\n'));
      const first = csvSource.create(config({ path: ['a.csv', 'b.csv.gz'] }), context(dir));
      expect(await collect(first)).toHaveLength(3);
      const mark = first.watermark!() as FilesWatermark;
      expect(mark.files.map((f) => [f.path, f.size])).toEqual([
        ['a.csv', 7],
        ['b.csv.gz', readFileSync(join(dir, 'b.csv.gz')).length],
      ]);
      expect(mark.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);

      const logger = memoryLogger();
      const second = csvSource.create(config({ path: ['a.csv', 'b.csv.gz'] }), { ...context(dir), logger, watermark: mark });
      expect(await collect(second)).toHaveLength(0);
      expect(second.watermark!()).toEqual(mark);

      await writeFile(join(dir, 'a.csv'), 'id\n1\n9\n'); // same size, different content
      const third = csvSource.create(config({ path: ['a.csv', 'b.csv.gz'] }), { ...context(dir), logger, watermark: mark });
      const records = await collect(third);
      expect(records.map((r) => r.row.id)).toEqual(['1', '9']);
      expect(records[0]!.pos.seq).toBe(0);
      expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.file === 'a.csv')).toBe(true);
    });
  });

  it('limit: stops after ctx.limit records and does not mark the file complete', async () => {
    const reader = csvSource.create(config({ path: 'customers.csv' }), context(FIXTURES, { limit: 4 }));
    expect(await collect(reader)).toHaveLength(4);
    expect((reader.watermark!() as FilesWatermark).files).toEqual([]);
  });
});
