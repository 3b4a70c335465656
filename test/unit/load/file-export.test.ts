import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportRowItem } from '../../../src/core/record.js';
import type { ExportFormat } from '../../../src/load/export-format.js';
import { createExportLoader, type ExportTarget } from '../../../src/load/file-export.js';
import { createS3Client } from '../../../src/s3/client.js';
import { startS3rver, type TestS3 } from '../../helpers/s3rver.js';
import { recordingContext } from './helpers.js';

/**
 * The export writer with a hand-built parted item stream (as a partitioned source gives it: the records of several
 * time ranges interleaved): each part is written to its own partial file and the published file joins the parts in
 * ascending part order; a resumed export (kill after a flush, bytes past the checkpoint, the ranges re-read in
 * another interleaving) publishes exactly the clean run's bytes.
 */

let tmp: string;
let s3: TestS3;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-file-export-'));
  s3 = await startS3rver(['parts']);
});

afterAll(async () => {
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

const COLUMNS = ['id', 'n', 'vip', 'props', 'none'];
const PARTS = ['2026-01-03T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'];

/** Rows of each part in the part's own (cursor) order: `<part index>-<i>`. */
function partRows(count: number): Map<string, Record<string, unknown>[]> {
  return new Map(
    PARTS.map((part, p) => [
      part,
      Array.from({ length: count }, (_, i) => ({ id: `${p}-${i}`, n: p * 100 + i + 0.5, vip: i % 2 === 0, props: { i, tags: ['a'] }, none: null })),
    ]),
  );
}

/** The parts' rows interleaved as ranges answering in turn (`rotate` changes who answers first), seq from `startSeq`. */
function interleave(rows: Map<string, Record<string, unknown>[]>, startSeq: number, rotate = 0): ExportRowItem[] {
  const queues = [...rows].map(([part, list]) => ({ part, list: [...list] }));
  for (let r = 0; r < rotate; r++) queues.push(queues.shift()!);
  const items: ExportRowItem[] = [];
  let seq = startSeq;
  while (queues.some((q) => q.list.length > 0)) {
    for (const q of queues) {
      // uneven page sizes: 1-3 rows per turn
      for (let k = 0; k < 1 + (seq % 3) && q.list.length > 0; k++) {
        const pos = { seq, source: 'klaviyo:list/L' };
        items.push({ kind: 'export-row', payload: q.list.shift()!, first: pos, last: pos, part: q.part });
        seq++;
      }
    }
  }
  return items;
}

async function exportAll(target: ExportTarget, items: ExportRowItem[], format: ExportFormat = 'csv'): Promise<void> {
  const { ctx } = recordingContext();
  const loader = createExportLoader({ target, columns: COLUMNS, format, chunkRows: 4 }, ctx);
  await loader.write(items);
  await loader.close();
}

describe('parted export', () => {
  it('writes each part to its own partial file and publishes them joined in ascending part order, the header once', async () => {
    const dir = await mkdtemp(path.join(tmp, 'csv-'));
    const out = path.join(dir, 'out.csv');
    const { ctx, acked } = recordingContext();
    const loader = createExportLoader({ target: { type: 'file', path: out }, columns: COLUMNS, chunkRows: 4 }, ctx);
    const items = interleave(partRows(5), 0);
    await loader.write(items.slice(0, 11));
    expect(acked).toHaveLength(0); // with 3 parts in the buffer a flush waits for 3 × 4 rows
    await loader.write(items.slice(11, 12));
    // before publishing: the main partial file (header) and one partial file + progress log per part
    const partials = (await readdir(dir)).filter((f) => f.includes('.part-'));
    expect(partials).toHaveLength(PARTS.length * 2);
    expect(acked.map((a) => a.first.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await loader.write(items.slice(12));
    await loader.close();
    expect(await readdir(dir)).toEqual(['out.csv']);
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe('id,n,vip,props,none');
    expect(lines.filter((l) => l.startsWith('id,'))).toHaveLength(1);
    // 2026-01-01 (part index 1) first, then 2026-01-02 (2), then 2026-01-03 (0); within a part, its own order
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([1, 2, 0].flatMap((p) => [0, 1, 2, 3, 4].map((i) => `${p}-${i}`)));
    expect(lines[1]).toBe('1-0,100.5,true,"{""i"":0,""tags"":[""a""]}",');
  });

  it('gzip: the published parts are one valid gzip stream; NDJSON keeps JSON types', async () => {
    const dir = await mkdtemp(path.join(tmp, 'ndjson-'));
    const out = path.join(dir, 'out.ndjson.gz');
    await exportAll({ type: 'file', path: out }, interleave(partRows(3), 0), 'ndjson');
    const rows = gunzipSync(await readFile(out)).toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => r.id)).toEqual([1, 2, 0].flatMap((p) => [0, 1, 2].map((i) => `${p}-${i}`)));
    expect(rows[0]).toEqual({ id: '1-0', n: 100.5, vip: true, props: { i: 0, tags: ['a'] }, none: null });
    expect(Object.keys(rows[0]!)).toEqual(COLUMNS);
  });

  it('items without a part: one file, published by rename as before', async () => {
    const dir = await mkdtemp(path.join(tmp, 'plain-'));
    const out = path.join(dir, 'out.csv');
    const items = interleave(partRows(2), 0).map(({ part: _part, ...item }) => item);
    await exportAll({ type: 'file', path: out }, items);
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(items.map((i) => i.payload.id));
  });

  it('a resumed export (bytes written past the checkpoint, ranges re-read in another interleaving) publishes the clean run\'s bytes', async () => {
    const rows = partRows(9);
    const dir = await mkdtemp(path.join(tmp, 'resume-'));
    const clean = path.join(dir, 'clean.csv.gz');
    await exportAll({ type: 'file', path: clean }, interleave(rows, 0));

    const out = path.join(dir, 'resumed.csv.gz');
    const first = interleave(rows, 0);
    const killed = recordingContext();
    const run1 = createExportLoader({ target: { type: 'file', path: out }, columns: COLUMNS, chunkRows: 4, interrupted: () => true }, killed.ctx);
    await run1.write(first.slice(0, 12)); // one flush (3 parts × 4 rows): the checkpoint is at seq 11
    const checkpoint = killed.acked.at(-1)!.last.seq;
    expect(checkpoint).toBe(11);
    await run1.write(first.slice(12, 25)); // written and logged past the checkpoint, never checkpointed
    expect(killed.acked).toHaveLength(25);
    await run1.abort();

    // the resumed source reads every range again from where the checkpoint's cursors stood
    const done = new Set(first.slice(0, 12).map((i) => i.payload.id));
    const rest = new Map([...rows].map(([part, list]) => [part, list.filter((r) => !done.has(r.id))]));
    const resumed = recordingContext();
    const run2 = createExportLoader({ target: { type: 'file', path: out }, columns: COLUMNS, chunkRows: 4, resume: { afterSeq: checkpoint } }, resumed.ctx);
    await run2.write(interleave(rest, checkpoint + 1, 1));
    await run2.close();
    expect(gunzipSync(await readFile(out)).toString('utf8')).toBe(gunzipSync(await readFile(clean)).toString('utf8'));
    expect(await readdir(dir)).toEqual(['clean.csv.gz', 'resumed.csv.gz']);
  });

  it('a fresh (not resumed) export removes part files an earlier run left', async () => {
    const dir = await mkdtemp(path.join(tmp, 'stale-'));
    const out = path.join(dir, 'out.csv');
    const stale = `${out}.partial.part-${Buffer.from('1999-01-01T00:00:00.000Z').toString('base64url')}`;
    await writeFile(stale, 'stale,row\n');
    await writeFile(stale + '.progress', '0 10\n');
    await exportAll({ type: 'file', path: out }, interleave(partRows(1), 0));
    expect(await readdir(dir)).toEqual(['out.csv']);
    expect(await readFile(out, 'utf8')).not.toContain('stale');
  });

  it('hundreds of parts hold no file descriptors between chunks, and are joined in order', async () => {
    const dir = await mkdtemp(path.join(tmp, 'many-'));
    const out = path.join(dir, 'out.ndjson');
    const { ctx, acked } = recordingContext();
    const loader = createExportLoader({ target: { type: 'file', path: out }, columns: ['id'], format: 'ndjson', chunkRows: 2 }, ctx);
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const keys = Array.from({ length: 400 }, (_, i) => `2026-01-01T00:00:${String(i).padStart(3, '0')}Z`);
    const items = keys.flatMap((part, i) => [0, 1].map((k) => ({ kind: 'export-row' as const, payload: { id: `${part}/${k}` }, first: { seq: i * 2 + k, source: 's' }, last: { seq: i * 2 + k, source: 's' }, part })));
    await loader.write(items.reverse().map((item, seq) => ({ ...item, first: { seq, source: 's' }, last: { seq, source: 's' } })));
    expect(acked).toHaveLength(800); // flushed (and durable) before close
    expect(fds() - before).toBeLessThan(10);
    await loader.close();
    const ids = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toEqual(keys.flatMap((k) => [`${k}/1`, `${k}/0`]));
  });

  it('default chunks: 100 rows first, doubling after each flush up to 1,000 (fewer fsyncs on a long export)', async () => {
    const dir = await mkdtemp(path.join(tmp, 'chunks-'));
    const out = path.join(dir, 'out.csv');
    const { ctx, acked } = recordingContext();
    const loader = createExportLoader({ target: { type: 'file', path: out }, columns: ['id'], interrupted: () => true }, ctx);
    const sizes: number[] = [];
    for (let seq = 0; seq < 4000; seq++) {
      const before = acked.length;
      await loader.write([{ kind: 'export-row', payload: { id: String(seq) }, first: { seq, source: 's' }, last: { seq, source: 's' } }]);
      if (acked.length > before) sizes.push(acked.length - before);
    }
    await loader.close(); // interrupted: the rest is flushed, the partial file kept with its log
    expect(sizes).toEqual([100, 200, 400, 800, 1000, 1000]);
    const log = (await readFile(out + '.partial.progress', 'utf8')).trimEnd().split('\n');
    expect(log.map((l) => Number(l.split(' ')[0]))).toEqual([-1, 99, 299, 699, 1499, 2499, 3499, 3999]);
  });

  it('S3: the parts are uploaded joined, as one object, and the staging files are removed', async () => {
    const dir = await mkdtemp(path.join(tmp, 's3-'));
    const client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
    try {
      await exportAll({ type: 's3', client, bucket: 'parts', key: 'x/out.csv.gz', stagingPath: path.join(dir, 'export.csv.gz.partial') }, interleave(partRows(4), 0));
      const got = await client.send(new GetObjectCommand({ Bucket: 'parts', Key: 'x/out.csv.gz' }));
      const text = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString('utf8');
      const ids = text.trimEnd().split('\n').slice(1).map((l) => l.split(',')[0]);
      expect(ids).toEqual([1, 2, 0].flatMap((p) => [0, 1, 2, 3].map((i) => `${p}-${i}`)));
      expect(await readdir(dir)).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});
