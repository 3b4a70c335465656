import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createS3Client } from '../../src/s3/client.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, makeOrders, ordersPipeline, sleep, start } from '../helpers/resume.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

/**
 * Issue 14, "Locks and isolation": the run lock is a lease. A lock left by a process on another host (a dead
 * Kubernetes pod) is taken over once its lease ran out, and refused before; a live run renews its lease, and a run
 * whose lock was taken over anyway stops with LOCK_LOST without writing its checkpoint again.
 */

const KEY = 'pk_lease_test_000000000000000000000';
const STATE_BUCKET = 'state';
let tmp: string;
let emulator: EmulatorHandle;
let s3: TestS3;
let client: S3Client;
let expected: Set<string>;

/** A lock as a pod that died on another host would have left it. */
const podLock = (expiresInMs: number): string =>
  JSON.stringify({
    pid: 1,
    hostname: 'nightly-orders-29080140-x7k2p',
    startedAt: new Date(Date.now() - 3_600_000).toISOString(),
    token: randomUUID(),
    ttlMs: 300_000,
    expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
  }) + '\n';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-lease-'));
  expected = (await makeOrders(path.join(tmp, 'orders.csv'), { rows: 400, seed: 5 })).uniqueIds;
  emulator = await startEmulator({ port: 0, limits: 'off' });
  s3 = await startS3rver([STATE_BUCKET]);
  client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function pipeline(name: string, extra = ''): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(file, ordersPipeline({ name, path: 'orders.csv', eventsBatch: 100 }) + extra);
  return file;
}

const env = (): NodeJS.ProcessEnv => ({ ...s3.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY, S3_ENDPOINT: s3.endpoint });

const storedIds = async (metric: string): Promise<string[]> =>
  (await emulatorEvents(emulator.url, KEY)).filter((e) => e.metric === metric).map((e) => String(e.unique_id));

describe('run lock lease (CLI, built binary)', () => {
  it('local store: a dead pod’s lock is refused while its lease runs, taken over once it ran out', async () => {
    const file = await pipeline('lease-local', '');
    const stateDir = path.join(tmp, 'state-local');
    const lockFile = path.join(stateDir, 'lease-local', 'checkpoint.lock');
    await mkdir(path.dirname(lockFile), { recursive: true });
    await writeFile(lockFile, podLock(120_000));

    const refused = await cli(['run', file, '--state-dir', stateDir], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error [LOCKED]');
    expect(refused.stderr).toContain('nightly-orders-29080140-x7k2p');
    expect(refused.stderr).toContain('lease renewed until');
    expect(JSON.parse(await readFile(lockFile, 'utf8')).hostname).toBe('nightly-orders-29080140-x7k2p');

    await writeFile(lockFile, podLock(-1_000));
    const taken = await cli(['run', file, '--state-dir', stateDir], { env: env() });
    expect(taken.stderr).toBe('');
    expect(taken.code).toBe(0);
    await expect(readFile(lockFile, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('S3 store: the same rules for a lock object', async () => {
    const name = 'lease-s3';
    const file = await pipeline(
      name,
      `checkpoint:
  store: s3
  url: s3://${STATE_BUCKET}/klaviyo-etl/
  endpoint: \${S3_ENDPOINT}
  forcePathStyle: true
`,
    );
    const Key = `klaviyo-etl/${name}/checkpoint.lock`;
    await client.send(new PutObjectCommand({ Bucket: STATE_BUCKET, Key, Body: podLock(120_000) }));
    const refused = await cli(['run', file], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error [LOCKED]');
    expect(refused.stderr).toContain('nightly-orders-29080140-x7k2p');

    await client.send(new PutObjectCommand({ Bucket: STATE_BUCKET, Key, Body: podLock(-1_000) }));
    const taken = await cli(['run', file], { env: env() });
    expect(taken.stderr).toBe('');
    expect(taken.code).toBe(0);
    await expect(client.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    const cp = await client.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key: `klaviyo-etl/${name}/checkpoint.json` }));
    expect(JSON.parse(await cp.Body!.transformToString()).status).toBe('succeeded');
    await client.send(new DeleteObjectCommand({ Bucket: STATE_BUCKET, Key: `klaviyo-etl/${name}/checkpoint.json` }));
  });

  it('a live run renews its lease; taken over anyway, it stops with LOCK_LOST and leaves the new holder alone', async () => {
    const name = 'lease-live';
    // 2 requests of 100 events per second: the run lasts ~4 s, several 1-second leases
    const file = path.join(tmp, `${name}.yaml`);
    await writeFile(
      file,
      ordersPipeline({ name, path: 'orders.csv', eventsBatch: 100, burst: 2, steady: 6000 }) + 'checkpoint:\n  leaseSeconds: 1\n',
    );
    const stateDir = path.join(tmp, 'state-live');
    const lockFile = path.join(stateDir, name, 'checkpoint.lock');
    const report = path.join(tmp, 'live-report.json');
    const run = start(['run', file, '--state-dir', stateDir, '--report', report], env());

    // watch the lease: it must move forward and never be seen expired while the run lives
    const seen = new Set<string>();
    let token: string | undefined;
    const deadline = Date.now() + 30_000;
    while (seen.size < 3 && Date.now() < deadline) {
      const text = await readFile(lockFile, 'utf8').catch(() => undefined);
      if (text) {
        const lock = JSON.parse(text) as { token: string; expiresAt: string; ttlMs: number };
        expect(lock.ttlMs).toBe(1000);
        expect(Date.parse(lock.expiresAt)).toBeGreaterThan(Date.now() - 200); // renewed every ~333 ms
        token ??= lock.token;
        expect(lock.token).toBe(token);
        seen.add(lock.expiresAt);
      }
      await sleep(50);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3);

    // another run takes the lock over (as if this one had been frozen past its lease)
    const intruder = podLock(600_000);
    await writeFile(lockFile, intruder);
    const exited = await run.exited;
    expect(exited.code).toBe(1);
    expect(exited.stderr).toContain('LOCK_LOST');
    const r = JSON.parse(await readFile(report, 'utf8'));
    expect(r.status).toBe('failed');
    expect(r.error.code).toBe('LOCK_LOST');
    // the new holder's lock is untouched (not renewed over, not released by the old run)
    expect(await readFile(lockFile, 'utf8')).toBe(intruder);
    // whatever was sent is in Klaviyo once; nothing is lost for the next run (it resumes from the checkpoint)
    const ids = await storedIds('Placed Order');
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => expected.has(id))).toBe(true);
  });
});
