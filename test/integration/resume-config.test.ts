import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, lockedBy, makeOrders, ordersPipeline, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * Issue 5: resuming refuses a pipeline file changed in an output-affecting way (CHECKPOINT_MISMATCH), tuning
 * changes resume, `--restart` starts over; a nightly run over the same files sends nothing (watermark) while a new
 * file matched by the glob is sent.
 */

const KEY_A = 'pk_resume_config_a_000000000000000';
const KEY_B = 'pk_resume_config_b_000000000000000';
let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-config-'));
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

const metricCount = async (key: string, metric: string): Promise<number> =>
  (await emulatorEvents(emulator.url, key)).filter((e) => e.metric === metric).length;

describe('resume after a pipeline change (CLI, built binary)', () => {
  it('CHECKPOINT_MISMATCH (exit 1) after an output-affecting change; a tuning change resumes; --restart starts over', async () => {
    const dir = path.join(tmp, 'mismatch');
    const stateDir = path.join(dir, 'state');
    const { uniqueIds } = await makeOrders(path.join(dir, 'orders.csv'), { rows: 3000, seed: 3 });
    const pipeline = path.join(dir, 'orders.yaml');
    const slow = { name: 'changed-orders', path: 'orders.csv', eventsBatch: 100, burst: 5, steady: 300 };
    await writeFile(pipeline, ordersPipeline(slow));
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY_A };

    // an interrupted run with some progress
    const first = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'changed-orders', first.child.pid!);
    await waitForCheckpoint(stateDir, 'changed-orders', (cp) => cp.position !== undefined);
    first.child.kill('SIGKILL');
    await first.exited;
    const interrupted = await readCheckpointFile(stateDir, 'changed-orders');

    // a tuning change (batch size, rate limits) is not output-affecting: the status says resume
    await writeFile(pipeline, ordersPipeline({ ...slow, eventsBatch: 500, burst: 50, steady: 3000 }));
    const tuned = await cli(['status', pipeline, '--state-dir', stateDir, '--json']);
    expect(tuned.code).toBe(0);
    expect(JSON.parse(tuned.stdout)).toMatchObject({ state: 'running', configChanged: false, next: 'resume' });

    // another metric name changes the output: refused, checkpoint untouched
    await writeFile(pipeline, ordersPipeline({ ...slow, eventsBatch: 500, burst: 50, steady: 3000, metric: 'Order Placed' }));
    const refused = await cli(['run', pipeline, '--state-dir', stateDir], { env });
    expect(refused.code).toBe(EXIT.FAILED);
    expect(refused.stderr).toContain('error [CHECKPOINT_MISMATCH]');
    expect(refused.stderr).toContain('--restart');
    const after = await readCheckpointFile(stateDir, 'changed-orders');
    expect(after?.runId).toBe(interrupted?.runId);
    expect(after?.position).toEqual(interrupted?.position);
    const status = JSON.parse((await cli(['status', pipeline, '--state-dir', stateDir, '--json'])).stdout);
    expect(status).toMatchObject({ configChanged: true, next: 'refuse (pipeline changed; use --restart)' });

    // --restart: a new run from the first record, every order under the new metric
    const report = path.join(dir, 'report.json');
    const restarted = await cli(['run', pipeline, '--state-dir', stateDir, '--restart', '--report', report], { env });
    expect(restarted.stderr).toContain('discarding unfinished run (--restart)'); // a warning naming the discarded run
    expect(restarted.stderr).toContain(String(interrupted?.runId));
    expect(restarted.code).toBe(EXIT.OK);
    const r = JSON.parse(await readFile(report, 'utf8'));
    expect(r.resumed).toBe(false);
    expect(r.runId).not.toBe(interrupted?.runId);
    expect(r.rows.read).toBe(3000);
    const orderIds = [...uniqueIds].filter((id) => /^order-#\d+$/.test(id));
    expect(await metricCount(KEY_A, 'Order Placed')).toBe(orderIds.length);
    expect((await readCheckpointFile(stateDir, 'changed-orders'))?.status).toBe('succeeded');
  });

  it('a nightly second run over the same CSV sends nothing (watermark); a new file matched by the glob is sent', async () => {
    const dir = path.join(tmp, 'nightly');
    const stateDir = path.join(dir, 'state');
    const day1 = await makeOrders(path.join(dir, 'incoming', 'orders-2026-11-25.csv'), { rows: 1500, seed: 5 });
    const pipeline = path.join(dir, 'orders.yaml');
    await writeFile(pipeline, ordersPipeline({ name: 'nightly-orders', path: 'incoming/orders-*.csv', eventsBatch: 500 }));
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY_B };
    const run = async (report: string) => {
      const result = await cli(['run', pipeline, '--state-dir', stateDir, '--report', report], { env });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(EXIT.OK);
      return JSON.parse(await readFile(report, 'utf8'));
    };

    const night1 = await run(path.join(dir, 'night1.json'));
    expect(night1.rows.read).toBe(1500);
    expect((await emulatorEvents(emulator.url, KEY_B)).length).toBe(day1.uniqueIds.size);

    const night2 = await run(path.join(dir, 'night2.json'));
    expect(night2.rows.read).toBe(0);
    expect(night2.requests.total).toBe(0);
    const state = (await (await fetch(`${emulator.url}/_emulator/state?key=${KEY_B}`)).json()) as { duplicateEventsIgnored: number };
    expect(state.duplicateEventsIgnored).toBe(0); // nothing was even re-sent
    expect((await emulatorEvents(emulator.url, KEY_B)).length).toBe(day1.uniqueIds.size);

    // a new export arrives (distinct order names); the old file is also touched (same bytes): only the new one is read
    const day2 = await makeOrders(path.join(dir, 'incoming', 'orders-2026-11-26.csv'), { rows: 700, seed: 6, namePrefix: 'D2-' });
    await copyFile(path.join(dir, 'incoming', 'orders-2026-11-25.csv'), path.join(dir, 'incoming', 'orders-2026-11-25.csv.tmp'));
    await rm(path.join(dir, 'incoming', 'orders-2026-11-25.csv'));
    await copyFile(path.join(dir, 'incoming', 'orders-2026-11-25.csv.tmp'), path.join(dir, 'incoming', 'orders-2026-11-25.csv'));
    await rm(path.join(dir, 'incoming', 'orders-2026-11-25.csv.tmp'));
    const night3 = await run(path.join(dir, 'night3.json'));
    expect(night3.rows.read).toBe(700);
    const ids = (await emulatorEvents(emulator.url, KEY_B)).map((e) => e.unique_id);
    expect(ids.length).toBe(day1.uniqueIds.size + day2.uniqueIds.size);
    expect(new Set(ids)).toEqual(new Set([...day1.uniqueIds, ...day2.uniqueIds]));
  });
});
