import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalCheckpointStore, createCheckpointStore } from '../../../src/checkpoint/store.js';
import type { Checkpoint } from '../../../src/checkpoint/format.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const checkpoint = (seq: number): Checkpoint => ({
  version: 1,
  pipeline: 'orders',
  runId: 'run-1',
  status: 'running',
  configHash: 'sha256:' + 'b'.repeat(64),
  startedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  position: { seq, source: 'orders.csv' },
  pendingJobs: [],
});

/** Start a child process, wait for it to exit after being killed, return its (now dead) pid. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid!;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  return pid;
}

describe('LocalCheckpointStore', () => {
  it('reads nothing before the first write and round-trips a checkpoint', async () => {
    const store = new LocalCheckpointStore(join(dir, 'nested', 'orders'));
    expect(await store.read()).toBeUndefined();
    await store.write(checkpoint(5));
    expect((await store.read())?.position?.seq).toBe(5);
    await store.write(checkpoint(9));
    expect((await store.read())?.position?.seq).toBe(9);
    await store.clear();
    expect(await store.read()).toBeUndefined();
    await store.clear(); // idempotent
  });

  it('keeps the old checkpoint when a write crashes between the temp file and the rename', async () => {
    const store = new LocalCheckpointStore(dir);
    await store.write(checkpoint(1));
    const crashing = new LocalCheckpointStore(dir, {
      beforeRename: () => {
        throw new Error('simulated crash');
      },
    });
    await expect(crashing.write(checkpoint(2))).rejects.toThrow('simulated crash');
    // A real crash leaves the temp file behind: simulate that too.
    await writeFile(join(dir, 'checkpoint.json.99999.deadbeef.tmp'), '{"version":1,"runId":"half-writ');
    expect((await store.read())?.position?.seq).toBe(1);
    // The next lock holder removes the leftover temp file.
    const lock = await store.lock();
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await lock.release();
  });

  it('reports a corrupted file as CHECKPOINT_CORRUPT', async () => {
    const store = new LocalCheckpointStore(dir);
    await writeFile(join(dir, 'checkpoint.json'), '{"version":1,"pipeline":"orders","runId":');
    await expect(store.read()).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
  });

  it('refuses a second lock with LOCKED naming the pid, and allows it again after release', async () => {
    const store = new LocalCheckpointStore(dir);
    const lock = await store.lock();
    const content = JSON.parse(await readFile(join(dir, 'checkpoint.lock'), 'utf8'));
    expect(content).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(content.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const err = await new LocalCheckpointStore(dir).lock().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LOCKED', context: expect.objectContaining({ pid: process.pid }) });
    expect((err as Error).message).toContain(String(process.pid));
    await lock.release();
    const again = await store.lock();
    await again.release();
  });

  it('takes over a stale lock left by a dead process on this host', async () => {
    const pid = await deadPid();
    await writeFile(
      join(dir, 'checkpoint.lock'),
      JSON.stringify({ pid, hostname: hostname(), startedAt: new Date().toISOString(), token: 'old' }),
    );
    const lock = await new LocalCheckpointStore(dir).lock();
    expect(lock.info.pid).toBe(process.pid);
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.lock'), 'utf8')).token).toBe(lock.info.token);
    await lock.release();
  });

  it('does not take over a lock of a live process or of another host', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    try {
      const lockFile = join(dir, 'checkpoint.lock');
      await writeFile(lockFile, JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: new Date().toISOString(), token: 't' }));
      await expect(new LocalCheckpointStore(dir).lock()).rejects.toMatchObject({ code: 'LOCKED', context: expect.objectContaining({ pid: child.pid }) });
      const dead = await deadPid();
      await writeFile(lockFile, JSON.stringify({ pid: dead, hostname: 'other-host', startedAt: new Date().toISOString(), token: 't' }));
      await expect(new LocalCheckpointStore(dir).lock()).rejects.toMatchObject({ code: 'LOCKED' });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('treats an unreadable lock file as held while fresh and as stale once old', async () => {
    const lockFile = join(dir, 'checkpoint.lock');
    await writeFile(lockFile, '');
    await expect(new LocalCheckpointStore(dir).lock()).rejects.toMatchObject({ code: 'LOCKED' });
    const later = new LocalCheckpointStore(dir, { lockEnv: { now: () => new Date(Date.now() + 60_000) } });
    const lock = await later.lock();
    await lock.release();
  });

  it('release does not remove a lock that is no longer ours', async () => {
    const store = new LocalCheckpointStore(dir);
    const lock = await store.lock();
    await writeFile(join(dir, 'checkpoint.lock'), JSON.stringify({ ...lock.info, token: 'someone-else' }));
    await lock.release();
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.lock'), 'utf8')).token).toBe('someone-else');
  });

  it('resolves the default directory beside the pipeline file', async () => {
    const store = createCheckpointStore({ store: 'local', forcePathStyle: false, every: 1, leaseSeconds: 300 }, { pipelineName: 'orders', baseDir: dir });
    expect(store.location).toBe(join(dir, '.klaviyo-etl', 'orders', 'checkpoint.json'));
    const custom = createCheckpointStore({ store: 'local', dir: 'state', forcePathStyle: false, every: 1, leaseSeconds: 300 }, { pipelineName: 'orders', baseDir: dir });
    expect(custom.location).toBe(join(dir, 'state', 'checkpoint.json'));
  });
});
