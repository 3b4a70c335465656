import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';

/**
 * Issue 12, "429s as Klaviyo really sends them", through the CLI against the emulator (in-process, real sockets):
 * - a 429 without Retry-After ("Expected available in 0 seconds") after another client used up the account's steady
 *   window: the run waits for the window's end (a whole steady window: a 429 carries no RateLimit-Reset), succeeds,
 *   and every event is stored, with two 429s. Before, 8 one-second retries failed the run (KLAVIYO_UNAVAILABLE)
 *   about 10 s before the window ended.
 * - the account's limits at half the documented tier, the loader not told (`rateLimits` = the tier): it follows what
 *   the answers say and stays under 3% of requests throttled (was 29%).
 */

const ENDPOINT = 'POST /api/event-bulk-create-jobs';
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-real-429s-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function pipeline(name: string, rows: number, batch: number): Promise<string> {
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
  concurrency: 4
  batch: { events: ${batch} }
`,
  );
  return file;
}

interface State {
  events: number;
  requests: {
    total: number;
    throttled: number;
    byEndpoint: Record<string, number>;
    /** Emulator-clock ms of the first and last admitted request per endpoint. */
    admitted: Record<string, { first: number; last: number; count: number }>;
  };
}

async function state(url: string, key: string): Promise<State> {
  return (await (await fetch(`${url}/_emulator/state?key=${key}`)).json()) as State;
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('429s as Klaviyo really sends them (through the CLI)', () => {
  it('a 429 without Retry-After after another client used up the steady window: the run waits for the window, nothing lost', async () => {
    const key = 'pk_real_429_no_retry_after_0000000';
    // The emulator's clock is set so that its minute ends 22 s after the test starts (its windows are fixed windows
    // aligned to its clock): the run must wait ~20 s, twice what 8 one-second retries lasted.
    const offset = (((38_000 - (Date.now() % 60_000)) % 60_000) + 60_000) % 60_000;
    const emu = await startEmulator({ port: 0, limits: 0.02, now: () => Date.now() + offset, faults: { noRetryAfter: 1 } }); // M × 0.02: 1/s, 3/min
    try {
      const file = await pipeline('noretryafter', 30, 10); // 3 requests
      const reportFile = path.join(tmp, 'noretryafter-report.json');
      const env = { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: key };
      // another integration on the same account uses up the steady window before the run starts (racing the run for
      // the window's last slots instead let the run, paced at 1/s since its start got shorter, win them all)
      const accepted = async () => {
        const s = await state(emu.url, key);
        return (s.requests.byEndpoint[ENDPOINT] ?? 0) - s.requests.throttled;
      };
      let mine = 0;
      while ((await accepted()) < 3) {
        const res = await fetch(`${emu.url}/api/event-bulk-create-jobs`, {
          method: 'POST',
          headers: { authorization: `Klaviyo-API-Key ${key}`, revision: '2026-07-15', 'content-type': 'application/vnd.api+json' },
          body: '{}',
        });
        await res.arrayBuffer();
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toBeNull();
          await new Promise((r) => setTimeout(r, 200));
        } else mine++;
      }
      expect(mine).toBe(3);
      const othersRefused = (await state(emu.url, key)).requests.throttled;
      const run = cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile], { env });
      const result = await run;
      expect(result.stderr).not.toContain('KLAVIYO_UNAVAILABLE');
      expect(result.code).toBe(0);
      const report = JSON.parse(await readFile(reportFile, 'utf8'));
      expect(report.status).toBe('succeeded');
      expect(report.rows).toMatchObject({ read: 30, loaded: 30, rejected: 0 });
      const s = await state(emu.url, key);
      expect(s.events).toBe(30);
      // the run was refused (no Retry-After, no RateLimit-* on a 429) and waited instead of failing: a first refusal
      // may be the burst window's (1 s), a second one a burst window later says the steady window is used up, and
      // with its end unknown the run waits one whole steady window (the tier's). Then its first request goes alone
      // (a 429 stated no limits), so the rest follow the account's 1/s: no refusal in the next window. (Before, it
      // was refused 5 times and waited into the window after next.)
      expect(report.requests.throttled).toBeGreaterThanOrEqual(1);
      expect(report.requests.throttled).toBeLessThanOrEqual(2);
      expect(s.requests.throttled - othersRefused).toBe(report.requests.throttled);
      // every request of the run was admitted in the window right after the one the other client used up
      const admitted = s.requests.admitted[ENDPOINT]!;
      expect(admitted.count).toBe(6);
      expect(Math.floor(admitted.last / 60_000)).toBe(Math.floor(admitted.first / 60_000) + 1);
    } finally {
      await emu.close();
    }
  }, 120_000);

  it('limits at half the documented tier, the loader not told: under 3% of requests throttled', async () => {
    const key = 'pk_real_429_half_limits_000000000';
    const emu = await startEmulator({ port: 0, limits: 0.5 }); // M × 0.5: 5/s, 75/min
    try {
      const file = await pipeline('halflimits', 600, 10); // 60 requests: 12 s at 5/s, within one steady window
      const reportFile = path.join(tmp, 'halflimits-report.json');
      const env = { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: key };
      const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile], { env });
      expect(result.code).toBe(0);
      const s = await state(emu.url, key);
      expect(s.events).toBe(600);
      expect(s.requests.byEndpoint[ENDPOINT]).toBeGreaterThanOrEqual(60);
      expect(s.requests.throttled / s.requests.total).toBeLessThan(0.03);
      const report = JSON.parse(await readFile(reportFile, 'utf8'));
      expect(report.rows).toMatchObject({ loaded: 600, rejected: 0 });
      expect(report.requests.throttled).toBe(s.requests.throttled);
    } finally {
      await emu.close();
    }
  }, 90_000);
});
