import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { customersPipeline, emulatorProfiles, makeCustomers, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * SIGTERM while bulk import jobs are still processing: the run does not wait for the jobs (a scheduler's grace period
 * is short); it exits 143 with the jobs in the checkpoint's pendingJobs, and the next run polls them to completion.
 */

const KEY = 'pk_resume_sigterm_jobs_0000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let expected: Awaited<ReturnType<typeof makeCustomers>>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-sigterm-jobs-'));
  expected = await makeCustomers(path.join(tmp, 'customers.csv'), { rows: 400, seed: 5, updates: 0 });
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'sigterm-jobs', path: 'customers.csv', profilesBatch: 100 }));
  // 50 profiles a second: each 100-profile job takes 2 s, so jobs are still processing when SIGTERM arrives
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 50 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('SIGTERM with bulk import jobs processing', () => {
  it('exits 143 leaving the jobs pending in the checkpoint; the next run polls them and completes', async () => {
    const pipeline = path.join(tmp, 'customers.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const runner = start(['run', pipeline, '--state-dir', stateDir, '--report', path.join(tmp, 'r1.json')], env);
    await waitForCheckpoint(stateDir, 'sigterm-jobs', (cp) => cp.pendingJobs.length >= 1);
    runner.child.kill('SIGTERM');
    const exit = await runner.exited;
    expect(exit.code).toBe(143);
    const cp = (await readCheckpointFile(stateDir, 'sigterm-jobs'))!;
    expect(cp.status).toBe('interrupted');
    expect(cp.pendingJobs.length).toBeGreaterThan(0);

    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env });
    const report = JSON.parse(second.stdout);
    expect(report.resumed).toBe(true);
    // the workload seeds a few bad rows (transform rejects and import errors): completed with rejects, exit 3
    expect(second.code).toBe(3);
    expect(report.status).toBe('completed_with_rejects');
    // the pending jobs were polled, not resubmitted: every good customer is a profile exactly once
    const profiles = await emulatorProfiles(emulator.url, KEY);
    expect(new Set(profiles.map((p) => p.email))).toEqual(new Set(expected.profiles.keys()));
    expect(profiles.length).toBe(expected.profiles.size);
    const after = (await readCheckpointFile(stateDir, 'sigterm-jobs'))!;
    expect(after.status).toBe('succeeded');
    expect(after.pendingJobs).toEqual([]);
  });
});
