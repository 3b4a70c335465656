import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { customersPipeline, emulatorProfiles, generate, lockedBy, rejectsFileOf, start, waitForCheckpoint } from '../helpers/resume.js';

/**
 * Issue 5: the rejects file after a crash. A killed run leaves a bulk import job pending whose rows include two
 * that Klaviyo refuses; the resumed run polls the job and must write BOTH import errors (they carry no source
 * line, only the original payload), once each. A reject line torn by the crash must not corrupt the next one.
 */

const KEY = 'pk_resume_rejects_0000000000000000';
let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-resume-rejects-'));
  const file = path.join(tmp, 'customers.csv');
  await generate({ rows: 800, out: file, seed: 77, profiles: true });
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  // line 3: bad date (transform reject, written at once); lines 101 and 401: refused inside the import job
  lines.splice(2, 0, 'bad.date@example.com,,Bad,Date,,Austin,US,78701,gold,31/31/2020');
  lines.splice(100, 0, 'import.error.one@example.tést,,Import,One,,Austin,US,78701,gold,01/02/2020');
  lines.splice(400, 0, 'import.error.two@example.tést,,Import,Two,,Austin,US,78701,gold,01/02/2020');
  await writeFile(file, lines.join('\n') + '\n');
  // one job for the whole file, processed slowly (200 profiles/s): it is pending when the run is killed
  await writeFile(path.join(tmp, 'customers.yaml'), customersPipeline({ name: 'rejects-customers', path: 'customers.csv', profilesBatch: 1000 }));
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 200 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('rejects across a crash and resume', () => {
  it('a resumed run writes every import error of a job it re-polls, once each, after a torn last line', async () => {
    const pipeline = path.join(tmp, 'customers.yaml');
    const stateDir = path.join(tmp, 'state');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const first = start(['run', pipeline, '--state-dir', stateDir], env);
    await lockedBy(stateDir, 'rejects-customers', first.child.pid!);
    const cp = await waitForCheckpoint(stateDir, 'rejects-customers', (c) => c.pendingJobs.length === 1 && c.position !== undefined);
    expect(cp.position!.seq).toBe(802); // every row is in the pending job
    first.child.kill('SIGKILL');
    await first.exited;
    const rejectsFile = await rejectsFileOf(stateDir, 'rejects-customers');
    // the transform reject was written; simulate the crash tearing a further reject line
    const written = await readFile(rejectsFile, 'utf8');
    expect(written.trim().split('\n').map((l) => JSON.parse(l).code)).toEqual(['INVALID_DATE']);
    await appendFile(rejectsFile, '{"stage":"transform","code":"INVA');

    const report = path.join(tmp, 'report.json');
    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--report', report], { env });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(3);
    const rejects = (await readFile(rejectsFile, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { code: string; line?: number; row?: { email?: string } });
    expect(rejects.map((r) => r.line ?? r.row?.email).sort()).toEqual([3, 'import.error.one@example.tést', 'import.error.two@example.tést']);
    expect(rejects.map((r) => r.code).sort()).toEqual(['INVALID_DATE', 'KLAVIYO_IMPORT_ERROR', 'KLAVIYO_IMPORT_ERROR']);
    const r = JSON.parse(await readFile(report, 'utf8'));
    expect(r.rows.rejected).toBe(3);
    expect(r.rejects.count).toBe(3);
    expect((await emulatorProfiles(emulator.url, KEY)).length).toBe(800);
  });
});
