import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, ROOT } from '../helpers/cli.js';
import { emulatorProfiles, readCheckpointFile } from '../helpers/resume.js';

/**
 * Issue 16: the disk filled up while the rejects file was written, and the checkpoint moved past a reject that was
 * only half written (6,000 rows: 4,000 loaded, 1,999 rejected, one in neither). A reject must be in the file
 * (written in full and flushed) before its row counts as done; a failed write fails the run with a checkpoint
 * before that row, and the resume puts every row either in Klaviyo or in the rejects file.
 */

const KEY = 'pk_resume_disk_full_000000000000000';
const ROWS = 6000;
const DISK_FULL = path.join(ROOT, 'test', 'helpers', 'disk-full.mjs');
let tmp: string;
let emulator: EmulatorHandle;

const isBad = (i: number) => i % 3 === 2;
const email = (i: number) => (isBad(i) ? `bad-${i}-at-example.com` : `p${i}@example.com`);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-disk-full-'));
  const lines = ['email,first_name'];
  for (let i = 0; i < ROWS; i++) lines.push(`${email(i)},Name ${i}`);
  await writeFile(path.join(tmp, 'people.csv'), lines.join('\n') + '\n');
  await writeFile(
    path.join(tmp, 'people.yaml'),
    `version: 1
name: disk-full
source: { type: csv, path: people.csv }
transform:
  type: profile
  profile:
    email: { column: email, type: email }
    first_name: first_name
destination:
  type: klaviyo
  batch: { profiles: 500 }
rejects: { path: out/rejects.ndjson }
`,
  );
  emulator = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** The seq (0-based row) of each complete line of the rejects file; a torn last line is not counted. */
async function writtenSeqs(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

describe('the disk fills up while rejects are written', () => {
  it('fails the run with a checkpoint before the first reject not written; the resume loses no row', async () => {
    const pipeline = path.join(tmp, 'people.yaml');
    const stateDir = path.join(tmp, 'state');
    const rejectsFile = path.join(tmp, 'out', 'rejects.ndjson');
    const env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
    const full = {
      ...env,
      NODE_OPTIONS: `--import ${DISK_FULL}`,
      KLAVIYO_ETL_TEST_FULL_FILE: rejectsFile,
      // room for about 300 rejects: the write that fills the disk ends in the middle of one
      KLAVIYO_ETL_TEST_FULL_AFTER: '40009',
    };
    const first = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env: full });
    expect(first.code).toBe(1);
    expect(JSON.parse(first.stdout).error.code).toBe('REJECTS_WRITE');
    const torn = await readFile(rejectsFile, 'utf8');
    expect(torn.endsWith('\n')).toBe(false); // the disk filled up in the middle of a line
    const cp = (await readCheckpointFile(stateDir, 'disk-full'))!;
    expect(cp.status).toBe('failed');
    // the checkpoint has not passed the first bad row whose reject is not in the file
    const written = new Set(await writtenSeqs(rejectsFile));
    const firstMissing = [...Array(ROWS).keys()].find((i) => isBad(i) && !written.has(i))!;
    expect(cp.position?.seq ?? -1).toBeLessThan(firstMissing);

    const second = await cli(['run', pipeline, '--state-dir', stateDir, '--json'], { env });
    expect(second.code).toBe(3);
    const report = JSON.parse(second.stdout);
    expect(report.rows).toMatchObject({ read: ROWS, loaded: ROWS - ROWS / 3, rejected: ROWS / 3 });
    // every row is in Klaviyo or in the rejects file, once
    const profiles = (await emulatorProfiles(emulator.url, KEY)).map((p) => p.email);
    const good = [...Array(ROWS).keys()].filter((i) => !isBad(i)).map(email);
    expect(profiles.sort()).toEqual(good.sort());
    const rejected = await writtenSeqs(rejectsFile);
    expect(rejected.sort((a, b) => a - b)).toEqual([...Array(ROWS).keys()].filter(isBad));
  }, 120_000);
});
