import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, makeOrders, ordersPipeline, readCheckpointFile, readRejects, sleep, start, rejectsFileOf } from '../helpers/resume.js';

/**
 * Issue 12: a resumed run re-sends the tail its checkpoint had not passed, and Klaviyo may already hold some of those
 * events. Klaviyo documents a repeated `unique_id` as accepted and ignored; under the emulator's stricter answer
 * (`duplicateEvents: 'reject'`: 400 naming the event's unique_id, nothing of the request stored) the loader
 * acknowledges those events as duplicates and sends the rest of the request again: nothing is rejected, and every
 * event is held exactly once.
 */

const KEY = 'pk_resume_duplicate_events_00000000';
let tmp: string;
let emulator: EmulatorHandle;
let orders: Awaited<ReturnType<typeof makeOrders>>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-dup-events-'));
  orders = await makeOrders(path.join(tmp, 'orders.csv'), { rows: 1500, seed: 12, badAt: [] });
  // paced at 4 requests of 50 events a second; a checkpoint every 8 acknowledged batches (400 events): when the run
  // is killed, the emulator holds events the checkpoint has not passed
  const yaml = ordersPipeline({ name: 'dup-events', path: 'orders.csv', eventsBatch: 50, burst: 4, steady: 240 }) + 'checkpoint:\n  every: 8\n';
  await writeFile(path.join(tmp, 'orders.yaml'), yaml);
  emulator = await startEmulator({ port: 0, limits: 'off', duplicateEvents: 'reject' });
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** The unique_ids of the items that start at or before record `seq`. */
const idsUpTo = (seq: number): number => orders.idsBySeq.slice(0, seq + 1).reduce((n, ids) => n + ids.length, 0);

describe("a resumed run under duplicateEvents: 'reject'", () => {
  it('acknowledges the events Klaviyo already holds as duplicates: nothing rejected, every event once', async () => {
    const pipeline = path.join(tmp, 'orders.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const first = start(['run', pipeline, '--state-dir', stateDir], env);
    // kill once the emulator holds at least 100 events past the checkpoint
    let held = 0;
    let passed = 0;
    for (let i = 0; i < 600; i++) {
      const cp = await readCheckpointFile(stateDir, 'dup-events');
      held = (await emulatorEvents(emulator.url, KEY)).length;
      passed = cp?.position ? idsUpTo(cp.position.seq) : 0;
      if (cp?.position && held >= passed + 100) break;
      await sleep(50);
    }
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const cp = (await readCheckpointFile(stateDir, 'dup-events'))!;
    const before = (await emulatorEvents(emulator.url, KEY)).length;
    expect(cp.status).toBe('running');
    expect(before).toBeGreaterThan(idsUpTo(cp.position!.seq)); // the resume re-sends events Klaviyo holds
    expect(before).toBeLessThan(orders.uniqueIds.size);

    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env });
    const report = JSON.parse(second.stdout);
    if (second.code !== 0) console.log(second.stdout, second.stderr.slice(0, 3000));
    expect(second.code).toBe(0);
    expect(report.status).toBe('succeeded');
    expect(report.resumed).toBe(true);
    expect(report.rows.rejected).toBe(0);
    expect(report.rows.loaded).toBe(orders.rows);
    expect(report.items.duplicates).toBeGreaterThan(0);
    expect(report.rejects.count).toBe(0);
    expect(await readRejects(await rejectsFileOf(stateDir, 'dup-events'))).toEqual([]);

    const ids = (await emulatorEvents(emulator.url, KEY)).map((e) => e.unique_id);
    expect(new Set(ids).size).toBe(ids.length); // exactly once
    expect(new Set(ids)).toEqual(orders.uniqueIds);
    // the emulator did refuse requests of the resumed run for the events it held
    const state = JSON.parse(await readFile(path.join(stateDir, 'dup-events', 'checkpoint.json'), 'utf8'));
    expect(state.status).toBe('succeeded');
  }, 120_000);
});
