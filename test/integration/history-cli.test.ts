import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import type { RunReport } from '../../src/runner/report.js';
import { cli } from '../helpers/cli.js';
import { lockedBy, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * Issue 14: every run (succeeded, with rejects, failed, refused, interrupted) appends its report to the run history
 * beside the checkpoint; `history` shows it (table, --json); `status` says why the last run failed; `failOn` and
 * "every row rejected" set the exit code.
 */

const KEY = 'pk_history_cli_0000000000000000000';
const NAME = 'hist';
let tmp: string;
let stateDir: string;
let emulator: EmulatorHandle;
let slow: EmulatorHandle;

/** A pipeline named `hist` over `csv` (every file shares the pipeline's state and history). */
function pipeline(csv: string, extra = ''): string {
  return `version: 1
name: ${NAME}
source: { type: csv, path: ${csv} }
transform:
  type: profile
  profile:
    email: { column: email, type: email }
    first_name: first_name
destination:
  type: klaviyo
  batch: { profiles: 2 }
${extra}`;
}

/** A CSV of `good` valid and `bad` invalid emails (unique per file, so no file is skipped as already loaded). */
async function csv(name: string, good: number, bad: number): Promise<void> {
  const lines = ['email,first_name'];
  for (let i = 0; i < good; i++) lines.push(`${name}-${i}@example.com,Good${i}`);
  for (let i = 0; i < bad; i++) lines.push(`not-an-email-${name}-${i},Bad${i}`);
  await writeFile(path.join(tmp, `${name}.csv`), lines.join('\n') + '\n');
}

async function file(name: string, text: string): Promise<string> {
  const p = path.join(tmp, `${name}.yaml`);
  await writeFile(p, text);
  return p;
}

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY });

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-history-'));
  stateDir = path.join(tmp, 'state');
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  // every request waits 1.5 s: a run that can be stopped in the middle
  slow = await startEmulator({ port: 0, limits: 'off', faults: { slowRate: 1, slowMs: 1500 } });
  await csv('ok1', 3, 0);
  await csv('bad1', 3, 2);
  await csv('bad2', 3, 1);
  await csv('allbad', 0, 2);
  await csv('ok2', 8, 0);
});

