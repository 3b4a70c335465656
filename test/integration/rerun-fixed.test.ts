import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { BIN, cli, type CliResult } from '../helpers/cli.js';
import { emulatorEvents, emulatorState, readCheckpointFile } from '../helpers/resume.js';

/**
 * Issue 15, the blocker: a run whose date format was wrong rejected every row; after the format was fixed the re-run
 * read 0 rows (the file was marked done), `--restart` read 0 too, and the 0-row run deleted the first run's rejects.
 * Through the CLI, against one emulator that keeps its state across runs, with --state-dir: the fixed mapping reads
 * the file again and every order lands once; nothing deletes a rejects file; --full-refresh and reset.
 */

const KEY = 'pk_rerun_fixed_000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let env: NodeJS.ProcessEnv;
let pipeline: string;
let stateDir: string;

// an export from a European shop: day first, CRLF line ends
const ORDERS = [
  'Order,Email,Date,Total',
  '1001,anna.schmidt@example.com,13/10/2025 09:15,49.90',
  '1002,jonas.weber@example.com,14/10/2025 11:02,120.00',
  '1003,lea.fischer@example.com,21/10/2025 18:40,15.50',
  '1004,anna.schmidt@example.com,25/10/2025 08:05,33.00',
  '1005,max.mueller@example.com,30/10/2025 21:59,9.99',
].join('\r\n') + '\r\n';

const pipelineWith = (format: string, extra = ''): string => `version: 1
name: shop-orders
source:
  type: csv
  path: orders.csv
transform:
  type: event
  metric: Placed Order
  backfill: true
  unique_id: { template: "order-{{Order}}" }
  time: { column: Date, type: datetime, format: "${format}", zone: Europe/Berlin }
  value: { column: Total, type: number }
  profile:
    email: { column: Email, type: email }
destination:
  type: klaviyo
${extra}`;

interface Report {
  status: string;
  rows: { read: number; loaded: number; rejected: number };
  rejects: { file: string; count: number; byCode: Record<string, number>; examples: Record<string, { source: string; line?: number }> };
  warnings?: { code: string; message: string }[];
  fullRefresh?: boolean;
  error?: { code: string; message: string };
}

let runs = 0;
async function runPipeline(...flags: string[]): Promise<CliResult & { report: Report }> {
  const reportFile = path.join(tmp, `report-${++runs}.json`);
  const result = await cli(['run', pipeline, '--state-dir', stateDir, '--report', reportFile, ...flags], { env, cwd: tmp });
  return { ...result, report: JSON.parse(await readFile(reportFile, 'utf8')) as Report };
}

/** The CLI with `input` on its stdin (a person answering a prompt). */
function cliWithInput(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, cwd: tmp });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

