import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { KEY } from '../unit/emulator/client.js';

/**
 * An events export through the built CLI under a harsher Klaviyo than the calm emulator: allowances at 1% of the
 * documented tiers, 20 ms on every answer and 429s without Retry-After publish the very bytes of a calm run, the
 * pacer keeping the 429s few; and a key Klaviyo refuses with its auth guide's 400 fails the run at the first request,
 * publishing nothing and writing the key nowhere.
 */

/** The same generated account in every emulator (ids included), ending at a fixed time so it never moves. */
const GENERATE = { profiles: 100, events: 1200, years: 1, seed: 9, end: '2026-01-01T00:00:00Z' };
const OTHER_KEY = 'pk_harsh_refused_key_0123456789abc';
let tmp: string;
const emulators: EmulatorHandle[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-harsh-'));
});

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
  await rm(tmp, { recursive: true, force: true });
});

async function emulator(options: EmulatorOptions): Promise<EmulatorHandle> {
  const emu = await startEmulator({ port: 0, generate: GENERATE, ...options });
  emulators.push(emu);
  return emu;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  report: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  reportText: string;
  out: string;
}

/** The events export run once in its own directory against `emu` with `key`. */
async function exportEvents(name: string, emu: EmulatorHandle, key: string, { pageSize = 100, sourceExtra = '' } = {}): Promise<Run> {
  const dir = await mkdtemp(path.join(tmp, `${name}-`));
  const file = path.join(dir, 'events.yaml');
  await writeFile(
    file,
    `version: 1
name: harsh-events
source: {type: klaviyo, resource: events, include: [profile, metric], pageSize: ${pageSize}, concurrency: 4${sourceExtra}}
transform:
  type: export
  columns: {id: id, datetime: datetime, metric: metric.name, email: profile.email, value: "event_properties.$value", unique_id: "event_properties.$event_id"}
destination: {type: csv, path: out/events.csv}
`,
  );
  const reportFile = path.join(dir, 'report.json');
  const r = await cli(['run', file, '--state-dir', path.join(dir, 'state'), '--report', reportFile], { env: { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: key } });
  const reportText = await readFile(reportFile, 'utf8');
  return { ...r, report: JSON.parse(reportText), reportText, out: path.join(dir, 'out', 'events.csv') };
}

describe('events export under a harsh Klaviyo', () => {
  it('1% of the tiers, 20 ms latency, 429s without Retry-After: the same bytes as a calm run, few 429s', async () => {
    const [calm, harsh] = await Promise.all([
      emulator({ limits: 'off' }).then((emu) => exportEvents('calm', emu, KEY)),
      emulator({ limits: 0.01, latency: 20, faults: { noRetryAfter: 1 } }).then((emu) => exportEvents('harsh', emu, KEY)),
    ]);
    expect(calm.code, calm.stderr).toBe(0);
    expect(harsh.code, harsh.stderr).toBe(0);
    expect(harsh.report.status).toBe('succeeded');
    const calmBytes = await readFile(calm.out);
    const rows = parse(calmBytes, { columns: true }) as Record<string, string>[];
    // every generated event once, with the fields the comparison is about filled in
    expect(new Set(rows.map((x) => x.id)).size).toBe(GENERATE.events);
    expect(rows.every((x) => x.unique_id && x.email && x.metric)).toBe(true);
    expect(rows.filter((x) => x.metric === 'Placed Order').every((x) => Number(x.value) > 0)).toBe(true);
    expect((await readFile(harsh.out)).equals(calmBytes)).toBe(true);
    expect(harsh.report.requests.total).toBeGreaterThan(3);
    expect(harsh.report.requests.throttled).toBeLessThanOrEqual(3);
  }, 60_000);

  it('a source\'s rateLimits pace the export at the allowance stated', async () => {
    const emu = await emulator({ limits: 'klaviyo' });
    const r = await exportEvents('stated', emu, KEY, { pageSize: 300, sourceExtra: ', rateLimits: {"GET /api/events": {burst: 1, steady: 600}}' });
    expect(r.code, r.stderr).toBe(0);
    const state = (await (await fetch(`${emu.url}/_emulator/state?key=${KEY}`)).json()) as {
      requests: { admitted: Record<string, { first: number; last: number; count: number }> };
    };
    const admitted = state.requests.admitted['GET /api/events']!;
    expect(admitted.count).toBe(r.report.requests.total);
    expect(admitted.count).toBeGreaterThanOrEqual(4);
    // one request a second, as stated (XL's documented 350/s would have sent them within a few ms of each other):
    // each in a whole second of its own (the emulator's windows are the clock's, and the limiter paces at them), so
    // the first and the last are more than count − 2 seconds apart (the first may fall at the end of its second)
    expect(admitted.last - admitted.first).toBeGreaterThan((admitted.count - 2) * 1000);
    expect(r.report.requests.throttled).toBe(0);
  }, 60_000);

  it('a key refused with 400: failed at the first request, nothing published, the key written nowhere', async () => {
    const emu = await emulator({ limits: 'off', apiKeys: [KEY], realism: { authStatus: 400 } });
    const r = await exportEvents('refused', emu, OTHER_KEY);
    expect(r.report.status).toBe('failed');
    expect(r.code).toBe(1); // docs: 1 failed
    expect(r.report.requests.total).toBe(1);
    await expect(access(r.out)).rejects.toThrow();
    for (const text of [r.reportText, r.stdout, r.stderr]) {
      expect(text).not.toContain(OTHER_KEY);
      expect(text).not.toContain(KEY);
    }
  }, 30_000);
});
