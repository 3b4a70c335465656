import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createS3Client } from '../../src/s3/client.js';
import { run } from '../../src/runner/index.js';
import { flushesLogged, partialFiles } from '../helpers/export-progress.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';
import { client, KEY, profileBody } from '../unit/emulator/client.js';

/**
 * Exports of list members against the emulator over HTTP: several pages (> 250 members), incremental runs with
 * members sharing the watermark's timestamp, an S3 destination on s3rver, and an interrupted export resumed
 * (including the bytes a killed process leaves past its checkpoint) with every member exactly once.
 */

const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);
let t = T0;
/** Called on every emulator request (through its clock): tests use it to interrupt a run at a precise moment. */
let onRequest: (() => void) | undefined;
let emu: EmulatorHandle;
let s3: TestS3;
let tmp: string;
let call: ReturnType<typeof client>;
let counter = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-'));
  emu = await startEmulator({
    port: 0,
    limits: 1000, // rate-limited (so every /api request reads the clock below), with room to spare
    now: () => {
      onRequest?.();
      return t;
    },
  });
  call = client(emu.url);
  s3 = await startS3rver(['exports']);
}, 30_000);

afterAll(async () => {
  onRequest = undefined;
  await emu?.close();
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function createList(name: string): Promise<string> {
  const r = await call('POST', '/api/lists', { data: { type: 'list', attributes: { name } } });
  expect(r.status).toBe(201);
  return r.json.data.id as string;
}

/** Create `n` profiles and add them to the list at time `at`; returns their ids. */
async function addMembers(list: string, n: number, at: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = counter++;
    const r = await call(
      'POST',
      '/api/profiles',
      profileBody({ email: `m${k}@example.com`, first_name: `First ${k}`, location: { city: `City, "${k}"` }, properties: { tier: k % 3 === 0 ? 'gold' : 'silver' } }),
    );
    expect(r.status).toBe(201);
    ids.push(r.json.data.id as string);
  }
  t = at;
  for (let i = 0; i < ids.length; i += 1000) {
    const r = await call('POST', `/api/lists/${list}/relationships/profiles`, { data: ids.slice(i, i + 1000).map((id) => ({ type: 'profile', id })) });
    expect(r.status).toBe(204);
  }
  return ids;
}

function pipeline(name: string, list: string, destination: string, pageSize = 100): string {
  return `version: 1
name: ${name}
source:
  type: klaviyo
  list: ${list}
  pageSize: ${pageSize}
  subscriptions: true
transform:
  type: export
  columns:
    id: id
    email: email
    first_name: first_name
    city: location.city
    tier: properties.tier
    email_consent: subscriptions.email.marketing.consent
    joined_group_at: joined_group_at
destination:
${destination}
`;
}

type Row = Record<string, string>;

function parseCsv(text: string): Row[] {
  return parse(text, { columns: true }) as Row[];
}

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY, ...s3.env });

/** Files in `dir` that were not in `before`. */
async function newFiles(dir: string, before: Set<string>): Promise<string[]> {
  return (await readdir(dir)).filter((f) => !before.has(f)).sort();
}

