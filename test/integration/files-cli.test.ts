import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, ROOT } from '../helpers/cli.js';
import { emulatorProfiles, readRejects } from '../helpers/resume.js';

/**
 * Issue 15, "Catch mistakes before the first request": files made the way users make them (Excel on Windows,
 * European exports, tab-separated, BOMs, an empty nightly drop, a misspelt header), run through the CLI against the
 * emulator, asserting what the emulator holds, the problems and reject codes reported, and the exit codes.
 */

const KEY = 'pk_files_cli_000000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-files-'));
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 1_000_000 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

interface Report {
  status: string;
  error?: { code: string; message: string };
  rows: { read: number; loaded: number; rejected: number };
  requests: { total: number };
  warnings?: { code: string; message: string; file?: string }[];
  rejects?: { file: string; count: number };
}

/** A pipeline `name` in its own folder, reading `source` (YAML lines under `source:`) into profiles. */
async function pipeline(name: string, source: string, profile: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'pipeline.yaml');
  await writeFile(file, `version: 1\nname: ${name}\nsource:\n  type: csv\n${source}\ntransform:\n  type: profile\n  profile:\n${profile}\ndestination:\n  type: klaviyo\n`);
  return file;
}

async function run(file: string, name: string) {
  const reportFile = path.join(tmp, `${name}-report.json`);
  const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile], {
    env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY },
  });
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  return { ...result, report };
}

const profileOf = async (email: string) => (await emulatorProfiles(emulator.url, KEY)).find((p) => p.email === email);
/** The rejects file a run's report names (relative to the CLI's working directory). */
const rejectsOf = (report: Report) => readRejects(path.resolve(ROOT, report.rejects!.file));

const PROFILE = `    email: Email\n    first_name: First Name\n    last_name: Last Name\n    location: {city: City}`;

/** The customers sheet Excel on Windows saves as "CSV (Comma delimited)": windows-1252 bytes, CRLF. */
const EXCEL_ROWS = [
  'Email,First Name,Last Name,City',
  'zoe@example.com,Zoë,Müller,Zürich',
  'jose@example.com,José,Núñez,Bogotá',
  'plain@example.com,Ann,Lee,Boston',
  'francois@example.com,François,Lefèvre,Besançon',
];

describe('encodings (through the CLI)', () => {
  it('a Windows-1252 file from Excel (CRLF) with encoding: windows-1252 loads with its accents intact', async () => {
    const file = await pipeline('excel-1252', '  path: customers.csv\n  encoding: windows-1252', PROFILE);
    await writeFile(path.join(path.dirname(file), 'customers.csv'), iconv.encode(EXCEL_ROWS.join('\r\n') + '\r\n', 'windows-1252'));
    const { code, report } = await run(file, 'excel-1252');
    expect(report.error).toBeUndefined();
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 4, loaded: 4, rejected: 0 });
    expect(await profileOf('zoe@example.com')).toMatchObject({ first_name: 'Zoë', last_name: 'Müller', location: { city: 'Zürich' } });
    expect(await profileOf('francois@example.com')).toMatchObject({ first_name: 'François', last_name: 'Lefèvre', location: { city: 'Besançon' } });
  }, 60_000);

  it('the same file read as UTF-8 (no encoding set): rows with undecodable bytes are INVALID_ENCODING rejects naming their line, never U+FFFD in Klaviyo; exit 3', async () => {
    const file = await pipeline('excel-as-utf8', '  path: customers.csv', PROFILE.replace('email: Email', 'email: {column: Email, type: email}'));
    const rows = EXCEL_ROWS.map((r) => r.replace('@example', '-utf8@example'));
    await writeFile(path.join(path.dirname(file), 'customers.csv'), iconv.encode(rows.join('\r\n') + '\r\n', 'windows-1252'));
    const validated = await cli(['validate', file, '--with-data']);
    expect(validated.code).toBe(0);
    expect(validated.stdout).toMatch(/SOURCE_NOT_UTF8 {2}source\.encoding: line 2 of customers\.csv holds bytes that are not UTF-8.*windows-1252.*\(warning\)/);
    const { code, report } = await run(file, 'excel-as-utf8');
    expect(report.warnings?.map((w) => w.code)).toEqual(['SOURCE_NOT_UTF8']);
    expect(code).toBe(3);
    expect(report.rows).toMatchObject({ read: 4, loaded: 1, rejected: 3 });
    const rejects = await rejectsOf(report);
    expect(rejects.map((r) => [r.code, r.line])).toEqual([
      ['INVALID_ENCODING', 2],
      ['INVALID_ENCODING', 3],
      ['INVALID_ENCODING', 5],
    ]);
    expect(JSON.stringify(rejects[0])).toMatch(/not UTF-8.*encoding/);
    const profiles = await emulatorProfiles(emulator.url, KEY);
    expect(profiles.filter((p) => p.email?.includes('-utf8@')).map((p) => p.email)).toEqual(['plain-utf8@example.com']);
    expect(JSON.stringify(profiles)).not.toContain('\ufffd');
  }, 60_000);

  it('a UTF-8 file with a BOM: the first column is "Email", not "\\ufeffEmail"', async () => {
    const file = await pipeline('utf8-bom', '  path: customers.csv', PROFILE);
    const rows = EXCEL_ROWS.map((r) => r.replace('@example', '-bom@example'));
    await writeFile(path.join(path.dirname(file), 'customers.csv'), '\ufeff' + rows.join('\r\n') + '\r\n');
    const { code, report } = await run(file, 'utf8-bom');
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 4, loaded: 4 });
    expect(await profileOf('jose-bom@example.com')).toMatchObject({ first_name: 'José', last_name: 'Núñez' });
  }, 60_000);

  it('Excel\'s "Unicode Text" (UTF-16LE with a BOM, tab-separated) is read by its BOM with delimiter: tab', async () => {
    const file = await pipeline('utf16-tab', '  path: customers.txt\n  delimiter: tab', PROFILE);
    const rows = EXCEL_ROWS.map((r) => r.replace('@example', '-u16@example').replaceAll(',', '\t'));
    await writeFile(path.join(path.dirname(file), 'customers.txt'), Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(rows.join('\r\n') + '\r\n', 'utf-16le')]));
    const { code, report } = await run(file, 'utf16-tab');
    expect(report.error).toBeUndefined();
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 4, loaded: 4 });
    expect(await profileOf('zoe-u16@example.com')).toMatchObject({ first_name: 'Zoë', location: { city: 'Zürich' } });
  }, 60_000);
});

