import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';

/**
 * Issue 12, "Real latency", through the CLI against the emulator (in-process, real sockets) answering every request
 * 250 ms late (`faults: {slowRate: 1, slowMs: 250}`; it counts a request after that delay, as a server far away
 * does), with its fixed windows at M × 0.3 (3/s, 45/min):
 * - the loader told the account's limits (`rateLimits`): it paces at the clock's windows (its bursts go out as a
 *   window opens, a token waits for its request's answer) and none of its requests is throttled;
 * - the loader not told (it assumes the documented tier, 10/s): its first request goes alone and the others wait for
 *   its answer, whose RateLimit-Limit shows the lower limit; none is throttled, and the first request's events are
 *   the first the emulator stored.
 * Counts and order only (the machine is shared): the pacing's speed is measured by `npm run bench` (case `pacing`).
 */

const ENDPOINT = 'POST /api/event-bulk-create-jobs';
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-latency-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function pipeline(name: string, rows: number, destination: string): Promise<string> {
  const lines = ['email,plan', ...Array.from({ length: rows }, (_, i) => `${name}-${i}@example.com,p${i % 3}`)];
  await writeFile(path.join(tmp, `${name}.csv`), lines.join('\n') + '\n');
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source:
  type: csv
  path: ${name}.csv
transform:
  type: event
  metric: Signed Up
  unique_id: { template: "signup-{{email}}" }
  profile:
    email: { column: email, type: email }
  properties:
    plan: plan
destination:
  type: klaviyo
  concurrency: 6
  batch: { events: 10 }
${destination}`,
  );
  return file;
}

interface State {
  events: number;
  requests: { total: number; throttled: number; byEndpoint: Record<string, number>; admitted: Record<string, { count: number }> };
}

async function run(
  name: string,
  key: string,
  destination: string,
): Promise<{ state: State; emails: string[]; stderr: string; report: { status: string; rows: object; requests: { total: number; throttled: number } } }> {
  const emu = await startEmulator({ port: 0, limits: 0.3, faults: { seed: 1, slowRate: 1, slowMs: 250 } });
  try {
    const file = await pipeline(name, 150, destination); // 15 requests of 10 events
    const reportFile = path.join(tmp, `${name}-report.json`);
    const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile, '--log-level', 'debug'], {
      env: { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: key },
    });
    expect(result.stderr).not.toContain('"level":"error"');
    expect(result.code).toBe(0);
    const state = (await (await fetch(`${emu.url}/_emulator/state?key=${key}`)).json()) as State;
    const ndjson = await (await fetch(`${emu.url}/_emulator/events?key=${key}`)).text();
    const emails = ndjson.trim().split('\n').map((line) => (JSON.parse(line) as { email: string }).email);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    return { state, emails, report, stderr: result.stderr };
  } finally {
    await emu.close();
  }
}

describe('pacing with 250 ms latency (through the CLI)', () => {
  it('told the account\'s limits: no request throttled, every event stored once', async () => {
    const { state, emails, report, stderr } = await run(
      'latencytold',
      'pk_latency_told_00000000000000000',
      '  rateLimits:\n    "POST /api/event-bulk-create-jobs": { burst: 3, steady: 45 }\n',
    );
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 150, loaded: 150, rejected: 0 });
    expect(state.requests.throttled).toBe(0);
    expect(state.requests.admitted[ENDPOINT]!.count).toBe(15);
    expect(report.requests).toMatchObject({ total: 15, throttled: 0 });
    expect(state.events).toBe(150);
    expect(new Set(emails).size).toBe(150);
    // the answers' RateLimit-Reset agreed with the clock's minutes (the emulator's windows are the clock's)
    expect(stderr).toContain('paces at the clock\'s windows');
    expect(stderr).not.toContain('no longer paces at the clock');
  }, 90_000);

  it('not told (limits below the tier): the first request goes alone, then none is throttled', async () => {
    const { state, emails, report } = await run('latencyuntold', 'pk_latency_untold_0000000000000000', '');
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 150, loaded: 150, rejected: 0 });
    expect(state.requests.throttled).toBe(0);
    expect(state.requests.admitted[ENDPOINT]!.count).toBe(15);
    expect(state.events).toBe(150);
    expect(new Set(emails).size).toBe(150);
    // the first request (the file's first 10 rows) was answered before any other was sent
    expect(emails.slice(0, 10).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `latencyuntold-${i}@example.com`).sort());
  }, 90_000);
});
