import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inShard } from '../../src/core/shard.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/s3/client.js';
import { cli } from '../helpers/cli.js';
import { createTestSchema } from '../helpers/postgres.js';
import { startS3rver } from '../helpers/s3rver.js';
import { emulatorEvents, emulatorState, makeOrders, ordersPipeline, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * Issue 14, "Scale-out": `run --shard i/n` reads a disjoint part of the input (here eight order files, whole files by
 * name hash), each shard with its own checkpoint. Three shard processes sharing the account's limits through Redis
 * load every event exactly once with no more 429s than one process; a shard killed and run again resumes alone.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const FILES = 6;
// the emulator's limits × 0.5: the bulk events endpoint (tier M, 10/s, 150/min) allows 5 requests a second
const FACTOR = 0.5;
let tmp: string;
let expected: Set<string>;
const perFile = new Map<string, Set<string>>();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-shard-'));
  await mkdir(path.join(tmp, 'drops'));
  expected = new Set();
  for (let i = 0; i < FILES; i++) {
    const name = `drops/orders-${i}.csv`;
    const { uniqueIds } = await makeOrders(path.join(tmp, name), { rows: 30, seed: 40 + i, namePrefix: `F${i}-` });
    perFile.set(name, uniqueIds);
    for (const id of uniqueIds) expected.add(id);
  }
  await writeFile(
    path.join(tmp, 'orders.yaml'),
    ordersPipeline({ name: 'sharded', path: 'drops/*.csv', eventsBatch: 20, burst: 5, steady: 75 }) + 'rejects: { path: rejects/rejects.ndjson }\n',
  );
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function withEmulator<T>(fn: (e: EmulatorHandle) => Promise<T>): Promise<T> {
  const emulator = await startEmulator({ port: 0, limits: FACTOR });
  try {
    return await fn(emulator);
  } finally {
    await emulator.close();
  }
}

const KEY = `pk_shard_test_${randomUUID().replace(/-/g, '')}`; // fresh per run: Redis keeps an account's shared windows
const env = (e: EmulatorHandle): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: e.url, KLAVIYO_API_KEY: KEY });
const throttled = async (e: EmulatorHandle): Promise<number> => ((await emulatorState(e.url, KEY)).requests as { throttled: number }).throttled;