describe('delimiters and numbers (through the CLI)', () => {
  /** A European export: semicolons, decimal commas, thousands dots. */
  const EUROPEAN = ['Email;Name;Umsatz;Bestellungen', 'anna@example.de;Anna;1.234,56;3', 'bernd@example.de;Bernd;99,9;1', 'carla@example.de;Carla;12.000;12'];
  const PROPS = `    email: Email\n    first_name: Name\n    properties:\n      Revenue: {column: Umsatz, type: number, decimal: ","}\n      Orders: {column: Bestellungen, type: integer}`;

  it('a semicolon-separated file read with the default delimiter: validate --with-data names the delimiter to set; run stops before any request (exit 1)', async () => {
    const file = await pipeline('euro-comma', '  path: export.csv', PROPS);
    await writeFile(path.join(path.dirname(file), 'export.csv'), EUROPEAN.join('\n') + '\n');
    const validated = await cli(['validate', file, '--with-data']);
    expect(validated.code).toBe(2);
    expect(validated.stdout).toMatch(/pipeline\.yaml:\d+:\d+ {2}SOURCE_DELIMITER {2}source\.delimiter: the header of export\.csv is one column holding ";" 3 times: set `delimiter: ";"`/);
    const before = emulator.snapshot().requests.total;
    const { code, report } = await run(file, 'euro-comma');
    expect(code).toBe(1);
    expect(report.error?.code).toBe('SOURCE_DELIMITER');
    expect(report.requests.total).toBe(0);
    expect(emulator.snapshot().requests.total).toBe(before);
  }, 60_000);

  it('with delimiter: ";" and decimal: ",": 1.234,56 is 1234.56 in Klaviyo', async () => {
    const file = await pipeline('euro', '  path: export.csv\n  delimiter: ";"', PROPS);
    await writeFile(path.join(path.dirname(file), 'export.csv'), EUROPEAN.join('\r\n') + '\r\n');
    expect((await cli(['validate', file, '--with-data'])).code).toBe(0);
    const { code, report } = await run(file, 'euro');
    expect(report.error).toBeUndefined();
    expect(code).toBe(0);
    expect((await profileOf('anna@example.de'))?.properties).toMatchObject({ Revenue: 1234.56, Orders: 3 });
    expect((await profileOf('bernd@example.de'))?.properties).toMatchObject({ Revenue: 99.9 });
    expect((await profileOf('carla@example.de'))?.properties).toMatchObject({ Revenue: 12000, Orders: 12 });
  }, 60_000);

  it('a tab-separated file with delimiter: tab', async () => {
    const file = await pipeline('tsv', "  path: customers.tsv\n  delimiter: '\\t'", PROFILE);
    const rows = EXCEL_ROWS.map((r) => r.replace('@example', '-tsv@example').replaceAll(',', '\t'));
    await writeFile(path.join(path.dirname(file), 'customers.tsv'), rows.join('\n') + '\n');
    const { code, report } = await run(file, 'tsv');
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 4, loaded: 4 });
    expect(await profileOf('francois-tsv@example.com')).toMatchObject({ last_name: 'Lefèvre', location: { city: 'Besançon' } });
  }, 60_000);
});

