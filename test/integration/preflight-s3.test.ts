import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createS3Client } from '../../src/s3/client.js';
import { cli } from '../helpers/cli.js';
import { emulatorProfiles } from '../helpers/resume.js';
import { startRecordingProxy, startS3rver, type RecordingProxy, type TestS3 } from '../helpers/s3rver.js';

/*
 * Issue 15, "Catch mistakes before the first request", for S3 sources and `where:` columns: the pre-flight check
 * reads the header of every object the run will read (ranged GETs through a recording proxy in front of s3rver, so
 * the test sees what was asked for), and checks the columns of `where:` conditions like the mapping's, through the
 * built CLI (`validate --with-data` and `run` against the emulator).
 */

const KEY = 'pk_preflight_s3_00000000000000000000';
const BUCKET = 'drops';

let s3: TestS3;
let proxy: RecordingProxy;
let client: S3Client;
let emulator: EmulatorHandle;
let tmp: string;

beforeAll(async () => {
  s3 = await startS3rver([BUCKET]);
  proxy = await startRecordingProxy(s3.endpoint);
  client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 1_000_000 });
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-preflight-s3-'));
});
afterAll(async () => {
  client?.destroy();
  await emulator?.close();
  await proxy?.close();
  await s3?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Report {
  status: string;
  error?: { code: string; message: string };
  rows: { read: number; loaded: number };
  requests: { total: number };
}

interface Validated {
  valid: boolean;
  problems: { code: string; line: number; column: number; path: string; message: string }[];
  warnings: { code: string; path: string; message: string }[];
}

const put = (key: string, body: Buffer | string, contentEncoding?: string) =>
  client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentEncoding: contentEncoding }));

/** A pipeline reading `prefix` of the bucket (through the proxy) into profiles; `source` and `transform` add lines. */
async function pipeline(name: string, prefix: string, opts: { source?: string; profile?: string; transform?: string } = {}): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'pipeline.yaml');
  const profile = opts.profile ?? '    email: Email\n    first_name: First Name';
  await writeFile(
    file,
    `version: 1\nname: ${name}\nsource:\n  type: s3\n  bucket: ${BUCKET}\n  prefix: ${prefix}\n  endpoint: \${S3_ENDPOINT}\n  forcePathStyle: true\n${opts.source ?? ''}` +
      `transform:\n  type: profile\n${opts.transform ?? ''}  profile:\n${profile}\ndestination:\n  type: klaviyo\n`,
  );
  return file;
}

const env = (): NodeJS.ProcessEnv => ({ ...s3.env, S3_ENDPOINT: proxy.endpoint, KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY });

async function validate(file: string): Promise<{ code: number; out: Validated }> {
  const result = await cli(['validate', file, '--with-data', '--json'], { env: env() });
  return { code: result.code, out: JSON.parse(result.stdout) as Validated };
}

let runs = 0;
async function run(file: string): Promise<{ code: number; stdout: string; report: Report }> {
  const reportFile = path.join(tmp, `report-${++runs}.json`);
  const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile], { env: env() });
  return { code: result.code, stdout: result.stdout, report: JSON.parse(await readFile(reportFile, 'utf8')) as Report };
}

/** The ranged GETs (the pre-flight's reads) the proxy saw since `from`, by object key. */
const rangedGets = (from: number) =>
  proxy.requests
    .slice(from)
    .filter((r) => r.method === 'GET' && r.range !== undefined)
    .map((r) => ({ key: decodeURIComponent(new URL(r.url, 'http://x').pathname.slice(`/${BUCKET}/`.length)), range: r.range!, bytes: r.bytes }));

/** `line` of the pipeline file holding `text`, 1-based. */
const lineOf = async (file: string, text: string) => (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.includes(text)) + 1;

