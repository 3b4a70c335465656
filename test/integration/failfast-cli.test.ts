import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorProfiles, readCheckpointFile, readRejects, rejectsFileOf } from '../helpers/resume.js';

/**
 * Issue 12, "Request-level errors must fail fast, never bisect" and "Retries and replays are safe": through the CLI
 * against the emulator with its realism and fault options, asserting on what the emulator holds, the requests made
 * and the exit code.
 */

const KEY = 'pk_failfast_cli_0000000000000000000';
const IMPORTS = 'POST /api/profile-bulk-import-jobs';
let tmp: string;
let emulator: EmulatorHandle | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-failfast-'));
});

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** `rows` customers `c<i>@example.com`; `bad` maps a row index to another email. */
async function customers(name: string, rows: number, bad: Record<number, string> = {}): Promise<string> {
  const lines = ['email,first_name'];
  for (let i = 0; i < rows; i++) lines.push(`${bad[i] ?? `c${i}@example.com`},Customer ${i}`);
  const file = path.join(tmp, `${name}.csv`);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

async function pipeline(name: string, csv: string, options: { batch: number; lists?: string[] }): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source:
  type: csv
  path: ${JSON.stringify(path.basename(csv))}
transform:
  type: profile
  profile:
    email: { column: email, type: email }
    first_name: first_name
destination:
  type: klaviyo
  concurrency: 1
  batch: { profiles: ${options.batch} }
${options.lists ? `  lists: ${JSON.stringify(options.lists)}\n` : ''}`,
  );
  return file;
}

interface Report {
  status: string;
  error?: { code: string; message: string };
  rows: { read: number; loaded: number; rejected: number };
  requests: { total: number; retried: number };
}

async function run(file: string, name: string, key: string, extra: string[] = []) {
  const reportFile = path.join(tmp, `${name}-report-${Date.now()}.json`);
  const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile, ...extra], {
    env: { KLAVIYO_BASE_URL: emulator!.url, KLAVIYO_API_KEY: key },
  });
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  return { ...result, report };
}

async function start(options: EmulatorOptions): Promise<EmulatorHandle> {
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 1_000_000, ...options });
  return emulator;
}

const rejectsOf = async (name: string) => readRejects(await rejectsFileOf(path.join(tmp, 'state'), name));

describe('request-level refusals fail fast (through the CLI)', () => {
  it('an unknown list answered 400 with no pointer, on a 10,000-profile batch: 3 requests, 0 rows rejected, exit 1, a resumable checkpoint', async () => {
    const emu = await start({ realism: { unknownListStatus: 400 } });
    const csv = await customers('unknown-list', 10_000);
    const file = await pipeline('unknown-list', csv, { batch: 10_000, lists: ['NoSuchList'] });
    const { code, report, stderr } = await run(file, 'unknown-list', KEY);
    expect(code).toBe(1);
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('KLAVIYO_REQUEST_REJECTED');
    expect(report.error?.message).toContain('POST /api/profile-bulk-import-jobs (400: invalid: A list with id NoSuchList does not exist.)');
    expect(report.error?.message).toContain('unknown-list.csv:2-10001 (seq 0-9999)');
    expect(report.error?.message).toMatch(/Likely cause: the list id \(list NoSuchList\)/);
    expect(stderr).toContain('KLAVIYO_REQUEST_REJECTED');
    expect(emu.snapshot().requests.byEndpoint[IMPORTS]).toBe(3);
    expect(report.rows.rejected).toBe(0);
    expect(await rejectsOf('unknown-list')).toEqual([]);
    expect(emu.snapshot().profiles).toBe(0);
    // the checkpoint is kept, before the batch (nothing acknowledged), for the next run
    const checkpoint = await readCheckpointFile(path.join(tmp, 'state'), 'unknown-list');
    expect(checkpoint).toBeDefined();
    expect(checkpoint!.position).toBeUndefined();
  }, 120_000);

  it('an invalid key answered 400 with authentication_failed fails on the first request; the run with the right key resumes and loads everything', async () => {
    const good = 'pk_failfast_good_000000000000000000';
    const emu = await start({ apiKeys: [good], realism: { authStatus: 400 } });
    const csv = await customers('auth', 1_500);
    const file = await pipeline('auth', csv, { batch: 500 });
    const wrong = await run(file, 'auth', 'pk_failfast_wrong_00000000000000000');
    expect(wrong.code).toBe(1);
    expect(wrong.report.error?.code).toBe('KLAVIYO_AUTH');
    expect(wrong.report.error?.message).toMatch(/\(400\).*authentication_failed.*wrong, revoked/);
    expect(emu.snapshot().requests.total).toBe(1);
    expect(wrong.report.rows.rejected).toBe(0);
    expect(await readCheckpointFile(path.join(tmp, 'state'), 'auth')).toBeDefined();

    const right = await run(file, 'auth', good);
    expect(right.report.error).toBeUndefined();
    expect(right.code).toBe(0);
    expect(right.report.rows).toMatchObject({ read: 1_500, loaded: 1_500, rejected: 0 });
    const profiles = await emulatorProfiles(emu.url, good);
    expect(new Set(profiles.map((p) => p.email)).size).toBe(1_500);
  }, 120_000);

  it('a public key (6-character site id) is refused before any request, saying a private pk_ key is needed', async () => {
    const emu = await start({});
    const csv = await customers('public-key', 10);
    const file = await pipeline('public-key', csv, { batch: 10 });
    const { code, report, stdout, stderr } = await run(file, 'public-key', 'AbC123');
    expect(code).toBe(1);
    expect(report.error?.code).toBe('API_KEY_INVALID');
    expect(report.error?.message).toMatch(/public key.*pk_/);
    expect(report.requests.total).toBe(0);
    expect(emu.snapshot().requests.total).toBe(0);
    expect(stdout + stderr + JSON.stringify(report)).not.toContain('AbC123');
  }, 120_000);
});

describe('a malformed profile refused for the whole request (through the CLI)', () => {
  it('moves exactly that profile to the rejects file and imports the rest, in far fewer requests than a blind bisection', async () => {
    const emu = await start({ realism: { invalidProfile: 'request' } });
    // our email check accepts an internationalized top-level domain; the emulator (as Klaviyo may) refuses it
    const csv = await customers('malformed', 3_000, { 1_234: 'user@example.рф' });
    const file = await pipeline('malformed', csv, { batch: 1_000 });
    const { code, report } = await run(file, 'malformed', KEY);
    expect(report.error).toBeUndefined();
    expect(code).toBe(3);
    expect(report.rows).toMatchObject({ read: 3_000, loaded: 2_999, rejected: 1 });
    const rejects = await rejectsOf('malformed');
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ code: 'KLAVIYO_REJECTED', line: 1_236, message: 'invalid: The payload provided in the request is invalid.' });
    const profiles = await emulatorProfiles(emu.url, KEY);
    expect(profiles).toHaveLength(2_999);
    expect(profiles.some((p) => p.email === 'user@example.рф')).toBe(false);
    // batches 1 and 3: one request each; batch 2: itself, its first profile, the other 999, then halves down to the
    // bad one (2 per level, 10 levels) — a blind bisection would cost 1,999
    const requests = emu.snapshot().requests.byEndpoint[IMPORTS]!;
    expect(requests).toBeGreaterThan(3);
    expect(requests).toBeLessThanOrEqual(2 + 3 + 2 * 10);
  }, 120_000);
});

describe('transient statuses (through the CLI)', () => {
  it('a profile import (an upsert: idempotent) answered 500 and 502 is retried: every profile imported once, exit 0', async () => {
    const emu = await start({ faults: { seed: 12, rate500: 0.15, rate502: 0.15 } });
    const csv = await customers('retried', 2_000);
    const file = await pipeline('retried', csv, { batch: 200 });
    const { code, report } = await run(file, 'retried', KEY);
    expect(report.error).toBeUndefined();
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 2_000, loaded: 2_000, rejected: 0 });
    const faults = emu.snapshot().faults;
    expect(faults['500']! + faults['502']!).toBeGreaterThan(0);
    expect(report.requests.retried).toBeGreaterThanOrEqual(faults['500']! + faults['502']!);
    const profiles = await emulatorProfiles(emu.url, KEY);
    expect(profiles).toHaveLength(2_000);
    expect(new Set(profiles.map((p) => p.email)).size).toBe(2_000);
  }, 120_000);

  it('a subscription job (not idempotent: double opt-in sends a confirmation each time) answered 500 is not retried: exit 1 after one request', async () => {
    const emu = await start({ faults: { seed: 1, rate500: 1 } });
    const csv = await customers('subscribe', 20);
    const file = path.join(tmp, 'subscribe.yaml');
    await writeFile(
      file,
      `version: 1
name: subscribe
source: { type: csv, path: subscribe.csv }
transform:
  type: subscription
  profile: { email: { column: email, type: email } }
  channels: { email: { marketing: true } }
  # the consent guard's lookups (GET, idempotent) would be retried on 500: this test is about the subscribe job alone
  unsafe_resubscribe_opted_out: true
destination: { type: klaviyo, concurrency: 1 }
`,
    );
    const { code, report } = await run(file, 'subscribe', KEY);
    expect(code).toBe(1);
    expect(report.error?.code).toBe('KLAVIYO_UNAVAILABLE');
    expect(report.error?.message).toMatch(/answered 500 .*not retried.*subscribe\.csv:2-21/);
    expect(emu.snapshot().requests.byEndpoint['POST /api/profile-subscription-bulk-create-jobs']).toBe(1);
    expect(report.requests.retried).toBe(0);
    expect(report.rows.rejected).toBe(0);
  }, 120_000);
});
