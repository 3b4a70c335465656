import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import {
  customersPipeline,
  emulatorProfiles,
  expectedRejectKeys,
  lockedBy,
  makeCustomers,
  readCheckpointFile,
  readRejects,
  rejectKeys,
  start,
  waitForCheckpoint,
  rejectsFileOf,
} from '../helpers/resume.js';

/**
 * Issue 16: a bulk profile import job in the checkpoint's pendingJobs that Klaviyo no longer knows (404, as 7 days
 * after a job ends) made every resume fail. The resumed run sends the rows of such a job again (profiles are
 * upserts), moving its checkpoint back first, and says so in the report.
 */

const KEY = 'pk_resume_forgotten_jobs_00000000000';
let tmp: string;
let emulator: EmulatorHandle;
let expected: Awaited<ReturnType<typeof makeCustomers>>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-forgotten-jobs-'));
  expected = await makeCustomers(path.join(tmp, 'customers.csv'), { rows: 200, seed: 16, updates: 0 });
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'forgotten-jobs', path: 'customers.csv', profilesBatch: 50 }));
  // 40 profiles a second: each 50-profile job takes 1.25 s, so jobs are still queued when the run is killed
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 40 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('a resume whose pending import jobs Klaviyo forgot', () => {
  it('sends their rows again, reports it, and loads every row once', async () => {
    const pipeline = path.join(tmp, 'customers.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const first = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'forgotten-jobs', first.child.pid!);
    const cp = await waitForCheckpoint(stateDir, 'forgotten-jobs', (c) => c.pendingJobs.length >= 2 && c.position !== undefined);
    first.child.kill('SIGKILL');
    await first.exited;
    const killed = (await readCheckpointFile(stateDir, 'forgotten-jobs'))!;
    expect(killed.pendingJobs.length).toBeGreaterThanOrEqual(cp.pendingJobs.length);
    // Klaviyo forgets every pending job, with the profiles it had not imported yet
    for (const id of killed.pendingJobs) {
      const res = await fetch(`${emulator.url}/_emulator/jobs/${id}?key=${KEY}`, { method: 'DELETE' });
      expect(res.status).toBe(204);
    }
    expect((await emulatorProfiles(emulator.url, KEY)).length).toBeLessThan(expected.profiles.size);

    const reportFile = path.join(tmp, 'report.json');
    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--report', reportFile], { env });
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.error).toBeUndefined();
    // the workload seeds bad rows (transform rejects and import errors): completed with rejects, exit 3
    expect(second.code).toBe(3);
    expect(report).toMatchObject({ status: 'completed_with_rejects', resumed: true, jobs: { forgotten: killed.pendingJobs.length } });
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatchObject({ code: 'KLAVIYO_JOBS_FORGOTTEN', message: expect.stringMatching(/sent again/) });
    expect(second.stdout).toMatch(/unknown to Klaviyo at the resume/);
    expect(second.stdout).toMatch(/warning {3}\[KLAVIYO_JOBS_FORGOTTEN\] .*sent again/);
    expect(report.rows).toMatchObject({ read: expected.rows, rejected: expected.bad.length, loaded: expected.rows - expected.bad.length });

    // every good customer is a profile exactly once; every bad row is in the rejects file exactly once
    const profiles = await emulatorProfiles(emulator.url, KEY);
    expect(new Set(profiles.map((p) => p.email))).toEqual(new Set(expected.profiles.keys()));
    expect(profiles.length).toBe(expected.profiles.size);
    const rejects = await readRejects(await rejectsFileOf(stateDir, 'forgotten-jobs'));
    expect(rejectKeys(rejects)).toEqual(expectedRejectKeys(expected.bad, rejects));
    const after = (await readCheckpointFile(stateDir, 'forgotten-jobs'))!;
    expect(after.status).toBe('succeeded');
    expect(after.pendingJobs).toEqual([]);
  });
});