const rejectsFiles = async (): Promise<string[]> => (await readdir(path.join(stateDir, 'shop-orders', 'rejects')).catch(() => [])).sort();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-rerun-'));
  emulator = await startEmulator({ port: 0, limits: 'off' });
  env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
  pipeline = path.join(tmp, 'orders.yaml');
  stateDir = path.join(tmp, 'state');
  await writeFile(path.join(tmp, 'orders.csv'), ORDERS);
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('re-running a fixed pipeline (issue 15)', () => {
  let firstRejects: string;

  it('a wrong date format rejects every row (exit 1), by code with an example; a re-run of the same pipeline reads nothing and deletes no rejects', async () => {
    await writeFile(pipeline, pipelineWith('MM/dd/yyyy HH:mm'));
    const first = await runPipeline();
    // every row rejected: the run fails (ALL_ROWS_REJECTED), yet it completed: its checkpoint records the file as read
    expect(first.code).toBe(1);
    expect(first.report.error?.code).toBe('ALL_ROWS_REJECTED');
    expect(first.report.rows).toMatchObject({ read: 5, loaded: 0, rejected: 5 });
    expect(first.report.rejects.byCode).toEqual({ INVALID_DATE: 5 });
    expect(first.report.rejects.examples.INVALID_DATE).toMatchObject({ source: 'orders.csv', line: 2 });
    // the summary names the file and the most common code with an example
    expect(first.stdout).toContain(`rejects   5 → `);
    expect(first.stdout).toMatch(/INVALID_DATE 5, e\.g\. orders\.csv:2/);
    firstRejects = path.resolve(tmp, first.report.rejects.file);
    expect(firstRejects.startsWith(path.join(stateDir, 'shop-orders', 'rejects'))).toBe(true);
    const written = await readFile(firstRejects, 'utf8');
    expect(written.trim().split('\n')).toHaveLength(5);

    const again = await runPipeline();
    expect(again.code).toBe(0);
    expect(again.report.rows.read).toBe(0);
    const restarted = await runPipeline('--restart');
    expect(restarted.report.rows.read).toBe(0);
    expect(await readFile(firstRejects, 'utf8')).toBe(written); // never deleted, never rewritten
    expect(await rejectsFiles()).toHaveLength(1);
  }, 120_000);

  it('the fixed mapping reads the file again (a new pipeline version) and every order lands once', async () => {
    await writeFile(pipeline, pipelineWith('dd/MM/yyyy HH:mm'));
    const status = await cli(['status', pipeline, '--state-dir', stateDir, '--json'], { env, cwd: tmp });
    expect(JSON.parse(status.stdout).next).toBe('read again (mapping changed)');
    const fixed = await runPipeline();
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    expect(fixed.report.rows).toMatchObject({ read: 5, loaded: 5, rejected: 0 });
    expect(fixed.report.warnings).toContainEqual({ code: 'SOURCE_REREAD_NEW_MAPPING', message: expect.stringMatching(/mapping changed/) });
    const events = await emulatorEvents(emulator.url, KEY);
    expect(events.map((e) => e.unique_id).sort()).toEqual(['order-1001', 'order-1002', 'order-1003', 'order-1004', 'order-1005']);
    expect(existsSync(firstRejects)).toBe(true);

    const next = await runPipeline();
    expect(next.report.rows.read).toBe(0);
    // a tuning change is not a new version: nothing read again
    await writeFile(pipeline, pipelineWith('dd/MM/yyyy HH:mm').replace('type: klaviyo', 'type: klaviyo\n  concurrency: 1'));
    expect((await runPipeline()).report.rows.read).toBe(0);
  }, 120_000);

  it('--full-refresh reads every source once, then the watermark is the new one; Klaviyo still holds each order once', async () => {
    const full = await runPipeline('--full-refresh');
    expect(full.code).toBe(0);
    expect(full.report.fullRefresh).toBe(true);
    expect(full.report.rows).toMatchObject({ read: 5, loaded: 5 });
    expect(full.stdout).toContain('(full refresh)');
    expect((await runPipeline()).report.rows.read).toBe(0);
    expect(await emulatorEvents(emulator.url, KEY)).toHaveLength(5);
    expect((await emulatorState(emulator.url, KEY)).duplicateEventsIgnored).toBe(5);
  });

  const reset = (): string[] => ['reset', pipeline, '--state-dir', stateDir];

  it('reset asks first: "n", or no answer, changes nothing (exit 1)', async () => {
    const declined = await cliWithInput(reset(), 'n\n');
    expect(declined.code).toBe(1);
    expect(declined.stdout).toMatch(/forgets\s+the watermark/);
    expect(declined.stdout).toMatch(/Not reset/);
    const noAnswer = await cliWithInput(reset(), '');
    expect(noAnswer.code).toBe(1);
    expect(await readCheckpointFile(stateDir, 'shop-orders')).toBeDefined();
    expect((await runPipeline()).report.rows.read).toBe(0);
  });

  it('reset: "y" or --yes forgets the state (the next run reads everything); rejects files are kept', async () => {
    const confirmed = await cliWithInput(reset(), 'y\n');
    expect(confirmed.stderr).toBe('');
    expect(confirmed.code).toBe(0);
    expect(await readCheckpointFile(stateDir, 'shop-orders')).toBeUndefined();
    const nothing = await cli([...reset(), '--yes'], { env, cwd: tmp });
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toMatch(/nothing to reset/);

    const after = await runPipeline();
    expect(after.report.rows).toMatchObject({ read: 5, loaded: 5 });
    const scripted = await cli([...reset(), '--yes'], { env, cwd: tmp });
    expect(scripted.code).toBe(0);
    expect(await readCheckpointFile(stateDir, 'shop-orders')).toBeUndefined();
    expect(await emulatorEvents(emulator.url, KEY)).toHaveLength(5);
    expect(await rejectsFiles()).toEqual([path.basename(firstRejects)]);
  }, 120_000); // five CLI runs: on a loaded machine each takes seconds

  it('maxRejects stops the run with TOO_MANY_REJECTS naming what was rejected', async () => {
    await writeFile(pipeline, pipelineWith('MM/dd/yyyy HH:mm', 'rejects:\n  maxRejects: 2\n'));
    const stopped = await runPipeline('--full-refresh');
    expect(stopped.code).toBe(1);
    expect(stopped.report.error?.code).toBe('TOO_MANY_REJECTS');
    expect(stopped.report.error?.message).toMatch(/more than 2 rows rejected .*INVALID_DATE \d+ \(e\.g\. orders\.csv:2/);
    expect(await rejectsFiles()).toHaveLength(2);
  });
});