describe('S3 sources: the header of every object the run will read', () => {
  it('a later object whose header lacks a mapped column: validate points at the mapping with a did-you-mean; the large gzip object before it is read by one 64 KiB range; the run stops before any request', async () => {
    // ~700 KB of gzip (random hex): the check must not download it: the check must not download it
    const rows = Array.from({ length: 12_000 }, (_, i) => `big${i}@example.com,${randomBytes(48).toString('hex')}`);
    const big = gzipSync(['Email,First Name', ...rows].join('\n') + '\n');
    expect(big.length).toBeGreaterThan(500_000);
    await put('misspelt/2026-12-01.csv.gz', big);
    await put('misspelt/2026-12-02.csv', 'Email,Firstname\nlate@example.com,Late\n');
    const file = await pipeline('misspelt', 'misspelt/');
    const from = proxy.requests.length;
    const { code, out } = await validate(file);
    expect(code).toBe(2);
    const line = await lineOf(file, 'first_name: First Name');
    expect(out.problems).toEqual([
      {
        file,
        line,
        column: 17,
        path: 'transform.profile.first_name',
        code: 'SOURCE_COLUMN_MISSING',
        message: 'column "First Name" is not in the header of s3://drops/misspelt/2026-12-02.csv (did you mean "Firstname"?); the header has "Email", "Firstname"',
      },
    ]);
    const gets = rangedGets(from);
    expect(gets.map((g) => g.key).sort()).toEqual(['misspelt/2026-12-01.csv.gz', 'misspelt/2026-12-02.csv']);
    const bigGet = gets.find((g) => g.key.endsWith('.gz'))!;
    expect(bigGet).toMatchObject({ range: 'bytes=0-65535', bytes: 65_536 });
    expect(proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.range === undefined && r.url.includes('.csv'))).toEqual([]);

    const { code: runCode, report, stdout } = await run(file);
    expect(runCode).toBe(1);
    expect(report.error?.code).toBe('SOURCE_COLUMN_MISSING');
    expect(report.error?.message).toContain(`pipeline.yaml:${line}:17  SOURCE_COLUMN_MISSING  transform.profile.first_name: column "First Name" is not in the header of s3://drops/misspelt/2026-12-02.csv (did you mean "Firstname"?)`);
    expect(report.requests.total).toBe(0);
    expect(report.rows.read).toBe(0);
    expect(stdout).toContain('did you mean "Firstname"?');
    expect(await emulatorProfiles(emulator.url, KEY)).toEqual([]);
  }, 90_000);

  it('objects decoded as the run decodes them (Windows-1252, `;`, Content-Encoding gzip without a .gz name) pass; a duplicate header name, an empty object and a header-only object are reported at `prefix`', async () => {
    const excel = iconv.encode('Email;Prénom;Statut\r\nzoe@example.com;Zoé;paid\r\ntest@example.com;Test;test\r\n', 'windows-1252');
    await put('eu/2026-12-01.csv', gzipSync(excel), 'gzip');
    const file = await pipeline('eu', 'eu/', {
      source: '  delimiter: ";"\n  encoding: windows-1252\n',
      transform: '  where:\n    - {column: Statut, not_equals: test}\n',
      profile: '    email: Email\n    first_name: Prénom',
    });
    const ok = await validate(file);
    expect(ok.out).toMatchObject({ valid: true, problems: [], warnings: [] });
    expect(ok.code).toBe(0);

    await put('eu/2026-12-02.csv', iconv.encode('Email;Prénom;Statut;Email\r\na@example.com;A;paid;b@example.com\r\n', 'windows-1252'));
    await put('eu/2026-12-03.csv', Buffer.alloc(0));
    await put('eu/2026-12-04.csv', iconv.encode('Email;Prénom;Statut\r\n', 'windows-1252'));
    const bad = await validate(file);
    expect(bad.code).toBe(2);
    const prefixLine = await lineOf(file, 'prefix: eu/');
    expect(bad.out.problems).toEqual([
      expect.objectContaining({
        code: 'SOURCE_HEADER_INVALID',
        path: 'source.prefix',
        line: prefixLine,
        message: expect.stringContaining('the header of s3://drops/eu/2026-12-02.csv: "Email" is the name of columns 1 and 4'),
      }),
    ]);
    expect(bad.out.warnings.map((w) => [w.code, w.path, w.message.split(' ')[0]])).toEqual([
      ['SOURCE_FILE_EMPTY', 'source.prefix', 's3://drops/eu/2026-12-03.csv'],
      ['SOURCE_FILE_NO_ROWS', 'source.prefix', 's3://drops/eu/2026-12-04.csv'],
    ]);

    const { code, report } = await run(file);
    expect(code).toBe(1);
    expect(report.error?.code).toBe('SOURCE_HEADER_INVALID');
    expect(report.requests.total).toBe(0);
  }, 90_000);

  it('objects already loaded (watermark, same ETag) are not read again by the check; a new object is, and stops the run', async () => {
    await put('nightly/2026-12-01.csv', 'Email,First Name\nnight1@example.com,Night\n');
    const file = await pipeline('nightly', 'nightly/');
    const first = await run(file);
    expect(first.code).toBe(0);
    expect(first.report.rows).toMatchObject({ read: 1, loaded: 1 });

    const from = proxy.requests.length;
    const again = await run(file);
    expect(again.code).toBe(0);
    expect(again.report.rows.read).toBe(0);
    expect(rangedGets(from)).toEqual([]);

    await put('nightly/2026-12-02.csv', 'E-mail,First Name\nnight2@example.com,Night\n');
    const from2 = proxy.requests.length;
    const third = await run(file);
    expect(third.code).toBe(1);
    expect(third.report.error?.code).toBe('SOURCE_COLUMN_MISSING');
    expect(third.report.error?.message).toContain('column "Email" is not in the header of s3://drops/nightly/2026-12-02.csv (did you mean "E-mail"?)');
    expect(third.report.requests.total).toBe(0);
    expect(rangedGets(from2).map((g) => g.key)).toEqual(['nightly/2026-12-02.csv']);
  }, 90_000);

  it('no object under the prefix is SOURCE_NOT_FOUND, an object that is not gzip though named .gz is SOURCE_READ, both at `prefix`', async () => {
    const file = await pipeline('nothing', 'nothing-here/');
    const { code, out } = await validate(file);
    expect(code).toBe(2);
    expect(out.problems).toEqual([expect.objectContaining({ code: 'SOURCE_NOT_FOUND', path: 'source.prefix', line: await lineOf(file, 'prefix: nothing-here/') })]);

    await put('corrupt/2026-12-01.csv.gz', 'Email,First Name\nnot@gzip.example,No\n');
    const corrupt = await pipeline('corrupt', 'corrupt/');
    const read = await validate(corrupt);
    expect(read.code).toBe(2);
    expect(read.out.problems).toEqual([
      expect.objectContaining({ code: 'SOURCE_READ', path: 'source.prefix', message: expect.stringMatching(/^Cannot read s3:\/\/drops\/corrupt\/2026-12-01\.csv\.gz: .*header check/) }),
    ]);
  }, 60_000);
});

