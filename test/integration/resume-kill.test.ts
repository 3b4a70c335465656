import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import {
  customersPipeline,
  emulatorEvents,
  emulatorProfiles,
  interruptLoop,
  lockedBy,
  makeCustomers,
  makeOrders,
  ordersPipeline,
  readCheckpointFile,
  readRejects,
  rejectKeys,
  expectedRejectKeys,
  type BadRow,
  type ExpectedProfile,
  rejectsFileOf,
} from '../helpers/resume.js';
import { prng } from '../helpers/random.js';

/**
 * Issue 5: a 50,000-row mixed workload (orders → Placed Order + Ordered Product events; customers → profiles via
 * bulk import jobs) is SIGKILLed at seeded random moments at least 10 times per pipeline, resumed each time by
 * running the same command again, and must end exactly once in the emulator with only the seeded bad rows
 * rejected, each once.
 */

const SEED = 20261126;
const ORDER_ROWS = 30_000;
const CUSTOMER_ROWS = 19_700;
const CUSTOMER_UPDATES = 300;
const KILLS = 10;
const EVENTS_KEY = 'pk_resume_kill_events_000000000000';
const PROFILES_KEY = 'pk_resume_kill_profiles_0000000000';

let tmp: string;
let emulator: EmulatorHandle;
let orders: { uniqueIds: Set<string>; bad: BadRow[]; rows: number };
let customers: { profiles: Map<string, ExpectedProfile>; bad: BadRow[]; rows: number };

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-kill-'));
  orders = await makeOrders(path.join(tmp, 'orders.csv'), { rows: ORDER_ROWS, seed: SEED, badAt: [0.3, 0.7] });
  customers = await makeCustomers(path.join(tmp, 'customers.csv'), { rows: CUSTOMER_ROWS, seed: SEED, updates: CUSTOMER_UPDATES });
  // Paced by the client-side rate limits in the pipeline files (at most 1,000 events / 500 profiles a second), so
  // a full run takes tens of seconds and ten kills at 0-900 ms after the run took its lock (each run can also send
  // one burst at once: 8 × 125 events, 2 × 250 profiles) cannot finish the work early, however fast the machine. Import jobs are first
  // polled 1 s after submission, so most kills land while jobs are pending.
  await writeFile(path.join(tmp, 'orders.yaml'), ordersPipeline({ name: 'kill-orders', path: 'orders.csv', eventsBatch: 125, burst: 8, steady: 480 }));
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'kill-customers', path: 'customers.csv', profilesBatch: 250, burst: 2, steady: 120 }));
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 3000 });
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

const env = (key: string): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key });

describe('SIGKILL at random moments, resume until done (50,000 rows, mixed)', () => {
  it('orders → events: every expected unique_id exactly once, only the seeded bad rows rejected', async () => {
    const stateDir = path.join(tmp, 'state');
    const report = path.join(tmp, 'orders-report.json');
    const loop = await interruptLoop({
      args: ['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir, '--report', report],
      env: env(EVENTS_KEY),
      random: prng(SEED),
      kills: KILLS,
      minMs: 0,
      maxMs: 900,
      signal: 'SIGKILL',
      ready: (child) => lockedBy(stateDir, 'kill-orders', child.pid!),
      onInterrupted: async (exit) => {
        expect(exit.signal).toBe('SIGKILL');
        // the checkpoint is always complete and parseable (atomic rename), still `running` after a kill
        const cp = await readCheckpointFile(stateDir, 'kill-orders');
        if (cp) expect(cp.status).toBe('running');
      },
    });
    expect(loop.kills).toBeGreaterThanOrEqual(KILLS);
    expect(loop.final.stderr).toBe('');
    expect(loop.final.code).toBe(3); // completed with the seeded rejects
    const final = JSON.parse(await readFile(report, 'utf8'));
    expect(final.status).toBe('completed_with_rejects');
    expect(final.resumed).toBe(true);
    expect(final.rows.read).toBe(orders.rows);
    expect(final.rows.rejected).toBe(orders.bad.length);
    expect(final.rows.loaded).toBe(orders.rows - orders.bad.length);

    const events = await emulatorEvents(emulator.url, EVENTS_KEY);
    const ids = events.map((e) => e.unique_id);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length); // exactly once
    expect(new Set(ids)).toEqual(orders.uniqueIds);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'kill-orders'));
    expect(rejects.map((r) => [r.line, r.code])).toEqual(orders.bad.map((b) => [b.line, b.code]));

    const cp = await readCheckpointFile(stateDir, 'kill-orders');
    expect(cp?.status).toBe('succeeded');
    console.log(`orders: ${loop.kills} kills, ${loop.runs} runs, ${events.length} events`);
  }, 150_000);

  it('customers → profiles (bulk import jobs): final values, kills while jobs are pending, only bad rows rejected', async () => {
    const stateDir = path.join(tmp, 'state');
    const report = path.join(tmp, 'customers-report.json');
    let killsWithPendingJobs = 0;
    let killsWithPosition = 0;
    const loop = await interruptLoop({
      args: ['run', path.join(tmp, 'customers.yaml'), '--state-dir', stateDir, '--report', report],
      env: env(PROFILES_KEY),
      random: prng(SEED + 1),
      kills: KILLS,
      minMs: 0,
      maxMs: 900,
      signal: 'SIGKILL',
      ready: (child) => lockedBy(stateDir, 'kill-customers', child.pid!),
      onInterrupted: async (exit) => {
        expect(exit.signal).toBe('SIGKILL');
        const cp = await readCheckpointFile(stateDir, 'kill-customers');
        if (cp) expect(cp.status).toBe('running');
        if (cp && cp.pendingJobs.length > 0) killsWithPendingJobs++;
        if (cp?.position) killsWithPosition++;
      },
    });
    expect(loop.kills).toBeGreaterThanOrEqual(KILLS);
    expect(killsWithPendingJobs).toBeGreaterThan(0); // resumed runs had jobs to re-poll
    expect(killsWithPosition).toBeGreaterThan(0);
    expect(loop.final.stderr).toBe('');
    expect(loop.final.code).toBe(3);
    const final = JSON.parse(await readFile(report, 'utf8'));
    expect(final.status).toBe('completed_with_rejects');
    expect(final.rows.read).toBe(customers.rows);
    expect(final.rows.rejected).toBe(customers.bad.length);
    expect(final.rows.loaded).toBe(customers.rows - customers.bad.length);

    const profiles = await emulatorProfiles(emulator.url, PROFILES_KEY);
    const byEmail = new Map(profiles.map((p) => [String(p.email).toLowerCase(), p]));
    let mismatches = 0;
    for (const [email, want] of customers.profiles) {
      const got = byEmail.get(email);
      const ok =
        got !== undefined &&
        got.first_name === want.first_name &&
        got.last_name === want.last_name &&
        got.location?.city === want.city &&
        got.properties?.loyalty_tier === want.loyalty_tier;
      if (!ok) {
        mismatches++;
        if (mismatches <= 3) expect({ email, got }).toEqual({ email, want });
      }
    }
    expect(mismatches).toBe(0);
    expect(profiles.length).toBe(customers.profiles.size); // nothing else (no bad row became a profile)
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'kill-customers'));
    expect(rejectKeys(rejects)).toEqual(expectedRejectKeys(customers.bad, rejects)); // each bad row once
    console.log(`customers: ${loop.kills} kills (${killsWithPendingJobs} with pending jobs), ${loop.runs} runs`);
  }, 150_000);
});
