import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { emulatorProfiles } from '../helpers/resume.js';

/**
 * Issue 15, "rejects a person can fix": a CSV rejects file holds the rows' own columns, a person fixes them in a
 * spreadsheet (saved back the way a European Excel saves: `;`, a byte-order mark, CRLF), and `run --from-rejects`
 * sends exactly those rows again through the same mapping, writing its own rejects for the rows that still fail.
 * Every run keeps its rejects file; in the end every customer is in Klaviyo once.
 */

const KEY = 'pk_from_rejects_00000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let env: NodeJS.ProcessEnv;
let pipeline: string;
let stateDir: string;

const CUSTOMERS = [
  'Email,First Name,Last Name,Country,Signed up',
  'anna@example.com,Anna,Schmidt,DE,2025-01-03',
  'ben.bauer(at)example.com,Ben,Bauer,DE,2025-01-04',
  'carla conti@example.com,Carla,Conti,IT,2025-01-05',
  'dora@example.com,Dora,"Dahl, Jr.",DE,2025-01-06',
  'eve@example.com,Eve,Ernst,DE,05.01.2025',
].join('\n') + '\n';

const PIPELINE = `version: 1
name: shop-customers
source:
  type: csv
  path: customers.csv
transform:
  type: profile
  profile:
    email: { column: Email, type: email }
    first_name: First Name
    last_name: Last Name
    location:
      country: Country
    properties:
      signed_up: { column: Signed up, type: date, format: yyyy-MM-dd }
destination:
  type: klaviyo
rejects:
  path: "rejects/{date}-{runId}.csv"
`;

interface Report {
  status: string;
  rows: { read: number; loaded: number; rejected: number };
  rejects: { file: string; count: number; byCode: Record<string, number> };
  fromRejects?: string;
}

let runs = 0;
async function runPipeline(...flags: string[]): Promise<CliResult & { report: Report }> {
  const reportFile = path.join(tmp, `report-${++runs}.json`);
  const result = await cli(['run', pipeline, '--state-dir', stateDir, '--report', reportFile, ...flags], { env, cwd: tmp });
  return { ...result, report: JSON.parse(await readFile(reportFile, 'utf8')) as Report };
}

const readCsv = async (file: string): Promise<Record<string, string>[]> => parse(await readFile(file), { columns: true, bom: true }) as Record<string, string>[];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-from-rejects-'));
  emulator = await startEmulator({ port: 0, limits: 'off' });
  env = { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY };
  pipeline = path.join(tmp, 'customers.yaml');
  stateDir = path.join(tmp, 'state');
  await writeFile(path.join(tmp, 'customers.csv'), CUSTOMERS);
  await writeFile(pipeline, PIPELINE);
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('run --from-rejects (issue 15)', () => {
  let firstRejects: string;
  let secondRejects: string;

  it('a CSV rejects file holds the original columns, plus code, message, source file and line', async () => {
    const first = await runPipeline();
    expect(first.code).toBe(3);
    expect(first.report.rows).toMatchObject({ read: 5, loaded: 2, rejected: 3 });
    expect(first.report.rejects.byCode).toEqual({ INVALID_EMAIL: 2, INVALID_DATE: 1 });
    firstRejects = path.resolve(tmp, first.report.rejects.file);
    expect(path.dirname(firstRejects)).toBe(path.join(tmp, 'rejects'));
    const text = await readFile(firstRejects, 'utf8');
    expect(text.split('\n')[0]).toBe(
      'reject_code,reject_message,reject_field,Email,First Name,Last Name,Country,Signed up,reject_source,reject_line,reject_seq,reject_last_seq,reject_stage,reject_offset,reject_raw,reject_extra',
    );
    const rows = await readCsv(firstRejects);
    expect(rows.map((r) => [r.reject_code, r.reject_source, r.reject_line, r.Email])).toEqual([
      ['INVALID_EMAIL', 'customers.csv', '3', 'ben.bauer(at)example.com'],
      ['INVALID_EMAIL', 'customers.csv', '4', 'carla conti@example.com'],
      ['INVALID_DATE', 'customers.csv', '6', 'eve@example.com'],
    ]);
    expect(rows[2]).toMatchObject({ 'First Name': 'Eve', 'Signed up': '05.01.2025' });
  });

  it('the file fixed in a spreadsheet and sent again: exactly those rows, through the same mapping; what still fails is its own rejects file', async () => {
    const rows = await readCsv(firstRejects);
    rows[0]!.Email = 'ben.bauer@example.com';
    rows[2]!['Signed up'] = '2025-01-05';
    // a European spreadsheet saves with `;`, a byte-order mark and CRLF
    const edited = path.join(tmp, 'fixed in excel.csv');
    await writeFile(edited, stringify(rows, { header: true, delimiter: ';', bom: true, record_delimiter: 'windows' }));

    const second = await runPipeline('--from-rejects', edited);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(3);
    expect(second.report.fromRejects).toBe(edited);
    expect(second.report.rows).toMatchObject({ read: 3, loaded: 2, rejected: 1 });
    secondRejects = path.resolve(tmp, second.report.rejects.file);
    expect(secondRejects).not.toBe(firstRejects);
    const still = await readCsv(secondRejects);
    // the row keeps the source and line it was first read from
    expect(still.map((r) => [r.reject_code, r.reject_source, r.reject_line, r.Email, r['Last Name']])).toEqual([['INVALID_EMAIL', 'customers.csv', '4', 'carla conti@example.com', 'Conti']]);
    const emails = (await emulatorProfiles(emulator.url, KEY)).map((p) => p.email).sort();
    expect(emails).toEqual(['anna@example.com', 'ben.bauer@example.com', 'dora@example.com', 'eve@example.com']);
  });

  it('the last fix: every customer in Klaviyo once; every run kept its rejects', async () => {
    const rows = await readCsv(secondRejects);
    rows[0]!.Email = 'carla.conti@example.com';
    await writeFile(secondRejects, stringify(rows, { header: true }));
    const third = await runPipeline('--from-rejects', secondRejects);
    expect(third.code).toBe(0);
    expect(third.report.rows).toMatchObject({ read: 1, loaded: 1, rejected: 0 });
    const profiles = await emulatorProfiles(emulator.url, KEY);
    expect(profiles.map((p) => p.email).sort()).toEqual(['anna@example.com', 'ben.bauer@example.com', 'carla.conti@example.com', 'dora@example.com', 'eve@example.com']);
    expect(profiles.find((p) => p.email === 'carla.conti@example.com')).toMatchObject({ first_name: 'Carla', last_name: 'Conti' });
    expect((await readdir(path.join(tmp, 'rejects'))).sort()).toEqual([path.basename(firstRejects), path.basename(secondRejects)].sort());
  });

  it('a resend is not a full refresh or a restart (usage error, exit 2); a file that is not there is named', async () => {
    const both = await cli(['run', pipeline, '--state-dir', stateDir, '--from-rejects', firstRejects, '--full-refresh'], { env, cwd: tmp });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--from-rejects .*not with --full-refresh/);
    const missing = await cli(['run', pipeline, '--state-dir', stateDir, '--from-rejects', 'nope.csv'], { env, cwd: tmp });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.csv/);
  });
});
