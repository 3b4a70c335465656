import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createS3Client } from '../../src/s3/client.js';
import { cli, spawnCli } from '../helpers/cli.js';
import { flushesLogged } from '../helpers/export-progress.js';
import { readAll } from '../helpers/export-seed.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';
import { client, KEY } from '../unit/emulator/client.js';

/**
 * Exports of a seeded emulator list's members through the built CLI into the ndjson destination (gzip) and into
 * s3rver as NDJSON: every member the emulator holds, with its fields and JSON types; and an NDJSON export killed
 * with SIGKILL after a chunk reached the partial file, then run again, publishes exactly the clean run's bytes.
 */

const MEMBERS = 300;
const LIST = 'Dest01';
let tmp: string;
let emu: EmulatorHandle;
let s3: TestS3;
/** The emulator's members of LIST: id → email. */
const held = new Map<string, string>();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-dest-'));
  const emails = Array.from({ length: MEMBERS }, (_, i) => `d${i}@example.com`);
  const profiles = emails.map((email, i) => ({ email, first_name: i % 7 === 0 ? undefined : `F${i}`, properties: { ltv: i * 1.5, vip: i % 2 === 0, prefs: { color: `c${i % 3}` } } }));
  const seedFile = path.join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify({ profiles, lists: [{ id: LIST, name: 'Destinations', members: emails }] }));
  // every answer slowed a little, so a kill lands while a later page is in flight
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, faults: { seed: 1, slowRate: 1, slowMs: 60 } });
  s3 = await startS3rver(['exports']);
  const { data } = await readAll(client(emu.url), `/api/lists/${LIST}/profiles?page[size]=100`);
  for (const p of data as { id: string; attributes: { email: string } }[]) held.set(p.id, p.attributes.email);
  expect(held.size).toBe(MEMBERS);
}, 60_000);

afterAll(async () => {
  await emu?.close();
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY, ...s3.env });

async function pipeline(name: string, destination: string): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source: {type: klaviyo, list: ${LIST}, pageSize: 50}
transform:
  type: export
  columns: {id: id, email: email, first_name: first_name, ltv: properties.ltv, vip: properties.vip, color: properties.prefs.color, joined: joined_group_at}
destination: ${destination}
`,
  );
  return file;
}

type Row = { id: string; email: string; first_name: string | null; ltv: number; vip: boolean; color: string; joined: string };

function ndjson(text: string): Row[] {
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as Row);
}

/** Every member the emulator holds, exactly once, with JSON types kept. */
function expectMembers(rows: Row[]): void {
  expect(rows).toHaveLength(MEMBERS);
  expect(new Map(rows.map((r) => [r.id, r.email]))).toEqual(held);
  for (const r of rows) {
    const i = Number(/^d(\d+)@/.exec(r.email)![1]);
    expect(r).toMatchObject({ ltv: i * 1.5, vip: i % 2 === 0, color: `c${i % 3}`, first_name: i % 7 === 0 ? null : `F${i}` });
    expect(Object.keys(r)).toEqual(['id', 'email', 'first_name', 'ltv', 'vip', 'color', 'joined']);
  }
}

async function runOk(file: string, stateDir: string): Promise<void> {
  const r = await cli(['run', file, '--state-dir', stateDir], { env: env() });
  expect(r.code, r.stderr).toBe(0);
}

describe('ndjson destination', () => {
  it('exports every member as one JSON object per line, gzip-compressed, published atomically', async () => {
    const file = await pipeline('ndjson-export', '{type: ndjson, path: out/members.ndjson.gz}');
    await runOk(file, path.join(tmp, 'state-ndjson'));
    expect(await readdir(path.join(tmp, 'out'))).toEqual(['members.ndjson.gz']);
    expectMembers(ndjson(gunzipSync(await readFile(path.join(tmp, 'out', 'members.ndjson.gz'))).toString('utf8')));
  }, 60_000);
});

describe('s3 destination, format ndjson', () => {
  it('uploads one NDJSON object to s3rver with every member', async () => {
    const file = await pipeline('s3-ndjson-export', `{type: s3, format: ndjson, bucket: exports, key: 'members/{date}.ndjson', endpoint: '${s3.endpoint}', forcePathStyle: true}`);
    await runOk(file, path.join(tmp, 'state-s3'));
    const s3c = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
    try {
      const key = `members/${new Date().toISOString().slice(0, 10)}.ndjson`;
      const got = await s3c.send(new GetObjectCommand({ Bucket: 'exports', Key: key }));
      expect(got.ContentType).toBe('application/x-ndjson');
      expectMembers(ndjson(await got.Body!.transformToString()));
    } finally {
      s3c.destroy();
    }
  }, 60_000);
});


/**
 * Run `file` with the built CLI, SIGKILL it once `reached(target)` holds, for each target in turn (a run that ends
 * first is not killed); returns how many runs were killed.
 */
async function killAt(file: string, stateDir: string, targets: number[], reached: (target: number) => boolean): Promise<number> {
  let kills = 0;
  for (const target of targets) {
    const child = spawnCli(['run', file, '--state-dir', stateDir], { env: env() });
    child.stdout?.resume();
    child.stderr?.resume();
    let done: number | null | undefined;
    const exited = new Promise<void>((resolve) =>
      child.on('exit', (code) => {
        done = code;
        resolve();
      }),
    );
    while (done === undefined && !reached(target)) await new Promise((r) => setTimeout(r, 5));
    if (done !== undefined) break;
    child.kill('SIGKILL');
    await exited;
    kills++;
  }
  return kills;
}

describe('ndjson export killed with SIGKILL', () => {
  it('is resumed by running it again and publishes exactly the bytes of a clean run', async () => {
    const cleanFile = await pipeline('ndjson-clean', '{type: ndjson, path: kill/clean.ndjson}');
    await runOk(cleanFile, path.join(tmp, 'state-clean'));
    const file = await pipeline('ndjson-kill', '{type: ndjson, path: kill/killed.ndjson}');
    const out = path.join(tmp, 'kill', 'killed.ndjson');
    const stateDir = path.join(tmp, 'state-kill');
    // each chunk is 100 rows (two 50-member pages): kill after the 1st and the 2nd chunk
    const kills = await killAt(file, stateDir, [1, 2], (n) => flushesLogged(out) >= n);
    expect(kills).toBeGreaterThan(0);
    await runOk(file, stateDir);
    const clean = await readFile(path.join(tmp, 'kill', 'clean.ndjson'), 'utf8');
    expect(await readFile(out, 'utf8')).toBe(clean);
    expectMembers(ndjson(clean));
    expect((await readdir(path.join(tmp, 'kill'))).sort()).toEqual(['clean.ndjson', 'killed.ndjson']);
  }, 120_000);
});
