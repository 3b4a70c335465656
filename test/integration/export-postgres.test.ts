import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, spawnCli } from '../helpers/cli.js';
import { readAll } from '../helpers/export-seed.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { client, KEY } from '../unit/emulator/client.js';

/**
 * The postgres destination through the built CLI against the real PostgreSQL server: a seeded emulator list's
 * members upserted into a table the run creates (types chosen from the values), a re-run that changes nothing leaves
 * every row version untouched, a run killed with SIGKILL and run again leaves exactly the clean run's table,
 * `--emulator` writes `<table>_emulator` and never the configured table, `check` probes the database, and the events-nightly-export example runs against the embedded emulator.
 */

const MEMBERS = 240;
const LIST = 'Pg0001';
let tmp: string;
let emu: EmulatorHandle;
let db: TestSchema;
let seedFile: string;
const held = new Map<string, string>();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-pg-'));
  db = await createTestSchema('etl_export_pg');
  const emails = Array.from({ length: MEMBERS }, (_, i) => `p${i}@example.com`);
  const profiles = emails.map((email, i) => ({ email, first_name: i % 5 === 0 ? undefined : `F\t${i}\\`, properties: { ltv: i * 1.25, vip: i % 2 === 0, prefs: { color: `c${i % 3}`, n: i } } }));
  seedFile = path.join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify({ profiles, lists: [{ id: LIST, name: 'Warehouse', members: emails }] }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, faults: { seed: 2, slowRate: 1, slowMs: 60 } });
  const { data } = await readAll(client(emu.url), `/api/lists/${LIST}/profiles?page[size]=100`);
  for (const p of data as { id: string; attributes: { email: string } }[]) held.set(p.id, p.attributes.email);
  expect(held.size).toBe(MEMBERS);
}, 60_000);

