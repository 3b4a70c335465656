import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../../src/checkpoint/checkpointer.js';
import { LocalCheckpointStore, type CheckpointStore, type Lock } from '../../../src/checkpoint/store.js';
import type { Checkpoint } from '../../../src/checkpoint/format.js';
import { newStats } from '../../../src/core/stats.js';

const HASH_A = 'sha256:' + 'a'.repeat(64);
const HASH_B = 'sha256:' + 'b'.repeat(64);
const pos = (seq: number) => ({ seq, source: 'orders.csv', line: seq + 2 });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ckptr-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const make = (hash = HASH_A, store: CheckpointStore = new LocalCheckpointStore(dir)) =>
  new Checkpointer({ store, pipeline: 'orders', configHash: hash });

/** A store whose writes complete only when the test says so. */
class ManualStore implements CheckpointStore {
  readonly location = 'memory';
  writes: Checkpoint[] = [];
  #pending: (() => void)[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = false;
  async read() {
    return undefined;
  }
  write(cp: Checkpoint): Promise<void> {
    this.writes.push(JSON.parse(JSON.stringify(cp)));
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const fail = this.failNext;
    this.failNext = false;
    return new Promise((resolve, reject) => {
      this.#pending.push(() => {
        this.inFlight--;
        if (fail) reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
        else resolve();
      });
    });
  }
  /** Complete the oldest pending write and let callbacks run. */
  async complete(): Promise<void> {
    for (let i = 0; i < 100 && this.#pending.length === 0; i++) await new Promise((r) => setImmediate(r));
    const next = this.#pending.shift();
    if (!next) throw new Error('no write pending');
    next();
    await new Promise((r) => setImmediate(r));
  }
  async clear() {}
  async lock(): Promise<Lock> {
    return { info: { pid: 1, hostname: 'h', startedAt: new Date().toISOString(), token: 't' }, release: async () => {}, onLost: () => {} };
  }
}