describe('list member export to CSV', () => {
  let dir: string;
  let file: string;
  let list: string;
  const members: string[] = [];
  const stateDir = () => path.join(dir, 'state');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmp, 'csv-'));
    file = path.join(dir, 'export.yaml');
    list = await createList('Newsletter');
    members.push(...(await addMembers(list, 130, T0 + 60_000)));
    members.push(...(await addMembers(list, 131, T0 + 120_000)));
    await writeFile(file, pipeline('csv-export', list, `  type: csv\n  path: out/members-{date}-{runId}.csv`));
  }, 60_000);

  it('first run: one header + one row per member (3 pages), columns in order, nested fields flattened', async () => {
    const report = await run({ pipelineFile: file, env: env(), stateDir: stateDir() });
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 261, loaded: 261, rejected: 0 });
    // the first and last joined_group_at (one sorted page of size 1 each), then the 3 pages
    expect(report.requests.byEndpoint['GET /api/lists/{id}/profiles']).toBe(5);
    const files = await readdir(path.join(dir, 'out'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^members-\\d{4}-\\d\\d-\\d\\d-${report.runId}\\.csv$`));
    const text = await readFile(path.join(dir, 'out', files[0]!), 'utf8');
    expect(text.split('\n')[0]).toBe('id,email,first_name,city,tier,email_consent,joined_group_at');
    const rows = parseCsv(text);
    expect(rows.map((r) => r.id).sort()).toEqual([...members].sort());
    const first = rows.find((r) => r.id === members[0])!;
    expect(first).toMatchObject({ email: expect.stringMatching(/^m\d+@example\.com$/), city: expect.stringMatching(/^City, "\d+"$/), email_consent: 'NEVER_SUBSCRIBED' });
    expect(['gold', 'silver']).toContain(first.tier);
    expect(Date.parse(first.joined_group_at!)).toBe(T0 + 60_000);
    // sorted by joined_group_at
    const joined = rows.map((r) => Date.parse(r.joined_group_at!));
    expect(joined).toEqual([...joined].sort((a, b) => a - b));
    // nothing partial left behind
    expect((await readdir(path.join(dir, 'out'))).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('second run exports only new members, including members who joined at the watermark timestamp', async () => {
    const before = new Set(await readdir(path.join(dir, 'out')));
    const sameInstant = await addMembers(list, 7, T0 + 120_000); // same joined_group_at as the last 131
    const later = await addMembers(list, 5, T0 + 180_000);
    const report = await run({ pipelineFile: file, env: env(), stateDir: stateDir() });
    expect(report.status).toBe('succeeded');
    const [fresh] = await newFiles(path.join(dir, 'out'), before);
    const rows = parseCsv(await readFile(path.join(dir, 'out', fresh!), 'utf8'));
    expect(rows.map((r) => r.id).sort()).toEqual([...sameInstant, ...later].sort());
    expect(report.rows.loaded).toBe(12);

    // a third run with nothing new: a header-only file
    const before3 = new Set(await readdir(path.join(dir, 'out')));
    const third = await run({ pipelineFile: file, env: env(), stateDir: stateDir() });
    expect(third.status).toBe('succeeded');
    const [empty] = await newFiles(path.join(dir, 'out'), before3);
    expect(await readFile(path.join(dir, 'out', empty!), 'utf8')).toBe('id,email,first_name,city,tier,email_consent,joined_group_at\n');

    // and members joining at the (new) watermark instant are still picked up
    const tie = await addMembers(list, 3, T0 + 180_000);
    const before4 = new Set(await readdir(path.join(dir, 'out')));
    expect((await run({ pipelineFile: file, env: env(), stateDir: stateDir() })).status).toBe('succeeded');
    const [fourth] = await newFiles(path.join(dir, 'out'), before4);
    expect(parseCsv(await readFile(path.join(dir, 'out', fourth!), 'utf8')).map((r) => r.id).sort()).toEqual([...tie].sort());
  }, 60_000);
});

describe('list member export to S3', () => {
  it('uploads one gzip CSV object with every member once, and nothing before the run completes', async () => {
    const dir = await mkdtemp(path.join(tmp, 's3-'));
    const list = await createList('S3 list');
    const ids = await addMembers(list, 255, T0 + 300_000);
    const file = path.join(dir, 'export.yaml');
    await writeFile(
      file,
      pipeline('s3-export', list, `  type: s3\n  bucket: exports\n  key: lists/${list}/members.csv.gz\n  endpoint: ${s3.endpoint}\n  forcePathStyle: true`),
    );
    const report = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state') });
    expect(report.status).toBe('succeeded');
    const s3client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
    try {
      const object = await s3client.send(new GetObjectCommand({ Bucket: 'exports', Key: `lists/${list}/members.csv.gz` }));
      const body = Buffer.from(await object.Body!.transformToByteArray());
      const rows = parseCsv(gunzipSync(body).toString('utf8'));
      expect(rows).toHaveLength(255);
      expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    } finally {
      s3client.destroy();
    }
    // the local staging file is gone
    const staged = (await readdir(path.join(dir, 'state', 's3-export'))).filter((f) => f.startsWith('export-'));
    expect(staged).toEqual([]);
  }, 60_000);
});

describe('interrupted export', () => {
  it('resumes from the checkpoint, drops bytes written past it, and ends with every member exactly once', async () => {
    const dir = await mkdtemp(path.join(tmp, 'resume-'));
    const list = await createList('Resume list');
    const ids = [...(await addMembers(list, 150, T0 + 400_000)), ...(await addMembers(list, 120, T0 + 460_000))];
    const file = path.join(dir, 'export.yaml');
    const out = path.join(dir, 'out', 'members.csv.gz');
    await writeFile(file, pipeline('resume-export', list, `  type: csv\n  path: out/members.csv.gz`, 10));

    // interrupt when the first chunk (100 rows) is durably written, i.e. while a later page (of 10) is being fetched
    const controller = new AbortController();
    onRequest = () => {
      if (flushesLogged(out) >= 1 && !controller.signal.aborted) controller.abort();
    };
    let first;
    try {
      first = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state'), signal: controller.signal, drainTimeoutMs: 1000 });
    } finally {
      onRequest = undefined;
    }
    expect(first.status).toBe('interrupted');
    await expect(stat(out)).rejects.toThrow(); // not published
    const partials = partialFiles(out);
    const partial = parseCsv(gunzipSync(Buffer.concat(await Promise.all(partials.map((f) => readFile(f))))).toString('utf8'));
    expect(partial.length).toBeGreaterThanOrEqual(100);
    expect(partial.length).toBeLessThan(270);

    // what a process killed after writing a chunk but before checkpointing it leaves behind: more rows and a
    // progress line the checkpoint does not cover
    const { gzipSync } = await import('node:zlib');
    const junk = gzipSync(`${ids[0]},junk@example.com,,,,,\n`);
    for (const f of partials) {
      const size = (await stat(f)).size;
      await appendFile(f, junk);
      await appendFile(f + '.progress', `100000 ${size + junk.length}\n`);
    }

    const second = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state') });
    expect(second.status).toBe('succeeded');
    expect(second.resumed).toBe(true);
    const rows = parseCsv(gunzipSync(await readFile(out)).toString('utf8'));
    expect(rows).toHaveLength(270);
    expect(new Set(rows.map((r) => r.id)).size).toBe(270);
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(rows.some((r) => r.email === 'junk@example.com')).toBe(false);
    await expect(stat(out + '.partial')).rejects.toThrow();

    // the resumed run's watermark covers the members exported before the interruption at the same instant
    const tie = await addMembers(list, 4, T0 + 460_000);
    await rm(out);
    const third = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state') });
    expect(third.status).toBe('succeeded');
    const after = parseCsv(gunzipSync(await readFile(out)).toString('utf8'));
    expect(after.map((r) => r.id).sort()).toEqual([...tie].sort());
  }, 60_000);

  it('a resume whose partial file is gone fails clearly (CHECKPOINT_MISMATCH) instead of writing an incomplete export', async () => {
    const dir = await mkdtemp(path.join(tmp, 'lost-'));
    const list = await createList('Lost list');
    // 60 pages of 10: the reader runs at most 20 queued pages (+ 1 in flight) ahead of the writer, so requests still
    // go out after the first flush (100 rows), which is when the run is interrupted
    await addMembers(list, 600, T0 + 500_000);
    const file = path.join(dir, 'export.yaml');
    const out = path.join(dir, 'out', 'members.csv');
    await writeFile(file, pipeline('lost-export', list, `  type: csv\n  path: out/members.csv`, 10));
    const controller = new AbortController();
    onRequest = () => {
      try {
        if (flushesLogged(out) >= 1) controller.abort();
      } catch {
        /* not yet */
      }
    };
    try {
      expect((await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state'), signal: controller.signal })).status).toBe('interrupted');
    } finally {
      onRequest = undefined;
    }
    await rm(out + '.partial');
    const report = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state') });
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('CHECKPOINT_MISMATCH');
    await expect(stat(out)).rejects.toThrow();
  }, 60_000);
});
