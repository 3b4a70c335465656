import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, makeOrders, ordersPipeline, readCheckpointFile, sleep, start } from '../helpers/resume.js';

/**
 * Issue 14, "Scheduling": `klaviyo-etl schedule` fires each pipeline at its cron times (here every second), never
 * runs two of one pipeline at once (a firing during a run is skipped and logged), and on SIGTERM interrupts the
 * running pipeline, which checkpoints; the next run resumes it.
 */

const KEY = 'pk_schedule_test_0000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let expected: Set<string>;

interface Event {
  event: 'scheduled' | 'start' | 'end' | 'skip';
  pipeline: string;
  time: string;
  status?: string;
  next?: string;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-schedule-'));
  expected = (await makeOrders(path.join(tmp, 'orders.csv'), { rows: 400, seed: 9 })).uniqueIds;
  // 1 request of 100 events per second: the slow pipeline runs ~6 s, through several firings
  await writeFile(
    path.join(tmp, 'slow.yaml'),
    ordersPipeline({ name: 'slow-orders', path: 'orders.csv', eventsBatch: 100, burst: 1, steady: 6000 }) +
      'schedule: { cron: "* * * * * *", timezone: Europe/Berlin }\n',
  );
  await writeFile(path.join(tmp, 'customers.csv'), 'Email\nada@example.com\n');
  await writeFile(
    path.join(tmp, 'quick.yaml'),
    `version: 1
name: quick-profiles
source: { type: csv, path: customers.csv }
transform:
  type: profile
  profile:
    email: { column: Email, type: email }
destination: { type: klaviyo }
schedule: { cron: "* * * * * *" }
`,
  );
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Runs of one pipeline never overlap: its events alternate start, end, start, end… (skips anywhere). */
function expectNoOverlap(events: Event[], pipeline: string): void {
  const seq = events.filter((e) => e.pipeline === pipeline && (e.event === 'start' || e.event === 'end')).map((e) => e.event);
  seq.forEach((e, i) => expect(e).toBe(i % 2 === 0 ? 'start' : 'end'));
}

describe('klaviyo-etl schedule (CLI, built binary)', () => {
  it('fires every second, skips a firing while the previous run is still going, and checkpoints on SIGTERM', async () => {
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const proc = start(['schedule', path.join(tmp, 'quick.yaml'), path.join(tmp, 'slow.yaml'), '--state-dir', stateDir, '--json'], env);
    const captured: string[] = [];
    const events = (): Event[] => captured.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
    proc.child.stdout!.on('data', (d: Buffer) => captured.push(d.toString()));
    const count = (pipeline: string, event: Event['event']): number => events().filter((e) => e.pipeline === pipeline && e.event === event).length;

    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline && !(count('quick-profiles', 'end') >= 3 && count('slow-orders', 'skip') >= 1)) await sleep(100);
    expect(count('quick-profiles', 'end')).toBeGreaterThanOrEqual(3);
    expect(count('slow-orders', 'skip')).toBeGreaterThanOrEqual(1);
    // the slow pipeline is still in its first run
    expect(count('slow-orders', 'start')).toBe(1);
    expect(count('slow-orders', 'end')).toBe(0);

    proc.child.kill('SIGTERM');
    const exited = await proc.exited;
    expect(exited.code).toBe(143);
    const all = events();
    const scheduled = all.filter((e) => e.event === 'scheduled');
    expect(scheduled.map((e) => e.pipeline)).toEqual(['quick-profiles', 'slow-orders']);
    expect(scheduled.every((e) => typeof e.next === 'string')).toBe(true);
    expectNoOverlap(all, 'quick-profiles');
    expectNoOverlap(all, 'slow-orders');
    // quick runs started in different seconds: one per firing
    const quickStarts = all.filter((e) => e.pipeline === 'quick-profiles' && e.event === 'start').map((e) => e.time.slice(0, 19));
    expect(new Set(quickStarts).size).toBe(quickStarts.length);
    const slowEnd = all.filter((e) => e.pipeline === 'slow-orders' && e.event === 'end');
    expect(slowEnd.map((e) => e.status)).toEqual(['interrupted']);
    expect((await readCheckpointFile(stateDir, 'slow-orders'))?.status).toBe('interrupted');

    // the next run resumes the interrupted one: every order event in Klaviyo exactly once
    const resumed = await cli(['run', path.join(tmp, 'slow.yaml'), '--state-dir', stateDir, '--json'], { env });
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout).resumed).toBe(true);
    const ids = (await emulatorEvents(emulator.url, KEY)).map((e) => e.unique_id);
    expect(ids.length).toBe(expected.size);
    expect(new Set(ids)).toEqual(expected);
  });

  it('refuses a pipeline without a schedule: section (usage error, exit 2) before firing anything', async () => {
    const file = path.join(tmp, 'unscheduled.yaml');
    const text = (await readFile(path.join(tmp, 'quick.yaml'), 'utf8')).replace(/^schedule:.*\n/m, '').replace('quick-profiles', 'unscheduled');
    await writeFile(file, text);
    const r = await cli(['schedule', path.join(tmp, 'quick.yaml'), file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no schedule: section');
    expect(r.stdout).toBe('');
  });

  it('validate reports a bad cron expression and time zone with file:line:col', async () => {
    const file = path.join(tmp, 'bad-cron.yaml');
    const text = (await readFile(path.join(tmp, 'quick.yaml'), 'utf8')).replace('schedule: { cron: "* * * * * *" }', 'schedule:\n  cron: "61 2 * * *"\n  timezone: Mars/Olympus');
    await writeFile(file, text);
    const r = await cli(['validate', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/bad-cron\.yaml:10:\d+ +CONFIG_RULE +schedule\.cron: not a cron expression/);
    expect(r.stdout).toMatch(/bad-cron\.yaml:11:\d+ +CONFIG_RULE +schedule\.timezone: unknown IANA time zone/);
  });
});