describe('Checkpointer', () => {
  it('schema-checks the first and the final write, and at most one progress write per second', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const checked: boolean[] = [];
    const inner = new LocalCheckpointStore(dir);
    const store: CheckpointStore = {
      location: inner.location,
      read: () => inner.read(),
      clear: () => inner.clear(),
      lock: () => inner.lock(),
      write: (cp, options) => {
        checked.push(options?.validate ?? true);
        return inner.write(cp, options);
      },
    };
    const c = new Checkpointer({ store, pipeline: 'orders', configHash: HASH_A, now: () => new Date(clock) });
    await c.start();
    for (const [seq, later] of [[1, 0], [2, 500], [3, 600], [4, 10]] as const) {
      clock += later;
      c.update({ position: pos(seq) });
      await c.flush();
    }
    await c.finish('succeeded');
    expect(checked).toEqual([true, false, false, true, false, true]);
  });

  it('starts a new run, writes running, and resumes it after an interruption', async () => {
    const first = make();
    const s1 = await first.start();
    expect(s1).toMatchObject({ resumed: false, resumeJobs: [] });
    expect(s1.startAfter).toBeUndefined();
    const stats = newStats();
    stats.rows.read = 42;
    first.update({ position: pos(41), pendingJobs: ['job-1'], counters: stats, rejects: { path: 'r.ndjson', count: 1 } });
    await first.flush();
    await first.finish('interrupted');

    const second = make();
    const s2 = await second.start();
    expect(s2).toMatchObject({ runId: s1.runId, resumed: true, startAfter: pos(41), resumeJobs: ['job-1'] });
    expect(s2.counters?.rows.read).toBe(42);
    expect(s2.rejects).toEqual({ path: 'r.ndjson', count: 1 });
    await second.finish('succeeded', { watermark: { cursor: ['2026-01-02T00:00:00Z', 7] } });

    const stored = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    expect(stored).toMatchObject({ status: 'succeeded', pendingJobs: [], lastSuccess: { runId: s1.runId } });
    expect(stored.position).toBeUndefined();

    const third = make();
    const s3 = await third.start();
    expect(s3).toMatchObject({ resumed: false, watermark: { cursor: ['2026-01-02T00:00:00Z', 7] } });
    expect(s3.runId).not.toBe(s1.runId);
    await third.finish('succeeded'); // keeps the watermark when none is given
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')).watermark).toEqual({ cursor: ['2026-01-02T00:00:00Z', 7] });
  });

  it('keeps where each pending job begins across a resume; rewind moves the position back', async () => {
    const first = make();
    await first.start();
    first.update({ position: pos(99), pendingJobs: ['job-1', 'job-2'], pendingJobsAfter: { 'job-1': null, 'job-2': pos(49) } });
    await first.finish('interrupted');

    const second = make();
    const s = await second.start();
    expect(s.resumeJobsAfter).toEqual({ 'job-1': null, 'job-2': pos(49) });
    second.rewind(pos(49), ['job-1'], { 'job-1': null });
    second.update({ position: pos(60) }); // forward from the rewound position, not ignored as older than 99
    await second.finish('failed');
    const stored = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    expect(stored).toMatchObject({ position: pos(60), pendingJobs: ['job-1'], pendingJobsAfter: { 'job-1': null } });

    const third = make();
    await third.start();
    await third.finish('succeeded');
    const done = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    expect(done.pendingJobsAfter).toBeUndefined();
  });

  it('keeps the source plan of an unfinished run for its resume, and clears it when the run succeeds', async () => {
    const plan = { files: [{ source: 'a.csv', size: 10, mtimeMs: 1, sha256: 'f'.repeat(64) }, { source: 'b.csv', learned: { newline: 'cr' } }] };
    const first = make();
    await first.start();
    first.update({ sourcePlan: plan });
    first.update({ position: pos(3) }); // a later update keeps the plan
    await first.flush();
    await first.finish('interrupted');
    const second = make();
    const s2 = await second.start();
    expect(s2).toMatchObject({ resumed: true, sourcePlan: plan });
    await second.flush();
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')).sourcePlan).toEqual(plan);
    await second.finish('succeeded');
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')).sourcePlan).toBeUndefined();
    const third = make();
    expect((await third.start()).sourcePlan).toBeUndefined();
    await third.finish('succeeded');
  });

  it('resumes a run that crashed while running (status left at running)', async () => {
    const crashed = make();
    const s1 = await crashed.start();
    crashed.update({ position: pos(10) });
    await crashed.flush();
    await crashed.abandon(); // lock released; no final status, as after kill -9 + stale lock takeover
    const s2 = await make().start();
    expect(s2).toMatchObject({ runId: s1.runId, resumed: true, startAfter: pos(10) });
  });

  it('full refresh: reads with no watermark, keeps the stored one until it succeeds, resumes as a full refresh', async () => {
    const V1 = 'sha256:' + '1'.repeat(64);
    const V2 = 'sha256:' + '2'.repeat(64);
    const withVersion = (version: string) => new Checkpointer({ store: new LocalCheckpointStore(dir), pipeline: 'orders', configHash: HASH_A, version });
    const first = withVersion(V1);
    await first.start();
    await first.finish('succeeded', { watermark: { files: ['a'] } });
    const incremental = withVersion(V2);
    expect(await incremental.start()).toMatchObject({ watermark: { files: ['a'] }, watermarkVersion: V1 });
    await incremental.finish('succeeded', {});
    const full = withVersion(V2);
    const started = await full.start({ fullRefresh: true });
    expect(started.watermark).toBeUndefined();
    expect(started.fullRefresh).toBe(true);
    await full.finish('interrupted', { position: pos(3) });
    const stored = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as Checkpoint;
    expect(stored).toMatchObject({ fullRefresh: true, watermark: { files: ['a'] }, watermarkVersion: V1 });
    const resumed = withVersion(V2);
    expect(await resumed.start()).toMatchObject({ resumed: true, fullRefresh: true });
    await resumed.finish('succeeded', { watermark: { files: ['a', 'b'] } });
    const done = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as Checkpoint;
    expect(done).toMatchObject({ watermark: { files: ['a', 'b'] }, watermarkVersion: V2 });
    expect(done.fullRefresh).toBeUndefined();
  });

  it('refuses to resume when the pipeline changed (CHECKPOINT_MISMATCH) and starts over with restart', async () => {
    const first = make(HASH_A);
    await first.start();
    first.update({ position: pos(5), pendingJobs: ['job-9'] });
    await first.finish('failed');

    await expect(make(HASH_B).start()).rejects.toMatchObject({ code: 'CHECKPOINT_MISMATCH' });
    // the refused start released the lock
    const restarted = make(HASH_B);
    const s = await restarted.start({ restart: true });
    expect(s).toMatchObject({ resumed: false, resumeJobs: [], discarded: { status: 'failed', pendingJobs: ['job-9'], configChanged: true } });
    expect(s.startAfter).toBeUndefined();
    await restarted.finish('interrupted');
  });

  it('starts over on a corrupt checkpoint only with restart', async () => {
    await writeFile(join(dir, 'checkpoint.json'), 'garbage');
    await expect(make().start()).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const c = make();
    expect(await c.start({ restart: true })).toMatchObject({ resumed: false });
    await c.finish('succeeded');
  });

  it('holds the lock for the whole run', async () => {
    const c = make();
    await c.start();
    await expect(make().start()).rejects.toMatchObject({ code: 'LOCKED' });
    await c.finish('succeeded');
    const next = make();
    await next.start();
    await next.finish('succeeded');
  });

  it('coalesces updates: one write in flight, the latest state wins, update never waits', async () => {
    const store = new ManualStore();
    const c = make(HASH_A, store);
    const starting = c.start();
    await store.complete(); // the initial running write
    await starting;
    expect(store.writes).toHaveLength(1);

    c.update({ position: pos(1) }); // starts write #2
    for (let i = 2; i <= 100; i++) c.update({ position: pos(i) }); // coalesced
    expect(store.writes).toHaveLength(2);
    expect(store.writes[1]!.position?.seq).toBe(1);
    await store.complete(); // write #2 done → write #3 with the latest state
    expect(store.writes).toHaveLength(3);
    expect(store.writes[2]!.position?.seq).toBe(100);
    c.update({ position: pos(50) }); // older positions never move the checkpoint back
    await store.complete(); // write #3 done → write #4 (dirty)
    expect(store.writes[3]!.position?.seq).toBe(100);
    const finishing = c.finish('succeeded');
    await store.complete(); // write #4
    await store.complete(); // the final write
    await finishing;
    expect(store.maxInFlight).toBe(1);
    expect(store.writes.at(-1)!.status).toBe('succeeded');
  });

  it('keeps a failed background write as an error thrown by flush, not by update', async () => {
    const store = new ManualStore();
    const c = make(HASH_A, store);
    const starting = c.start();
    await store.complete();
    await starting;
    store.failNext = true;
    c.update({ position: pos(1) });
    await store.complete();
    expect(() => c.update({ position: pos(2) })).not.toThrow();
    expect(c.error).toMatchObject({ code: 'ENOSPC' });
    await expect(c.flush()).rejects.toMatchObject({ code: 'ENOSPC' });
  });

  it('writes every N updates with checkpoint.every', async () => {
    const store = new ManualStore();
    const c = new Checkpointer({ store, pipeline: 'orders', configHash: HASH_A, every: 3 });
    const starting = c.start();
    await store.complete();
    await starting;
    c.update({ position: pos(1) });
    c.update({ position: pos(2) });
    expect(store.writes).toHaveLength(1);
    c.update({ position: pos(3) });
    expect(store.writes).toHaveLength(2);
    await store.complete();
    c.update({ position: pos(4) });
    const flushing = c.flush();
    await store.complete();
    await flushing;
    expect(store.writes.at(-1)!.position?.seq).toBe(4);
  });
});
