import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { emulatorEvents, lockedBy, makeOrders, ordersPipeline, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/** Issue 5: one run of a pipeline at a time; a lock left by a SIGKILLed run is taken over by the next run. */

const KEY = 'pk_lock_test_00000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let expected: Set<string>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-lock-'));
  expected = (await makeOrders(path.join(tmp, 'orders.csv'), { rows: 3000, seed: 11 })).uniqueIds;
  // slow enough (5 requests of 100 events per second) that the first run is still going while we look at it
  await writeFile(path.join(tmp, 'orders.yaml'), ordersPipeline({ name: 'locked-orders', path: 'orders.csv', eventsBatch: 100, burst: 5, steady: 300 }));
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('checkpoint lock (CLI, built binary)', () => {
  it('refuses a second concurrent run (LOCKED, exit 1, naming the pid); the next run takes over the lock of a SIGKILLed run', async () => {
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const args = ['run', path.join(tmp, 'orders.yaml'), '--state-dir', stateDir];
    const first = start(args, env);
    const pid = first.child.pid!;
    await lockedBy(stateDir, 'locked-orders', pid);
    await waitForCheckpoint(stateDir, 'locked-orders', (cp) => cp.position !== undefined);

    const second = await cli(args, { env });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('error [LOCKED]');
    expect(second.stderr).toContain(`pid ${pid}`);
    // the refused run changed nothing: the first still holds the lock and its checkpoint is still running
    expect(JSON.parse(await readFile(path.join(stateDir, 'locked-orders', 'checkpoint.lock'), 'utf8')).pid).toBe(pid);
    expect((await readCheckpointFile(stateDir, 'locked-orders'))?.status).toBe('running');

    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // the lock file is still there, naming a dead process
    const stale = JSON.parse(await readFile(path.join(stateDir, 'locked-orders', 'checkpoint.lock'), 'utf8'));
    expect(stale.pid).toBe(pid);

    const report = path.join(tmp, 'report.json');
    const third = await cli([...args, '--report', report], { env });
    expect(third.stderr).toBe('');
    expect(third.code).toBe(0);
    const r = JSON.parse(await readFile(report, 'utf8'));
    expect(r.resumed).toBe(true);
    // released at the end
    await expect(readFile(path.join(stateDir, 'locked-orders', 'checkpoint.lock'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    const ids = (await emulatorEvents(emulator.url, KEY)).map((e) => e.unique_id);
    expect(ids.length).toBe(expected.size);
    expect(new Set(ids)).toEqual(expected);
  });
});
