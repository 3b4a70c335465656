import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Source } from '../../src/config/schema.js';
import { EtlError } from '../../src/core/errors.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { SourceRecord } from '../../src/core/record.js';
import { createS3Reader, s3Source, type S3Reader, type S3ReaderOptions } from '../../src/extract/s3.js';
import { createS3Client } from '../../src/s3/client.js';
import type { ExtractContext } from '../../src/extract/types.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

let s3: TestS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3rver(['b']);
  client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
});

async function put(key: string, body: string | Buffer, extra: { ContentEncoding?: string } = {}): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: 'b', Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body, ...extra }));
}

const csv = (day: number, rows: number) =>
  'id,email,note\n' + Array.from({ length: rows }, (_, i) => `${day}-${i},u${day}.${i}@example.com,"hello, ""day"" ${day}"`).join('\n') + '\n';

function reader(input: Record<string, unknown>, ctx: Partial<ExtractContext> = {}, options: S3ReaderOptions = {}): S3Reader {
  const config = S3Source.parse({ type: 's3', bucket: 'b', endpoint: s3.endpoint, forcePathStyle: true, ...input });
  return createS3Reader(config, { baseDir: process.cwd(), env: s3.env, logger: silentLogger, ...ctx }, options);
}

async function collect(r: S3Reader): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const rec of r.records()) out.push(rec);
  return out;
}

function captureLogger(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('s3 source: gzip CSV objects under a prefix', () => {
  const exportsCfg = { prefix: 'exports/', glob: '*.csv.gz' };

  beforeAll(async () => {
    // uploaded out of order; plus objects the prefix/glob must leave out
    await put('exports/day-03.csv.gz', gzipSync(csv(3, 5)));
    await put('exports/day-01.csv.gz', gzipSync(csv(1, 5)));
    await put('exports/day-02.csv.gz', gzipSync(csv(2, 5)));
    await put('exports/readme.txt', 'not data');
    await put('exports/nested/day-09.csv.gz', gzipSync(csv(9, 1)));
    await put('elsewhere/day-00.csv.gz', gzipSync(csv(0, 1)));
  });

  it('reads matching objects in key order, streamed through gunzip, with positions', async () => {
    const r = reader(exportsCfg);
    const recs = await collect(r);
    expect(recs.map((x) => x.row.id)).toEqual(['1-0', '1-1', '1-2', '1-3', '1-4', '2-0', '2-1', '2-2', '2-3', '2-4', '3-0', '3-1', '3-2', '3-3', '3-4']);
    expect(recs.map((x) => x.pos.seq)).toEqual(recs.map((_, i) => i));
    expect(recs[5].row).toEqual({ id: '2-0', email: 'u2.0@example.com', note: 'hello, "day" 2' });
    const wm = r.watermark();
    expect(wm.objects.map((o) => o.key)).toEqual(['exports/day-01.csv.gz', 'exports/day-02.csv.gz', 'exports/day-03.csv.gz']);
    expect(wm.objects.every((o) => /^[0-9a-f]{32}$/.test(o.etag) && o.size > 0)).toBe(true);
    const p = recs[6].pos;
    expect(p.source).toBe('s3://b/exports/day-02.csv.gz');
    expect(p.line).toBe(3);
    expect(p.offset).toBe(csv(2, 5).indexOf('2-1,'));
    expect(p.cursor).toEqual({ key: 'exports/day-02.csv.gz', etag: wm.objects[1].etag });
  });

  it('resumes in the middle of the second object with the same records and seq as a fresh run', async () => {
    const fresh = await collect(reader(exportsCfg));
    const r = reader(exportsCfg, { startAfter: fresh[7].pos });
    const resumed = await collect(r);
    expect(resumed).toEqual(fresh.slice(8));
    // objects before the resume point were read by the interrupted attempt: they count as done
    expect(r.watermark().objects.map((o) => o.key)).toEqual(['exports/day-01.csv.gz', 'exports/day-02.csv.gz', 'exports/day-03.csv.gz']);
  });

  it('an object appearing before the resume key after the crash is not recorded as read: the next run reads it (issue 16)', async () => {
    const cfg = { prefix: 'late/', glob: '*.csv' };
    await put('late/day-02.csv', csv(2, 5));
    await put('late/day-03.csv', csv(3, 5));
    let plan: unknown;
    const first: SourceRecord[] = [];
    for await (const rec of reader(cfg, { savePlan: (p) => (plan = JSON.parse(JSON.stringify(p))) }).records()) {
      first.push(rec);
      if (first.length === 7) break; // interrupted inside day-03
    }
    expect(plan).toEqual({ objects: [expect.objectContaining({ key: 'late/day-02.csv' })] });
    await put('late/day-01.csv', csv(1, 4)); // sorts before the object being resumed
    const resumed = reader(cfg, { startAfter: first[6]!.pos, plan });
    expect((await collect(resumed)).map((r) => r.row.id)).toEqual(['3-2', '3-3', '3-4']);
    const watermark = resumed.watermark();
    expect(watermark.objects.map((o) => o.key)).toEqual(['late/day-02.csv', 'late/day-03.csv']);
    const next = reader(cfg, { watermark: JSON.parse(JSON.stringify(watermark)) });
    expect((await collect(next)).map((r) => r.row.id)).toEqual(['1-0', '1-1', '1-2', '1-3']);
  });

  it('a second run with the watermark loads only a newly added object, then a changed ETag is reported and re-read', async () => {
    const first = reader(exportsCfg);
    await collect(first);
    await put('exports/day-04.csv.gz', gzipSync(csv(4, 3)));
    const second = reader(exportsCfg, { watermark: JSON.parse(JSON.stringify(first.watermark())) });
    const recs = await collect(second);
    expect(recs.map((x) => x.row.id)).toEqual(['4-0', '4-1', '4-2']);
    expect(recs.map((x) => x.pos.seq)).toEqual([0, 1, 2]);
    expect(second.changedObjects()).toBe(0);
    const wm2 = second.watermark();
    expect(wm2.objects.map((o) => o.key)).toEqual(['exports/day-01.csv.gz', 'exports/day-02.csv.gz', 'exports/day-03.csv.gz', 'exports/day-04.csv.gz']);

    // nothing new: nothing read, same watermark
    const idle = reader(exportsCfg, { watermark: wm2 });
    expect(await collect(idle)).toHaveLength(0);
    expect(idle.watermark()).toEqual(wm2);

    // day-02 is rewritten: reported (warn + counter) and read again
    await put('exports/day-02.csv.gz', gzipSync(csv(2, 2)));
    const logger = captureLogger();
    const third = reader(exportsCfg, { watermark: wm2, logger });
    const again = await collect(third);
    expect(again.map((x) => x.row.id)).toEqual(['2-0', '2-1']);
    expect(third.changedObjects()).toBe(1);
    const change = third.changes()[0]!;
    expect(change.key).toBe('exports/day-02.csv.gz');
    expect(change.previousEtag).toBe(wm2.objects[1].etag);
    expect(change.etag).not.toBe(change.previousEtag);
    expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.key === 'exports/day-02.csv.gz')).toBe(true);
    expect(third.watermark().objects[1]).toEqual({ key: 'exports/day-02.csv.gz', etag: change.etag, size: expect.any(Number) });
  });

  it('limit stops after N records and leaves the partly read object out of the watermark', async () => {
    const r = reader(exportsCfg, { limit: 3 });
    expect((await collect(r)).map((x) => x.row.id)).toEqual(['1-0', '1-1', '1-2']);
    expect(r.watermark().objects).toEqual([]);
  });
});

