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
  jobsSettled,
  lockedBy,
  makeCustomers,
  makeOrders,
  ordersPipeline,
  readCheckpointFile,
  readRejects,
  rejectKeys,
  expectedRejectKeys,
  type BadRow,
  type Exit,
  type ExpectedProfile,
  rejectsFileOf,
} from '../helpers/resume.js';
import { prng } from '../helpers/random.js';

/**
 * Issue 5: the same 50,000-row mixed workload as resume-kill, interrupted with SIGTERM 5 times per pipeline at
 * seeded random moments (after the run holds its lock, so its signal handlers are installed). Each interrupted
 * run exits 143, reports `interrupted`, and leaves a clean `interrupted` checkpoint whose position is
 * consistent with the emulator; the final state is exactly once.
 */

const SEED = 4242;
const INTERRUPTS = 5;
const EVENTS_KEY = 'pk_resume_term_events_000000000000';
const PROFILES_KEY = 'pk_resume_term_profiles_0000000000';

let tmp: string;
let emulator: EmulatorHandle;
let orders: { uniqueIds: Set<string>; idsBySeq: string[][]; bad: BadRow[]; rows: number };
let customers: { profiles: Map<string, ExpectedProfile>; emailBySeq: string[]; bad: BadRow[]; rows: number };

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-term-'));
  orders = await makeOrders(path.join(tmp, 'orders.csv'), { rows: 30_000, seed: SEED, badAt: [0.5] });
  customers = await makeCustomers(path.join(tmp, 'customers.csv'), { rows: 19_700, seed: SEED, updates: 300 });
  await writeFile(path.join(tmp, 'orders.yaml'), ordersPipeline({ name: 'term-orders', path: 'orders.csv', eventsBatch: 125, burst: 8, steady: 480 }));
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'term-customers', path: 'customers.csv', profilesBatch: 250, burst: 2, steady: 120 }));
  // Paced (≤1,000 events / 500 profiles a second) so five interrupts cannot finish the work early on a fast machine.
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 3000 });
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

const env = (key: string): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: key });

/** Checks shared by both pipelines on each interrupted run. */
async function checkInterrupted(exit: Exit, stateDir: string, name: string, reportFile: string) {
  expect(exit.signal).toBeNull();
  expect(exit.code).toBe(143);
  const report = JSON.parse(await readFile(reportFile, 'utf8'));
  expect(report.status).toBe('interrupted');
  const cp = await readCheckpointFile(stateDir, name); // parseable and schema-valid
  expect(cp?.status).toBe('interrupted');
  expect(report.checkpoint.position?.seq).toBe(cp?.position?.seq);
  return cp!;
}

describe('SIGTERM at random moments, resume until done (50,000 rows, mixed)', () => {
  it('orders → events: exit 143, report interrupted, clean consistent checkpoint each time; exactly once at the end', async () => {
    const stateDir = path.join(tmp, 'state');
    const reportFile = path.join(tmp, 'orders-report.json');
    let positions = 0;
    const loop = await interruptLoop({
      args: ['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir, '--report', reportFile],
      env: env(EVENTS_KEY),
      random: prng(SEED),
      kills: INTERRUPTS,
      minMs: 0,
      maxMs: 1500,
      signal: 'SIGTERM',
      ready: (child) => lockedBy(stateDir, 'term-orders', child.pid!),
      onInterrupted: async (exit) => {
        const cp = await checkInterrupted(exit, stateDir, 'term-orders', reportFile);
        if (!cp.position) return;
        positions++;
        // every record up to the position is in the emulator
        const have = new Set((await emulatorEvents(emulator.url, EVENTS_KEY)).map((e) => e.unique_id));
        const missing = orders.idsBySeq.slice(0, cp.position.seq + 1).flat().filter((id) => !have.has(id));
        expect(missing).toEqual([]);
      },
    });
    expect(loop.kills).toBe(INTERRUPTS);
    expect(positions).toBeGreaterThan(0);
    expect(loop.final.code).toBe(3);
    const final = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(final.status).toBe('completed_with_rejects');
    expect(final.rows.read).toBe(orders.rows);

    const ids = (await emulatorEvents(emulator.url, EVENTS_KEY)).map((e) => e.unique_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(orders.uniqueIds);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'term-orders'));
    expect(rejects.map((r) => [r.line, r.code])).toEqual(orders.bad.map((b) => [b.line, b.code]));
    expect((await readCheckpointFile(stateDir, 'term-orders'))?.status).toBe('succeeded');
  }, 150_000);

  it('customers → profiles: exit 143, clean checkpoint, rows up to the position imported; final values at the end', async () => {
    const stateDir = path.join(tmp, 'state');
    const reportFile = path.join(tmp, 'customers-report.json');
    const bad = new Set(customers.bad.map((b) => b.line - 2)); // seq of each bad row
    let positions = 0;
    const loop = await interruptLoop({
      args: ['run', path.join(tmp, 'customers.yaml'), '--state-dir', stateDir, '--report', reportFile],
      env: env(PROFILES_KEY),
      random: prng(SEED + 1),
      kills: INTERRUPTS,
      minMs: 0,
      maxMs: 2000,
      signal: 'SIGTERM',
      ready: (child) => lockedBy(stateDir, 'term-customers', child.pid!),
      onInterrupted: async (exit) => {
        const cp = await checkInterrupted(exit, stateDir, 'term-customers', reportFile);
        if (!cp.position) return;
        positions++;
        // rows up to the position were submitted in import jobs; once those finish, each is a profile
        await jobsSettled(emulator.url, PROFILES_KEY);
        const have = new Set((await emulatorProfiles(emulator.url, PROFILES_KEY)).map((p) => String(p.email).toLowerCase()));
        const missing = customers.emailBySeq.slice(0, cp.position.seq + 1).filter((email, seq) => !bad.has(seq) && !have.has(email));
        expect(missing).toEqual([]);
      },
    });
    expect(loop.kills).toBe(INTERRUPTS);
    expect(positions).toBeGreaterThan(0);
    expect(loop.final.code).toBe(3);
    const final = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(final.status).toBe('completed_with_rejects');
    expect(final.rows.read).toBe(customers.rows);

    const profiles = await emulatorProfiles(emulator.url, PROFILES_KEY);
    const byEmail = new Map(profiles.map((p) => [String(p.email).toLowerCase(), p]));
    const wrong = [...customers.profiles].filter(([email, want]) => {
      const got = byEmail.get(email);
      return !(got && got.first_name === want.first_name && got.location?.city === want.city && got.properties?.loyalty_tier === want.loyalty_tier);
    });
    expect(wrong.slice(0, 3)).toEqual([]);
    expect(profiles.length).toBe(customers.profiles.size);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'term-customers'));
    expect(rejectKeys(rejects)).toEqual(expectedRejectKeys(customers.bad, rejects)); // each bad row once
  }, 150_000);
});