afterAll(async () => {
  await emu?.close();
  await db?.drop();
  await rm(tmp, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY, DATABASE_URL: db.url });

async function pipeline(name: string, table: string, extra = '', source = ''): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source: {type: klaviyo, list: ${LIST}, pageSize: 50${source}}
transform:
  type: export
  columns: {id: id, email: email, first_name: first_name, ltv: properties.ltv, vip: properties.vip, prefs: properties.prefs, joined: joined_group_at}
destination: {type: postgres, url: '\${DATABASE_URL}', table: ${db.name}.${table}, batchSize: 50${extra}}
`,
  );
  return file;
}

async function runOk(file: string, stateDir: string, args: string[] = []): Promise<void> {
  const r = await cli(['run', file, '--state-dir', stateDir, ...args], { env: env() });
  expect(r.code, r.stderr).toBe(0);
}

/** The table's rows, by id, as JSON (xmin: the row version). */
async function tableRows(table: string, withVersion = false): Promise<Record<string, unknown>[]> {
  const r = await db.client.query(`SELECT ${withVersion ? 'xmin::text AS xmin, ' : ''}* FROM ${db.name}.${table} ORDER BY id`);
  return r.rows as Record<string, unknown>[];
}

describe('postgres destination', () => {
  it('creates the table with types chosen from the values and upserts every member by id', async () => {
    const file = await pipeline('pg-export', 'members');
    await runOk(file, path.join(tmp, 'state-pg'));
    const types = await db.client.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'members' ORDER BY ordinal_position`,
      [db.name],
    );
    expect(types.rows.map((r) => [r.column_name, r.data_type])).toEqual([
      ['id', 'text'],
      ['email', 'text'],
      ['first_name', 'text'],
      ['ltv', 'numeric'],
      ['vip', 'boolean'],
      ['prefs', 'jsonb'],
      ['joined', 'timestamp with time zone'],
    ]);
    const rows = await tableRows('members');
    expect(new Map(rows.map((r) => [r.id, r.email]))).toEqual(held);
    for (const r of rows) {
      const i = Number(/^p(\d+)@/.exec(String(r.email))![1]);
      expect(r).toMatchObject({ first_name: i % 5 === 0 ? null : `F\t${i}\\`, ltv: String(i * 1.25), vip: i % 2 === 0, prefs: { color: `c${i % 3}`, n: i } });
      expect(r.joined).toBeInstanceOf(Date);
    }
  }, 60_000);

  it('a re-run that changes nothing leaves every row as it was (no new row versions), with either method', async () => {
    const before = await tableRows('members', true);
    for (const method of ['copy', 'insert']) {
      const file = await pipeline(`pg-rerun-${method}`, 'members', `, method: ${method}`, ', incremental: false');
      await runOk(file, path.join(tmp, `state-rerun-${method}`));
      expect(await tableRows('members', true)).toEqual(before);
    }
    // a changed value is updated (and only that row gets a new version)
    await db.client.query(`UPDATE ${db.name}.members SET vip = NOT vip WHERE email = 'p7@example.com'`);
    const changed = await tableRows('members', true);
    await runOk(await pipeline('pg-rerun-fix', 'members', '', ', incremental: false'), path.join(tmp, 'state-rerun-fix'));
    const after = await tableRows('members', true);
    expect(after.filter((r, i) => r.xmin !== changed[i]!.xmin).map((r) => r.email)).toEqual(['p7@example.com']);
    expect(after.map(({ xmin: _x, ...r }) => r)).toEqual(before.map(({ xmin: _x, ...r }) => r));
  }, 120_000);

  it('killed with SIGKILL after a batch committed and run again: exactly the clean run\'s table', async () => {
    const file = await pipeline('pg-kill', 'killed');
    const stateDir = path.join(tmp, 'state-kill');
    let kills = 0;
    for (const target of [50, 150]) {
      const child = spawnCli(['run', file, '--state-dir', stateDir], { env: env() });
      child.stdout?.resume();
      child.stderr?.resume();
      let done: number | null | undefined;
      const exited = new Promise<void>((resolve) => child.on('exit', (code) => ((done = code), resolve())));
      for (;;) {
        if (done !== undefined) break;
        const n = await db.client.query(`SELECT count(*)::int AS n FROM ${db.name}.killed`).then((r) => r.rows[0].n as number, () => 0);
        if (n >= target) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      if (done !== undefined) break;
      child.kill('SIGKILL');
      await exited;
      kills++;
    }
    expect(kills).toBeGreaterThan(0);
    await runOk(file, stateDir);
    expect(await tableRows('killed')).toEqual(await tableRows('members'));
  }, 120_000);

  it('--emulator upserts into <table>_emulator and never touches the configured table', async () => {
    const file = await pipeline('pg-emulator', 'guarded');
    const r = await cli(['run', file, '--emulator', '--emulator-seed', seedFile, '--state-dir', path.join(tmp, 'state-emu')], { env: { DATABASE_URL: db.url } });
    expect(r.code, r.stderr).toBe(0);
    expect((await db.client.query(`SELECT to_regclass('${db.name}.guarded') AS t`)).rows[0].t).toBeNull();
    expect((await tableRows('guarded_emulator')).map((row) => row.email).sort()).toEqual([...held.values()].sort());
  }, 60_000);

  it('check probes the destination database: ok for a writable table, a fix when the key has no unique index', async () => {
    const ok = await cli(['check', await pipeline('pg-check', 'members'), '--state-dir', path.join(tmp, 'state-check')], { env: env() });
    expect(ok.stdout).toMatch(new RegExp(`^ok\\s+postgres\\s+destination .*${db.name}\\.members.*exists, writable, keyed by id`, 'mi'));
    await db.client.query(`CREATE TABLE ${db.name}.unkeyed (id text, email text)`);
    const bad = await cli(['check', await pipeline('pg-check-bad', 'unkeyed'), '--state-dir', path.join(tmp, 'state-check')], { env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL\s+postgres.*no primary key or unique index on id.*→ fix: CREATE UNIQUE INDEX/);
  }, 60_000);
});

describe('example events-nightly-export.yaml', () => {
  it('runs against the embedded emulator and its seed: every event upserted into klaviyo_events_emulator', async () => {
    const url = `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${db.name}`)}`;
    const args = ['run', 'pipelines/examples/events-nightly-export.yaml', '--emulator', '--emulator-seed', 'pipelines/examples/klaviyo-export.seed.json', '--state-dir', path.join(tmp, 'state-example'), '--report', path.join(tmp, 'example-report.json')];
    const r = await cli(args, { env: { DATABASE_URL: url } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(tmp, 'example-report.json'), 'utf8')) as { rows: { loaded: number }; output: string };
    const rows = await db.client.query(`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids, count(email)::int AS emails, count(metric)::int AS metrics FROM ${db.name}.klaviyo_events_emulator`);
    expect(report.rows.loaded).toBeGreaterThan(0);
    expect(rows.rows[0]).toEqual({ n: report.rows.loaded, ids: report.rows.loaded, emails: report.rows.loaded, metrics: report.rows.loaded });
    expect(report.output).toBe('postgres:klaviyo_events_emulator');
    const types = await db.client.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'klaviyo_events_emulator' AND column_name IN ('datetime', 'properties') ORDER BY column_name`, [db.name]);
    expect(types.rows.map((t) => t.data_type)).toEqual(['timestamp with time zone', 'jsonb']);
  }, 120_000);
});