describe('headers (through the CLI)', () => {
  it('a misspelt column: validate --with-data points at the mapping (file:line:col) with a did-you-mean from the real header; run fails before any request', async () => {
    const file = await pipeline('misspelt', '  path: customers.csv', PROFILE.replace('first_name: First Name', 'first_name: First Nmae'));
    await writeFile(path.join(path.dirname(file), 'customers.csv'), EXCEL_ROWS.join('\n') + '\n');
    const validated = await cli(['validate', file, '--with-data']);
    expect(validated.code).toBe(2);
    const line = (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.includes('First Nmae')) + 1;
    expect(validated.stdout).toContain(
      `pipeline.yaml:${line}:17  SOURCE_COLUMN_MISSING  transform.profile.first_name: column "First Nmae" is not in the header of customers.csv (did you mean "First Name"?)`,
    );
    expect((await cli(['validate', file])).code).toBe(0); // without the data, the file itself is valid
    const { code, report, stdout } = await run(file, 'misspelt');
    expect(code).toBe(1);
    expect(report.error?.code).toBe('SOURCE_COLUMN_MISSING');
    expect(report.error?.message).toMatch(/pipeline\.yaml:\d+:17 {2}SOURCE_COLUMN_MISSING .*did you mean "First Name"\?/);
    expect(report.requests.total).toBe(0);
    expect(stdout).toContain('did you mean "First Name"?');
  }, 60_000);

  it('duplicate and empty header names are SOURCE_HEADER_INVALID', async () => {
    const file = await pipeline('dup-header', '  path: customers.csv', PROFILE);
    await writeFile(path.join(path.dirname(file), 'customers.csv'), 'Email,First Name,Last Name,City,Email,,\na@example.com,A,B,C,x@example.com,,\n');
    const { code, stdout } = await cli(['validate', file, '--with-data', '--json']);
    expect(code).toBe(2);
    const out = JSON.parse(stdout) as { valid: boolean; problems: { code: string; message: string }[] };
    expect(out.valid).toBe(false);
    expect(out.problems.map((p) => p.code)).toEqual(['SOURCE_HEADER_INVALID', 'SOURCE_HEADER_INVALID']);
    expect(out.problems.map((p) => p.message).join('\n')).toMatch(/"Email" is the name of columns 1 and 5[\s\S]*columns 6, 7 have no name/);
  }, 60_000);
});

describe('an empty nightly drop (through the CLI)', () => {
  it('a 0-byte file and a header-only file among the drop: machine-readable warnings in the report and the summary, the good file loaded, exit 0', async () => {
    const file = await pipeline('nightly', '  path: drop/*.csv', PROFILE);
    const drop = path.join(path.dirname(file), 'drop');
    await mkdir(drop);
    await writeFile(path.join(drop, '2026-12-01.csv'), EXCEL_ROWS.slice(0, 2).join('\n').replace('zoe@', 'zoe-nightly@') + '\n');
    await writeFile(path.join(drop, '2026-12-02.csv'), '');
    await writeFile(path.join(drop, '2026-12-03.csv'), EXCEL_ROWS[0] + '\r\n');
    const validated = await cli(['validate', file, '--with-data']);
    expect(validated.code).toBe(0);
    expect(validated.stdout).toMatch(/SOURCE_FILE_EMPTY {2}source\.path: drop\/2026-12-02\.csv is empty \(0 bytes\).*\(warning\)/);
    expect(validated.stdout).toMatch(/SOURCE_FILE_NO_ROWS {2}source\.path: drop\/2026-12-03\.csv holds no rows/);
    const { code, report, stdout } = await run(file, 'nightly');
    expect(code).toBe(0);
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 1, loaded: 1 });
    expect(report.warnings?.map((w) => [w.code, w.file])).toEqual([
      ['SOURCE_FILE_EMPTY', 'drop/2026-12-02.csv'],
      ['SOURCE_FILE_NO_ROWS', 'drop/2026-12-03.csv'],
    ]);
    expect(stdout).toMatch(/warning {3}\[SOURCE_FILE_EMPTY\] drop\/2026-12-02\.csv is empty \(0 bytes\)/);
    expect(stdout).toMatch(/warning {3}\[SOURCE_FILE_NO_ROWS\] drop\/2026-12-03\.csv holds no rows/);
  }, 60_000);
});

describe('date formats from other libraries (through the CLI)', () => {
  it('Moment and strftime formats are caught by validate with the Luxon format to write', async () => {
    const file = await pipeline(
      'moment',
      '  path: customers.csv',
      `    email: Email\n    properties:\n      Birthday: {column: Birthday, type: date, format: YYYY-MM-DD}\n      Joined: {column: Joined, type: date, format: "%d/%m/%Y"}`,
    );
    const { code, stdout } = await cli(['validate', file]);
    expect(code).toBe(2);
    expect(stdout).toMatch(/CONFIG_RULE {2}transform\.profile\.properties\.Birthday\.format: "YYYY-MM-DD" is a Moment\.js format; formats here are Luxon tokens: write "yyyy-MM-dd"/);
    expect(stdout).toMatch(/CONFIG_RULE {2}transform\.profile\.properties\.Joined\.format: "%d\/%m\/%Y" is a strftime format; formats here are Luxon tokens: write "dd\/MM\/yyyy"/);
  }, 60_000);
});
