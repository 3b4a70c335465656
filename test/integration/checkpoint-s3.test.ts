import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../src/checkpoint/checkpointer.js';
import type { Checkpoint } from '../../src/checkpoint/format.js';
import { S3CheckpointStore, createCheckpointStore } from '../../src/checkpoint/store.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

let s3: TestS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3rver(['ckpt']);
  client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
});

let n = 0;
const freshUrl = () => `s3://ckpt/pipelines/p${++n}`;
const store = (url: string) => new S3CheckpointStore({ url, client });

const checkpoint = (seq: number): Checkpoint => ({
  version: 1,
  pipeline: 'orders',
  runId: 'run-1',
  status: 'running',
  configHash: 'sha256:' + 'c'.repeat(64),
  startedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  position: { seq, source: 's3://data/orders.csv' },
  pendingJobs: ['job-1'],
});

const getText = async (key: string) =>
  (await (await client.send(new GetObjectCommand({ Bucket: 'ckpt', Key: key }))).Body!.transformToString());

describe('S3CheckpointStore against s3rver', () => {
  it('round-trips a checkpoint under <prefix>/checkpoint.json', async () => {
    const url = freshUrl();
    const a = store(url);
    expect(await a.read()).toBeUndefined();
    await a.write(checkpoint(3));
    await a.write(checkpoint(4));
    expect(JSON.parse(await getText(`pipelines/p${n}/checkpoint.json`)).position.seq).toBe(4);
    const b = store(url);
    expect((await b.read())?.position?.seq).toBe(4);
    await b.clear();
    expect(await store(url).read()).toBeUndefined();
  });

  it('characterization: s3rver ignores If-None-Match on PutObject (so the store also compares ETags first)', async () => {
    const key = `raw/${Date.now()}.json`;
    await client.send(new PutObjectCommand({ Bucket: 'ckpt', Key: key, Body: 'one', IfNoneMatch: '*' }));
    // Real S3 answers 412 here; s3rver overwrites.
    await client.send(new PutObjectCommand({ Bucket: 'ckpt', Key: key, Body: 'two', IfNoneMatch: '*' }));
    expect(await getText(key)).toBe('two');
  });

  it('fails a write with LOCKED when another writer changed the checkpoint since it was read', async () => {
    const url = freshUrl();
    const a = store(url);
    const b = store(url);
    await a.read();
    await a.write(checkpoint(1));
    await b.read();
    await b.write(checkpoint(2));
    await expect(a.write(checkpoint(3))).rejects.toMatchObject({ code: 'LOCKED', context: expect.objectContaining({ reason: 'conflict' }) });
    expect((await store(url).read())?.position?.seq).toBe(2);
  });

  it('fails a create with LOCKED when the checkpoint appeared after it was read as absent', async () => {
    const url = freshUrl();
    const a = store(url);
    const b = store(url);
    expect(await a.read()).toBeUndefined();
    expect(await b.read()).toBeUndefined();
    await b.write(checkpoint(7));
    await expect(a.write(checkpoint(8))).rejects.toMatchObject({ code: 'LOCKED' });
    expect((await store(url).read())?.position?.seq).toBe(7);
  });

  it('reports a corrupt object as CHECKPOINT_CORRUPT', async () => {
    const url = freshUrl();
    await client.send(new PutObjectCommand({ Bucket: 'ckpt', Key: `pipelines/p${n}/checkpoint.json`, Body: '{"version":1' }));
    await expect(store(url).read()).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
  });

  it('locks with a lock object: a second lock is LOCKED, release frees it', async () => {
    const url = freshUrl();
    const lock = await store(url).lock();
    const lockObject = JSON.parse(await getText(`pipelines/p${n}/checkpoint.lock`));
    expect(lockObject).toMatchObject({ pid: process.pid, hostname: hostname(), token: lock.info.token });
    await expect(store(url).lock()).rejects.toMatchObject({ code: 'LOCKED', context: expect.objectContaining({ pid: process.pid }) });
    await lock.release();
    const again = await store(url).lock();
    await again.release();
  });

  it('takes over a lock object left by a dead process on this host', async () => {
    const url = freshUrl();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await client.send(
      new PutObjectCommand({
        Bucket: 'ckpt',
        Key: `pipelines/p${n}/checkpoint.lock`,
        Body: JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: new Date().toISOString(), token: 'old' }),
      }),
    );
    const lock = await store(url).lock();
    expect(JSON.parse(await getText(`pipelines/p${n}/checkpoint.lock`)).token).toBe(lock.info.token);
    await lock.release();
  });

  it('drives a resumed run through the Checkpointer (factory appends the pipeline name)', async () => {
    const cfg = { store: 's3' as const, url: 's3://ckpt/shared/', forcePathStyle: true, every: 1, leaseSeconds: 300 };
    const mk = () =>
      new Checkpointer({
        store: createCheckpointStore(cfg, { pipelineName: 'nightly', baseDir: '/unused', s3Client: client }),
        pipeline: 'nightly',
        configHash: 'sha256:' + 'd'.repeat(64),
      });
    const first = mk();
    const s1 = await first.start();
    first.update({ position: { seq: 99, source: 'postgres:orders', cursor: { id: 99 } }, pendingJobs: ['job-7'] });
    await first.flush();
    await first.finish('interrupted');
    expect(JSON.parse(await getText('shared/nightly/checkpoint.json')).status).toBe('interrupted');

    const second = mk();
    expect(await second.start()).toMatchObject({ runId: s1.runId, resumed: true, startAfter: { seq: 99 }, resumeJobs: ['job-7'] });
    await second.finish('succeeded', { watermark: { cursor: [99] } });
    const third = mk();
    expect(await third.start()).toMatchObject({ resumed: false, watermark: { cursor: [99] } });
    await third.finish('succeeded');
  });
});