describe('`where:` columns (local CSV)', () => {
  it('a where column not in the header, alone or in `any:`, is SOURCE_COLUMN_MISSING at the condition with a did-you-mean; the run stops before any request', async () => {
    const dir = path.join(tmp, 'where-local');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'orders.csv'), 'Email,Financial Status,Tags\na@example.com,paid,\n');
    const file = path.join(dir, 'pipeline.yaml');
    await writeFile(
      file,
      `version: 1
name: where-local
source:
  type: csv
  path: orders.csv
transform:
  type: profile
  where:
    - {column: Financial Stauts, not_in: [refunded, voided]}
    - any:
        - {column: Tags, not_contains: test}
        - {column: Tag, empty: true}
  profile:
    email: Email
destination:
  type: klaviyo
`,
    );
    const { code, out } = await validate(file);
    expect(code).toBe(2);
    expect(out.problems.map((p) => [p.code, p.path, p.line, p.column, p.message])).toEqual([
      [
        'SOURCE_COLUMN_MISSING',
        'transform.where[0].column',
        9,
        16,
        'column "Financial Stauts" is not in the header of orders.csv (did you mean "Financial Status"?); the header has "Email", "Financial Status", "Tags"',
      ],
      ['SOURCE_COLUMN_MISSING', 'transform.where[1].any[1].column', 12, 20, 'column "Tag" is not in the header of orders.csv (did you mean "Tags"?); the header has "Email", "Financial Status", "Tags"'],
    ]);
    const { code: runCode, report } = await run(file);
    expect(runCode).toBe(1);
    expect(report.error?.code).toBe('SOURCE_COLUMN_MISSING');
    expect(report.error?.message).toMatch(/pipeline\.yaml:9:16 {2}SOURCE_COLUMN_MISSING {2}transform\.where\[0\]\.column: .*did you mean "Financial Status"\?/);
    expect(report.requests.total).toBe(0);
  }, 60_000);
});