describe('run --shard i/n (CLI, built binary)', () => {
  it('three shards with Redis load every event once, each file by one shard, with no more 429s than one process', async () => {
    const one = await withEmulator(async (e) => {
      const r = await cli(['run', path.join(tmp, 'orders.yaml'), '--state-dir', path.join(tmp, 'state-one'), '--json'], { env: env(e) });
      expect(r.code).toBe(0);
      return { read: (JSON.parse(r.stdout) as { rows: { read: number } }).rows.read, throttled: await throttled(e), ids: (await emulatorEvents(e.url, KEY)).map((x) => x.unique_id) };
    });
    expect(new Set(one.ids)).toEqual(expected);

    await withEmulator(async (e) => {
      const stateDir = path.join(tmp, 'state-three');
      const runs = [1, 2, 3].map((i) =>
        start(['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir, '--shard', `${i}/3`, '--redis-url', REDIS_URL, '--json'], env(e)),
      );
      const exits = await Promise.all(runs.map((r) => r.exited));
      expect(exits.map((x) => x.code)).toEqual([0, 0, 0]);
      const reports = exits.map((x) => JSON.parse(x.stdout) as { pipeline: { name: string }; rows: { read: number } });
      expect(reports.map((r) => r.pipeline.name)).toEqual(['sharded.shard-1-of-3', 'sharded.shard-2-of-3', 'sharded.shard-3-of-3']);
      // each shard read exactly the files whose name hashes to it
      for (let i = 1; i <= 3; i++) {
        const mine = [...perFile.keys()].filter((f) => inShard(f, { index: i, count: 3 }));
        const cp = await readCheckpointFile(stateDir, `sharded.shard-${i}-of-3`);
        expect(cp?.status).toBe('succeeded');
        expect((cp?.watermark as { files: { path: string }[] }).files.map((f) => f.path.slice(f.path.indexOf('drops/'))).sort()).toEqual(mine.sort());
      }
      expect(reports.reduce((n, r) => n + r.rows.read, 0)).toBe(one.read);
      const ids = (await emulatorEvents(e.url, KEY)).map((x) => x.unique_id);
      expect(ids.length).toBe(expected.size);
      expect(new Set(ids)).toEqual(expected);
      expect(await throttled(e)).toBeLessThanOrEqual(one.throttled);
    });
  }, 180_000);

  // without Redis: a process SIGKILLed while holding Redis-shared tokens stalls the next one (docs/loader.md, known limit)
  it('a shard killed mid-run and run again resumes alone; the other shards are untouched', async () => {
    await withEmulator(async (e) => {
      const stateDir = path.join(tmp, 'state-kill');
      const args = (i: number): string[] => ['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir, '--shard', `${i}/2`];
      const first = await cli(args(1), { env: env(e) });
      expect(first.code).toBe(0);
      const firstCheckpoint = await readFile(path.join(stateDir, 'sharded.shard-1-of-2', 'checkpoint.json'), 'utf8');

      const victim = start(args(2), env(e));
      await waitForCheckpoint(stateDir, 'sharded.shard-2-of-2', (cp) => cp.position !== undefined);
      victim.child.kill('SIGKILL');
      await victim.exited;
      expect((await readCheckpointFile(stateDir, 'sharded.shard-2-of-2'))?.status).toBe('running');

      const again = await cli([...args(2), '--json'], { env: env(e) });
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout).resumed).toBe(true);
      // shard 1's state is exactly as its own run left it
      expect(await readFile(path.join(stateDir, 'sharded.shard-1-of-2', 'checkpoint.json'), 'utf8')).toBe(firstCheckpoint);
      const ids = (await emulatorEvents(e.url, KEY)).map((x) => x.unique_id);
      expect(ids.length).toBe(expected.size);
      expect(new Set(ids)).toEqual(expected);
    });
  }, 180_000);

  it('PostgreSQL rows (by source.shardKey hash) and S3 objects (by key hash) split into disjoint parts that add up', async () => {
    const schema = await createTestSchema('etl_shard');
    const s3 = await startS3rver(['drops']);
    try {
      await schema.client.query('CREATE TABLE customers (id int primary key, email text)');
      await schema.client.query("INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 300) g");
      const pgFile = path.join(tmp, 'pg.yaml');
      await writeFile(
        pgFile,
        `version: 1\nname: pg-shard\nsource: { type: postgres, url: "\${DATABASE_URL}", table: ${schema.name}.customers, shardKey: id }\ntransform:\n  type: profile\n  profile:\n    email: { column: email, type: email }\ndestination: { type: klaviyo }\n`,
      );
      const client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
      for (let i = 0; i < 9; i++) {
        await client.send(new PutObjectCommand({ Bucket: 'drops', Key: `day/${i}.csv`, Body: `Email\nx${i}a@example.com\nx${i}b@example.com\n` }));
      }
      client.destroy();
      const s3File = path.join(tmp, 's3.yaml');
      await writeFile(
        s3File,
        'version: 1\nname: s3-shard\nsource: { type: s3, bucket: drops, prefix: day/, endpoint: "${S3_ENDPOINT}", forcePathStyle: true }\ntransform:\n  type: profile\n  profile:\n    email: { column: Email, type: email }\ndestination: { type: klaviyo }\n',
      );
      const shardEnv = { ...s3.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', S3_ENDPOINT: s3.endpoint, DATABASE_URL: schema.url };
      // what each shard must read: PostgreSQL's hashtext split of the ids, our key-hash split of the object keys
      const pgExpected: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { rows } = await schema.client.query('SELECT count(*)::int AS n FROM customers WHERE mod(abs(hashtext(id::text)::bigint), 3) = $1', [i]);
        pgExpected.push(rows[0].n as number);
      }
      const keys = Array.from({ length: 9 }, (_, i) => `day/${i}.csv`);
      const s3Expected = [1, 2, 3].map((index) => 2 * keys.filter((k) => inShard(k, { index, count: 3 })).length);
      for (const [file, expectedReads, total] of [[pgFile, pgExpected, 300], [s3File, s3Expected, 18]] as const) {
        const reads: number[] = [];
        for (let i = 1; i <= 3; i++) {
          const r = await cli(['run', file, '--dry-run', '--shard', `${i}/3`, '--json'], { env: shardEnv });
          expect(r.stderr).toBe('');
          expect(r.code).toBe(0);
          reads.push((JSON.parse(r.stdout) as { rows: { read: number } }).rows.read);
        }
        expect(reads).toEqual(expectedReads);
        expect(reads.reduce((a, b) => a + b, 0)).toBe(total);
      }
      expect(pgExpected.every((n) => n > 0 && n < 300)).toBe(true);
    } finally {
      await s3.close();
      await schema.drop();
    }
  }, 120_000);

  it('refuses --shard for a source that cannot be split, and a malformed value (usage errors, exit 2)', async () => {
    const exportFile = path.join(tmp, 'export.yaml');
    await writeFile(exportFile, 'version: 1\nname: ex\nsource: { type: klaviyo, list: L1 }\ntransform: { type: export, columns: { email: email } }\ndestination: { type: csv, path: out.csv }\n');
    const r = await cli(['run', exportFile, '--shard', '1/2', '--emulator']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--shard splits the input of');
    const bad = await cli(['run', path.join(tmp, 'orders.yaml'), '--shard', '4/3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Expected --shard to be i/n');
  });
});