describe('s3 source: listing pages, NDJSON, Content-Encoding', () => {
  beforeAll(async () => {
    for (let i = 0; i < 25; i++) {
      const key = `many/part-${String(i).padStart(3, '0')}.ndjson`;
      const body = `{"n":${i},"k":"${key}"}\n{"n":${i},"second":true}\n`;
      // one object gzip-encoded without a .gz name: detected by Content-Encoding
      if (i === 13) await put(key, gzipSync(body), { ContentEncoding: 'gzip' });
      else await put(key, body);
    }
  });

  it('follows continuation tokens across many pages (MaxKeys 4) in key order', async () => {
    const counting = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
    let listings = 0;
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command') listings++;
        return next(args);
      },
      { step: 'initialize' },
    );
    const recs = await collect(reader({ prefix: 'many/', format: 'ndjson' }, {}, { pageSize: 4, client: counting }));
    counting.destroy();
    expect(listings).toBe(7);
    expect(recs).toHaveLength(50);
    expect(recs.filter((r) => r.pos.line === 1).map((r) => r.row.n)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(recs.filter((r) => r.error)).toEqual([]);
    expect(recs[27].row).toEqual({ n: 13, second: true });
    expect(recs[26].pos).toMatchObject({ source: 's3://b/many/part-013.ndjson', line: 1, offset: 0 });
  });

  it('the registered definition builds a working reader from config alone', async () => {
    const config = S3Source.parse({ type: 's3', bucket: 'b', prefix: 'many/', glob: 'part-00[0-2].ndjson', format: 'ndjson', endpoint: s3.endpoint, forcePathStyle: true });
    const r = s3Source.create(config, { baseDir: '.', env: s3.env, logger: silentLogger });
    const recs: SourceRecord[] = [];
    for await (const x of r.records()) recs.push(x);
    expect(recs.map((x) => x.row.n)).toEqual([0, 0, 1, 1, 2, 2]);
  });
});

describe('s3 source: failures', () => {
  it('a prefix with no matching object is SOURCE_NOT_FOUND', async () => {
    const err = await collect(reader({ prefix: 'nothing-here/' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).code).toBe('SOURCE_NOT_FOUND');
  });

  it('a missing bucket is SOURCE_NOT_FOUND', async () => {
    const err = await collect(reader({ bucket: 'no-such-bucket' })).catch((e: unknown) => e);
    expect((err as EtlError).code).toBe('SOURCE_NOT_FOUND');
  });

  it('an unreachable endpoint is SOURCE_READ', async () => {
    const config = S3Source.parse({ type: 's3', bucket: 'b', endpoint: 'http://127.0.0.1:1', forcePathStyle: true });
    const unreachable = createS3Client({ endpoint: 'http://127.0.0.1:1', forcePathStyle: true, env: s3.env });
    const err = await collect(createS3Reader(config, { baseDir: '.', env: s3.env, logger: silentLogger }, { client: unreachable })).catch((e: unknown) => e);
    unreachable.destroy();
    expect((err as EtlError).code).toBe('SOURCE_READ');
  });
});
