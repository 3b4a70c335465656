import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CsvSource, NdjsonSource } from '../../../src/config/schema.js';
import { isEtlError } from '../../../src/core/errors.js';
import type { SourcePosition, SourceRecord } from '../../../src/core/record.js';
import { csvSource } from '../../../src/extract/csv.js';
import type { FilePlan } from '../../../src/extract/file-resume.js';
import type { FilesWatermark } from '../../../src/extract/files.js';
import { ndjsonSource } from '../../../src/extract/ndjson.js';
import type { ExtractContext } from '../../../src/extract/types.js';
import { collect, context, memoryLogger, withTempDir } from './helpers.js';

/** A resumed file source reads the file the interrupted attempt read, and the files its run started with (issue 16). */

const csv = (path: string | string[], extra: Record<string, unknown> = {}) => CsvSource.parse({ type: 'csv', path, ...extra });

function rows(n: number, prefix: string): string {
  let s = 'id,name\n';
  for (let i = 1; i <= n; i++) s += `${prefix}${i},name ${prefix}${i}\n`;
  return s;
}

/** Read a csv source; the plan it saves is kept in `saved`. */
async function readCsv(dir: string, path: string | string[], extra: Partial<ExtractContext> = {}, options: Record<string, unknown> = {}) {
  const saved: { plan?: FilePlan } = {};
  const reader = csvSource.create(csv(path, options), context(dir, { savePlan: (p) => (saved.plan = p as FilePlan), ...extra }));
  const records = await collect(reader);
  return { records, plan: saved.plan, watermark: reader.watermark!() as FilesWatermark };
}

/** The records an interrupted attempt got up to (and including) record `k`, and its plan then. */
async function interruptedAt(dir: string, path: string | string[], k: number): Promise<{ at: SourcePosition; plan: FilePlan; all: SourceRecord[] }> {
  let plan: FilePlan | undefined;
  let at: SourcePosition | undefined;
  const all: SourceRecord[] = [];
  const reader = csvSource.create(csv(path), context(dir, { savePlan: (p) => (plan = at ? plan : (p as FilePlan)) }));
  for await (const r of reader.records()) {
    all.push(r);
    if (all.length === k + 1) at = r.pos;
  }
  return { at: at!, plan: plan!, all };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isEtlError(error) ? error.code : error === undefined ? undefined : String(error);
}

const names = (records: SourceRecord[]) => records.map((r) => r.row.id);

