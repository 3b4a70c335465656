import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorState, lockedBy, makeOrders, ordersPipeline, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * Issue 16: the report of a resumed run counted rows across attempts but requests, throttles, retries and items of
 * its last attempt only, and the checkpoint's counters started again from zero at each resume. The report of a
 * resumed run describes the whole run: what the emulator saw over every attempt.
 */

const KEY = 'pk_resume_counters_0000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let orders: Awaited<ReturnType<typeof makeOrders>>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-counters-'));
  orders = await makeOrders(path.join(tmp, 'orders.csv'), { rows: 1200, seed: 1616, badAt: [0.5, 0.501, 0.502, 0.503] });
  // paced at about 8 requests a second, so the run is still going when it is interrupted
  await writeFile(path.join(tmp, 'orders.yaml'), ordersPipeline({ name: 'counters', path: 'orders.csv', eventsBatch: 30, burst: 4, steady: 480 }));
  // seeded 429 bursts: each is counted as throttled by both sides, and retried by the run
  emulator = await startEmulator({ port: 0, limits: 'off', faults: { seed: 16, rate429: 0.08 } });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

type Requests = { total: number; throttled: number };

describe('counters of a resumed run', () => {
  it('the report and the checkpoint count requests, throttles, retries and items over every attempt', async () => {
    const pipeline = path.join(tmp, 'orders.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const first = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'counters', first.child.pid!);
    await waitForCheckpoint(stateDir, 'counters', (c) => (c.counters?.requests.throttled ?? 0) > 0 && (c.counters?.requests.total ?? 0) >= 10);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(143);
    const cp1 = (await readCheckpointFile(stateDir, 'counters'))!;
    const seen1 = (await emulatorState(emulator.url, KEY)).requests as Requests;
    // a clean interrupt writes every counter of the attempt
    expect(cp1.counters!.requests).toMatchObject({ total: seen1.total, throttled: seen1.throttled });
    expect(cp1.counters!.rows.read).toBeLessThan(orders.rows);

    const reportFile = path.join(tmp, 'report.json');
    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--report', reportFile], { env });
    expect(orders.bad.length).toBeGreaterThan(0);
    expect(second.code).toBe(3); // bad orders
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.resumed).toBe(true);
    const seen = (await emulatorState(emulator.url, KEY)).requests as Requests;
    expect(seen.total).toBeGreaterThan(seen1.total);
    // the whole run, as the emulator saw it
    expect(report.requests.total).toBe(seen.total);
    expect(report.requests.throttled).toBe(seen.throttled);
    expect(report.requests.retried).toBe(seen.throttled); // every 429 was retried, nothing else failed
    expect(Object.values(report.requests.byEndpoint as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(seen.total);
    expect(report.rows).toMatchObject({ read: orders.rows, rejected: orders.bad.length });
    // every event was sent at least once over the two attempts
    expect(report.items.events).toBeGreaterThanOrEqual(orders.uniqueIds.size);
    expect(report.items.events).toBeGreaterThan(cp1.counters!.items.events);
    // and the checkpoint carried the counters over
    const cp2 = (await readCheckpointFile(stateDir, 'counters'))!;
    expect(cp2.status).toBe('succeeded');
    expect(cp2.counters!.requests).toMatchObject({ total: seen.total, throttled: seen.throttled, retried: seen.throttled });
    expect(cp2.counters!.items.events).toBe(report.items.events);
  }, 120_000);
});