afterAll(async () => {
  await emulator?.close();
  await slow?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('run history (CLI, built binary)', () => {
  it('records every run, exit codes follow failOn, status says why the last run failed', async () => {
    const run = async (yaml: string, extraEnv: NodeJS.ProcessEnv = env()) => cli(['run', yaml, '--state-dir', stateDir], { env: extraEnv });

    const empty = await cli(['history', await file('ok1', pipeline('ok1.csv')), '--state-dir', stateDir]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('hist: no run recorded yet');

    expect((await run(await file('ok1', pipeline('ok1.csv')))).code).toBe(0);
    // any reject exits 3 by default
    expect((await run(await file('bad1', pipeline('bad1.csv')))).code).toBe(3);
    // within failOn: exit 0, the status still says there were rejects
    const within = await run(await file('bad2', pipeline('bad2.csv', 'failOn: { rejectShare: 0.5 }\n')));
    expect(within.code).toBe(0);
    expect(within.stdout).toContain('within failOn');
    // every row rejected: a failure
    const allBad = await run(await file('allbad', pipeline('allbad.csv')));
    expect(allBad.code).toBe(1);
    expect(allBad.stdout).toContain('ALL_ROWS_REJECTED');
    // a run that fails (no API key)
    const ok2 = await file('ok2', pipeline('ok2.csv'));
    expect((await run(ok2, { KLAVIYO_BASE_URL: emulator.url })).code).toBe(1);
    // a run refused: another host holds the lock
    const lock = path.join(stateDir, NAME, 'checkpoint.lock');
    await mkdir(path.dirname(lock), { recursive: true });
    await writeFile(lock, JSON.stringify({ pid: 1, hostname: 'another-host', startedAt: new Date().toISOString(), token: randomUUID(), ttlMs: 600_000, expiresAt: new Date(Date.now() + 600_000).toISOString() }) + '\n');
    const locked = await run(ok2);
    expect(locked.code).toBe(1);
    const status = await cli(['status', ok2, '--state-dir', stateDir]);
    expect(status.stdout).toMatch(/last run {4}failed at \S+ \(\S+\): \[LOCKED\] Pipeline is locked by another run/);
    await unlink(lock);

    // an interrupted run (SIGTERM in the middle)
    const slowRun = start(['run', ok2, '--state-dir', stateDir], { KLAVIYO_BASE_URL: slow.url, KLAVIYO_API_KEY: KEY });
    await lockedBy(stateDir, NAME, slowRun.child.pid!);
    await new Promise((r) => setTimeout(r, 300));
    slowRun.child.kill('SIGTERM');
    expect((await slowRun.exited).code).toBe(143);

    const json = await cli(['history', ok2, '--state-dir', stateDir, '--json']);
    expect(json.code).toBe(0);
    const runs = JSON.parse(json.stdout) as RunReport[];
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'completed_with_rejects', 'completed_with_rejects', 'failed', 'failed', 'failed', 'interrupted']);
    expect(runs.map((r) => r.error?.code ?? null)).toEqual([null, null, null, 'ALL_ROWS_REJECTED', 'MISSING_API_KEY', 'LOCKED', null]);
    expect(runs[1]!.failOn).toEqual({ rejects: 0, exceeded: true });
    expect(runs[2]!.failOn).toEqual({ rejectShare: 0.5, exceeded: false });
    expect(runs.map((r) => r.rows.rejected)).toEqual([0, 2, 1, 2, 0, 0, 0]);
    for (const r of runs) expect(r.pipeline.name).toBe(NAME);
    // never a secret in the history
    expect(json.stdout).not.toContain(KEY);

    const table = await cli(['history', ok2, '--state-dir', stateDir]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[1]).toMatch(/^finished \(UTC\)\s+status\s+duration\s+read\s+loaded\s+rejected\s+requests\s+429s\s+rejects by code \/ error$/);
    expect(lines).toHaveLength(2 + runs.length);
    expect(lines[2 + 1]).toMatch(/INVALID_EMAIL 2$/);
    expect(runs[1]!.rejects?.byCode).toEqual({ INVALID_EMAIL: 2 });
    expect(lines[2 + 3]).toContain('INVALID_EMAIL 2  [ALL_ROWS_REJECTED]');
    expect(lines[2 + 5]).toContain('[LOCKED]');
    expect(lines[2 + 6]).toContain('interrupted');

    const last2 = JSON.parse((await cli(['history', ok2, '--state-dir', stateDir, '--json', '--limit', '2'])).stdout) as RunReport[];
    expect(last2.map((r) => r.runId)).toEqual(runs.slice(-2).map((r) => r.runId));
  }, 300_000);

  it('a run killed with SIGKILL is recorded by the next run as failed (RUN_LOST)', async () => {
    const dir = path.join(tmp, 'lost-state');
    const yaml = await file('lost', pipeline('ok2.csv').replace(`name: ${NAME}`, 'name: lost'));
    const killed = start(['run', yaml, '--state-dir', dir], { KLAVIYO_BASE_URL: slow.url, KLAVIYO_API_KEY: KEY });
    await lockedBy(dir, 'lost', killed.child.pid!);
    await waitForCheckpoint(dir, 'lost', (cp) => cp.status === 'running');
    killed.child.kill('SIGKILL');
    await killed.exited;
    const next = await cli(['run', yaml, '--state-dir', dir], { env: env() });
    expect(next.code, next.stderr).toBe(0);
    const runs = JSON.parse((await cli(['history', yaml, '--state-dir', dir, '--json'])).stdout) as RunReport[];
    expect(runs.map((r) => [r.status, r.error?.code ?? null, r.resumed])).toEqual([
      ['failed', 'RUN_LOST', false],
      ['succeeded', null, true],
    ]);
    expect(runs[0]!.runId).toBe(runs[1]!.runId);
  }, 120_000);
});