describe('resume: the file to resume in is the one the interrupted attempt read', () => {
  it('a file replaced at the same path (smaller, bigger) is refused with SOURCE_CHANGED; onChangedFile: reread reads it from its start', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), rows(20_000, 'old-'));
      const { at } = await interruptedAt(dir, 'a.csv', 1_935);
      for (const replacement of [rows(1_500, 'new-'), rows(30_000, 'new-')]) {
        await writeFile(join(dir, 'a.csv'), replacement);
        expect(await codeOf(readCsv(dir, 'a.csv', { startAfter: at }))).toBe('SOURCE_CHANGED');
        const logger = memoryLogger();
        const reread = await readCsv(dir, 'a.csv', { startAfter: at, logger }, { onChangedFile: 'reread' });
        const n = replacement === rows(1_500, 'new-') ? 1_500 : 30_000;
        expect(reread.records).toHaveLength(n);
        expect(reread.records[0]!.row.id).toBe('new-1');
        expect(reread.records.map((r) => r.pos.seq)).toEqual(Array.from({ length: n }, (_, i) => at.seq + 1 + i));
        expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('reading it again from its start'))).toBe(true);
      }
    });
  });

  it('same size, same bytes touched (mtime), same size and mtime with other bytes: refused; the same file resumes', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'a.csv');
      await writeFile(file, rows(5_000, 'x'));
      const { at, all } = await interruptedAt(dir, 'a.csv', 2_500);
      const resumed = await readCsv(dir, 'a.csv', { startAfter: at });
      expect(names(resumed.records)).toEqual(names(all.slice(2_501)));
      const { mtime } = await stat(file);
      await utimes(file, mtime, new Date(mtime.getTime() + 5_000));
      expect(await codeOf(readCsv(dir, 'a.csv', { startAfter: at }))).toBe('SOURCE_CHANGED');
      // same length, same modification time, one byte changed before the checkpoint
      await writeFile(file, rows(5_000, 'x').replace('x17,', 'y17,'));
      await utimes(file, mtime, mtime);
      expect((await stat(file)).size).toBe((at.cursor as { size: number }).size);
      expect(await codeOf(readCsv(dir, 'a.csv', { startAfter: at }))).toBe('SOURCE_CHANGED');
    });
  });

  it('a checkpoint offset past the end of the file (hand-edited) is refused, with or without the file identity', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'a.csv'), rows(100, 'r'));
      const { at } = await interruptedAt(dir, 'a.csv', 50);
      const { cursor: _, ...bare } = at;
      for (const edited of [{ ...at, offset: 1e9 }, { ...bare, offset: 1e9 }]) {
        expect(await codeOf(readCsv(dir, 'a.csv', { startAfter: edited }))).toBe('SOURCE_CHANGED');
      }
    });
  });

  it('ndjson: a replaced file is refused too', async () => {
    await withTempDir(async (dir) => {
      const lines = (n: number, p: string) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${p}${i}` })).join('\n') + '\n';
      await writeFile(join(dir, 'a.ndjson'), lines(3_000, 'a'));
      const first = await collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: 'a.ndjson' }), context(dir)));
      await writeFile(join(dir, 'a.ndjson'), lines(1_000, 'b'));
      const again = collect(ndjsonSource.create(NdjsonSource.parse({ type: 'ndjson', path: 'a.ndjson' }), context(dir, { startAfter: first[400]!.pos })));
      expect(await codeOf(again)).toBe('SOURCE_CHANGED');
    });
  });
});

describe('resume: the files a run covers are fixed when it starts', () => {
  it('a file arriving before the resume file is not recorded as read; the next run reads it', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'b.csv'), rows(300, 'b'));
      await writeFile(join(dir, 'c.csv'), rows(300, 'c'));
      const { at, plan, all } = await interruptedAt(dir, '*.csv', 450);
      expect(plan.files.map((f) => f.source)).toEqual(['b.csv', 'c.csv']);
      await writeFile(join(dir, 'a.csv'), rows(700, 'a')); // sorts before the file being resumed
      const logger = memoryLogger();
      const resumed = await readCsv(dir, '*.csv', { startAfter: at, plan, logger });
      expect(names(resumed.records)).toEqual(names(all.slice(451)));
      expect(resumed.watermark.files.map((f) => f.path)).toEqual(['b.csv', 'c.csv']);
      expect(logger.lines.some((l) => l.msg.includes('left to the next run'))).toBe(true);
      const next = await readCsv(dir, '*.csv', { watermark: resumed.watermark });
      expect(names(next.records)).toEqual(Array.from({ length: 700 }, (_, i) => `a${i + 1}`));
    });
  });

  it('the plan records files read completely (their watermark entry) and a file gone from the plan fails the resume', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'b.csv'), rows(10, 'b'));
      await writeFile(join(dir, 'c.csv'), rows(10, 'c'));
      await writeFile(join(dir, 'd.csv'), rows(10, 'd'));
      const full = await readCsv(dir, '*.csv');
      expect(full.plan!.files.map((f) => [f.source, f.sha256])).toEqual(full.watermark.files.map((f) => [f.path, f.sha256]));
      const { at, plan } = await interruptedAt(dir, '*.csv', 15);
      await rm(join(dir, 'd.csv'));
      expect(await codeOf(readCsv(dir, '*.csv', { startAfter: at, plan }))).toBe('SOURCE_NOT_FOUND');
    });
  });
});

describe('CSV header quirks keep memory bounded (issue 16)', () => {
  /** A generated file of `rows` rows after `header`, in 64 KiB chunks; `pulled` counts the bytes handed out. */
  function bigFile(header: string, rows: number) {
    const counter = { pulled: 0 };
    const row = (i: number) => `${i},someone${i}@example.com,${'x'.repeat(40)}\n`;
    async function* chunks(): AsyncGenerator<Buffer> {
      let pending = header;
      for (let i = 1; i <= rows; i++) {
        pending += row(i);
        if (pending.length >= 64 * 1024 || i === rows) {
          const buf = Buffer.from(pending);
          counter.pulled += buf.length;
          pending = '';
          yield buf;
        }
      }
    }
    return { chunks, counter };
  }

  async function firstRecords(input: ReturnType<typeof bigFile>, options: Record<string, unknown>, n: number) {
    const { parseCsvChunks } = await import('../../../src/extract/csv.js');
    const out: SourceRecord[] = [];
    for await (const batch of parseCsvChunks({ chunks: input.chunks(), source: 'big.csv', firstSeq: 0 }, options)) {
      out.push(...batch);
      if (out.length >= n) break;
    }
    return out.slice(0, n);
  }

  it('a stray quote in the header of a 40 MB file fails at once with its line, after reading about 1 MiB', async () => {
    const input = bigFile('id,em"ail,note\n', 600_000);
    const error = await firstRecords(input, {}, 10).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEtlError(error) && error.code).toBe('SOURCE_READ');
    expect((error as { context: { line?: number } }).context.line).toBe(1);
    expect((error as Error).message).toContain('line 1');
    expect(input.counter.pulled).toBeLessThan(2 * 1024 * 1024);
  });

  it('escape "\\\\" with an escaped quote in the header: the header parses, 10 rows need only the first chunk', async () => {
    const input = bigFile('id,"em\\"ail",note\n', 600_000);
    const records = await firstRecords(input, { escape: '\\' }, 10);
    expect(records.map((r) => r.row.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(Object.keys(records[0]!.row)).toEqual(['id', 'em"ail', 'note']);
    expect(input.counter.pulled).toBeLessThan(256 * 1024);
  });

  it('a header whose quoted field is never closed (escape "\\\\" before the closing quote) fails fast too', async () => {
    const input = bigFile('id,"email\\",note\n', 600_000);
    const error = await firstRecords(input, { escape: '\\' }, 10).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEtlError(error) && error.code).toBe('SOURCE_READ');
    expect(input.counter.pulled).toBeLessThan(2 * 1024 * 1024);
  });

  it('explicit columns: a stray quote in the first row does not hold the file: that row is rejected, the rest read', async () => {
    const header = '1,a"b,c\n';
    const input = bigFile(header, 600_000);
    const records = await firstRecords(input, { header: ['id', 'email', 'note'] }, 10);
    expect(records[0]!.error?.code).toBe('CSV_PARSE_ERROR');
    expect(records.slice(1).map((r) => r.row.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(input.counter.pulled).toBeLessThan(2 * 1024 * 1024);
  });
});
