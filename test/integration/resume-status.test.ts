import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { customersPipeline, lockedBy, makeCustomers, readCheckpointFile, start, waitForCheckpoint } from '../helpers/resume.js';

/** Issue 5: `klaviyo-etl status <pipeline>` shows where an interrupted run stands: position and pending jobs. */

const KEY = 'pk_resume_status_00000000000000000';
let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-status-'));
  await makeCustomers(path.join(tmp, 'customers.csv'), { rows: 5000, seed: 9, updates: 0 });
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'status-customers', path: 'customers.csv', profilesBatch: 250, burst: 2, steady: 120 }));
  // jobs are polled 1 s after submission at the earliest, so with 2 submissions a second a killed run leaves some pending
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 1000 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('klaviyo-etl status (CLI, built binary)', () => {
  it('never-run, then the position and pending bulk import jobs of a killed run, then what a resume will do', async () => {
    const pipeline = path.join(tmp, 'customers.yaml');
    const stateDir = path.join(tmp, 'state');
    const before = await cli(['status', pipeline, '--state-dir', stateDir]);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('status-customers: never-run');
    expect(before.stdout).toContain('next run    start');

    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const runner = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'status-customers', runner.child.pid!);
    await waitForCheckpoint(stateDir, 'status-customers', (cp) => cp.position !== undefined && cp.pendingJobs.length >= 2);
    runner.child.kill('SIGKILL');
    await runner.exited;
    const cp = (await readCheckpointFile(stateDir, 'status-customers'))!;
    expect(cp.pendingJobs.length).toBeGreaterThan(0);

    const text = await cli(['status', pipeline, '--state-dir', stateDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('status-customers: running');
    expect(text.stdout).toContain(`position    record ${cp.position!.seq + 1} (customers.csv:${cp.position!.line})`);
    expect(text.stdout).toContain(`pending     ${cp.pendingJobs.length} bulk import job(s): ${cp.pendingJobs.join(', ')}`);
    expect(text.stdout).toContain('next run    resume');

    const json = await cli(['status', pipeline, '--state-dir', stateDir, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      pipeline: 'status-customers',
      state: 'running',
      runId: cp.runId,
      position: cp.position,
      pendingJobs: cp.pendingJobs,
      configChanged: false,
      next: 'resume',
    });

    // SIGTERM the resumed run: a clean `interrupted` checkpoint, which status shows as such
    const resumed = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'status-customers', resumed.child.pid!);
    resumed.child.kill('SIGTERM');
    expect((await resumed.exited).code).toBe(143);
    const after = (await readCheckpointFile(stateDir, 'status-customers'))!;
    expect(after.status).toBe('interrupted');
    expect(after.runId).toBe(cp.runId);
    const interrupted = JSON.parse((await cli(['status', pipeline, '--state-dir', stateDir, '--json'])).stdout);
    expect(interrupted).toMatchObject({ state: 'interrupted', runId: cp.runId, position: after.position, pendingJobs: after.pendingJobs, next: 'resume' });
    expect(interrupted.position.seq).toBeGreaterThanOrEqual(cp.position!.seq);

    // killed again with jobs pending, then --restart: the discarded run's pending jobs are named in the log
    const third = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'status-customers', third.child.pid!);
    await waitForCheckpoint(stateDir, 'status-customers', (c) => c.status === 'running' && c.pendingJobs.length > 0);
    third.child.kill('SIGKILL');
    await third.exited;
    const killed = (await readCheckpointFile(stateDir, 'status-customers'))!;
    expect(killed.pendingJobs.length).toBeGreaterThan(0);
    const restarted = await cli(['run', pipeline, '--state-dir', stateDir, '--restart', '--limit', '1'], { env });
    expect(restarted.code).toBe(0);
    const warning = restarted.stderr
      .split('\n')
      .filter((l) => l.includes('discarding unfinished run'))
      .map((l) => JSON.parse(l) as { runId: string; pendingJobs: string[] });
    expect(warning).toHaveLength(1);
    expect(warning[0]!.runId).toBe(cp.runId);
    expect(warning[0]!.pendingJobs).toEqual(killed.pendingJobs);
  });
});
