import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { customersPipeline, emulatorProfiles, emulatorState, makeCustomers, readCheckpointFile, sleep } from '../helpers/resume.js';

/**
 * Issue 12: a bulk import job that stays queued past `destination.jobTimeoutMs` ends the run (failed,
 * KLAVIYO_JOB_TIMEOUT) with a resumable checkpoint naming the pending jobs, instead of waiting forever; once Klaviyo
 * has processed them, the next run polls them (never resubmits them) and finishes. The emulator's queue holds each
 * job ten minutes of its clock (`jobDelayMs`); the test moves that clock on instead of waiting.
 */

const KEY = 'pk_resume_job_timeout_000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let offset = 0;
let expected: Awaited<ReturnType<typeof makeCustomers>>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-job-timeout-'));
  expected = await makeCustomers(path.join(tmp, 'customers.csv'), { rows: 300, seed: 12, updates: 0 });
  const yaml = customersPipeline({ name: 'job-timeout', path: 'customers.csv', profilesBatch: 100 }) + '  jobTimeoutMs: 1500\n';
  await writeFile(path.join(tmp, 'customers.yaml'), yaml);
  emulator = await startEmulator({ port: 0, limits: 'off', jobDelayMs: 10 * 60_000, now: () => Date.now() + offset });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

type JobCounts = { queued: number; processing: number; complete: number };

describe('a bulk import job queued past jobTimeoutMs', () => {
  it('fails the run with the pending jobs in its checkpoint and error; the next run, once they are done, finishes', async () => {
    const pipeline = path.join(tmp, 'customers.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };

    const first = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env });
    expect(first.code).toBe(1);
    const report = JSON.parse(first.stdout);
    expect(report.status).toBe('failed');
    expect(report.error.code).toBe('KLAVIYO_JOB_TIMEOUT');
    const cp = (await readCheckpointFile(stateDir, 'job-timeout'))!;
    expect(cp.status).toBe('failed');
    expect(cp.pendingJobs.length).toBe(report.jobs.submitted);
    expect(cp.pendingJobs.length).toBeGreaterThanOrEqual(3);
    for (const id of cp.pendingJobs) expect(report.error.message).toContain(id);
    expect(((await emulatorState(emulator.url, KEY)).jobs as JobCounts).queued).toBe(cp.pendingJobs.length);
    expect(await emulatorProfiles(emulator.url, KEY)).toEqual([]);
    // `status` names the pending jobs too
    const status = await cli(['status', pipeline, '--state-dir', stateDir], { env });
    for (const id of cp.pendingJobs) expect(status.stdout).toContain(id);

    // ten minutes later (on the emulator's clock) Klaviyo has processed them
    offset += 11 * 60_000;
    for (let i = 0; i < 200; i++) {
      const jobs = (await emulatorState(emulator.url, KEY)).jobs as JobCounts;
      if (jobs.queued + jobs.processing === 0) break;
      await sleep(25);
    }
    expect(((await emulatorState(emulator.url, KEY)).jobs as JobCounts).complete).toBe(cp.pendingJobs.length);

    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env });
    const again = JSON.parse(second.stdout);
    expect(again.resumed).toBe(true);
    expect(second.code).toBe(3); // the workload's seeded bad rows (transform rejects, import errors)
    expect(again.status).toBe('completed_with_rejects');
    expect(again.jobs.submitted).toBe(cp.pendingJobs.length); // carried over: nothing resubmitted
    expect(again.jobs.completed).toBe(cp.pendingJobs.length);
    const profiles = await emulatorProfiles(emulator.url, KEY);
    expect(new Set(profiles.map((p) => p.email))).toEqual(new Set(expected.profiles.keys()));
    expect(profiles.length).toBe(expected.profiles.size);
    const after = (await readCheckpointFile(stateDir, 'job-timeout'))!;
    expect(after.status).toBe('succeeded');
    expect(after.pendingJobs).toEqual([]);
  }, 60_000);
});
