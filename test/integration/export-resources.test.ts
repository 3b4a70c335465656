import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { run } from '../../src/runner/index.js';
import { allEvents, METRICS, readAll, seedEvents, type SeededEvent } from '../helpers/export-seed.js';
import { client, KEY, profileBody } from '../unit/emulator/client.js';

/**
 * `resource:` events, profiles and the catalog (lists, segments, metrics) exported from a seeded emulator to CSV
 * through the runner: each export holds what the emulator holds (ids and fields; order-insensitive
 * where the resource promises no order), one cursor and several ranges at once publish the same file (the ranges'
 * parts joined in time order),
 * and incremental runs export exactly what changed (events sharing the watermark's second, a backfilled event
 * within `lookback`, profiles updated since the last run).
 */

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const DAY = 86_400_000;
let t = T0 + 40 * DAY;
let emu: EmulatorHandle;
let tmp: string;
let call: ReturnType<typeof client>;
let truth: SeededEvent[];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-res-'));
  emu = await startEmulator({ port: 0, limits: 'off', now: () => t });
  call = client(emu.url);
  // 1,500 events over 15 days (one per 15 min, every 5th sharing the previous one's second), 120 profiles
  // created at two emulator times
  await seedEvents(call, { count: 1500, profiles: 120, start: T0, stepMs: 15 * 60_000, setNow: (b) => (t = T0 + 40 * DAY + b * 60_000) });
  truth = await allEvents(call);
  expect(truth).toHaveLength(1500);
}, 60_000);

afterAll(async () => {
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

type Row = Record<string, string>;

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY });

/** Run `source` into a CSV with `columns`; the rows of the file this run published. */
async function exportRows(name: string, source: string, columns: Record<string, string>, dir?: string): Promise<{ rows: Row[]; report: Awaited<ReturnType<typeof run>> }> {
  const base = dir ?? (await mkdtemp(path.join(tmp, `${name}-`)));
  const file = path.join(base, 'export.yaml');
  const cols = Object.entries(columns).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join('\n');
  await writeFile(file, `version: 1\nname: ${name}\nsource: ${source}\ntransform:\n  type: export\n  columns:\n${cols}\ndestination: {type: csv, path: "out/{runId}.csv"}\n`);
  const report = await run({ pipelineFile: file, env: env(), stateDir: path.join(base, 'state') });
  expect(report.status, JSON.stringify(report.error)).toBe('succeeded');
  const out = path.join(base, 'out', `${report.runId}.csv`);
  const rows = parse(await readFile(out, 'utf8'), { columns: true }) as Row[];
  return { rows, report };
}

const EVENT_COLUMNS = { id: 'id', datetime: 'datetime', metric: 'metric.name', email: 'profile.email', value: 'event_properties.value', metric_id: 'metric.id' };

function asTruth(rows: Row[]): SeededEvent[] {
  return rows.map((r) => ({ id: r.id!, datetime: r.datetime!, metric: r.metric!, email: r.email!, value: Number(r.value) }));
}

const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((a, b) => (a.id < b.id ? -1 : 1));

describe('events', () => {
  it('every event with its profile email and metric name; one cursor and 6 ranges at once give the same rows', async () => {
    const one = await exportRows('events-one', '{type: klaviyo, resource: events, include: [profile, metric], pageSize: 100, concurrency: 1, incremental: false}', EVENT_COLUMNS);
    expect(byId(asTruth(one.rows))).toEqual(byId(truth));
    // one cursor: in time order
    const times = one.rows.map((r) => Date.parse(r.datetime!));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const many = await exportRows('events-many', '{type: klaviyo, resource: events, include: [profile, metric], pageSize: 100, concurrency: 6, incremental: false}', EVENT_COLUMNS);
    expect(many.rows).toHaveLength(1500);
    // the ranges' parts are published joined in time order: the same file as one cursor's
    expect(many.rows).toEqual(one.rows);
    // 15 pages + first/last for one cursor; split ranges re-read at most a page boundary's ties
    expect(one.report.requests.byEndpoint['GET /api/events']).toBe(17);
    expect(many.report.requests.byEndpoint['GET /api/events']).toBeGreaterThanOrEqual(17);
  }, 60_000);

  it('metrics by name or id; since/until bound the time', async () => {
    const metrics = (await readAll(call, '/api/metrics')).data;
    const viewed = metrics.find((m) => m.attributes.name === 'Viewed Product')!.id as string;
    const since = new Date(T0 + 2 * DAY).toISOString();
    const until = new Date(T0 + 5 * DAY).toISOString();
    const { rows } = await exportRows(
      'events-metrics',
      `{type: klaviyo, resource: events, metrics: ['Placed Order', ${viewed}], include: [metric], since: '${since}', until: '${until}', concurrency: 4, pageSize: 50}`,
      { id: 'id', metric: 'metric.name', datetime: 'datetime' },
    );
    const expected = truth.filter((e) => (e.metric === 'Placed Order' || e.metric === 'Viewed Product') && Date.parse(e.datetime) >= T0 + 2 * DAY && Date.parse(e.datetime) < T0 + 5 * DAY);
    expect(expected.length).toBeGreaterThan(100);
    expect(rows.map((r) => r.id).sort()).toEqual(expected.map((e) => e.id).sort());
    expect(new Set(rows.map((r) => r.metric))).toEqual(new Set(['Placed Order', 'Viewed Product']));
  }, 60_000);

  it('run --since/--until bound one run and leave the watermark alone', async () => {
    const dir = await mkdtemp(path.join(tmp, 'events-bounded-'));
    const file = path.join(dir, 'export.yaml');
    await writeFile(file, 'version: 1\nname: bounded\nsource: {type: klaviyo, resource: events, concurrency: 3, pageSize: 50}\ntransform: {type: export, columns: {id: id}}\ndestination: {type: csv, path: "out/{runId}.csv"}\n');
    const since = new Date(T0 + 3 * DAY).toISOString();
    const until = new Date(T0 + 4 * DAY).toISOString();
    const report = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state'), since, until });
    expect(report.status).toBe('succeeded');
    const rows = parse(await readFile(path.join(dir, 'out', `${report.runId}.csv`), 'utf8'), { columns: true }) as Row[];
    const expected = truth.filter((e) => Date.parse(e.datetime) >= T0 + 3 * DAY && Date.parse(e.datetime) < T0 + 4 * DAY);
    expect(expected.length).toBeGreaterThan(50);
    expect(rows.map((r) => r.id).sort()).toEqual(expected.map((e) => e.id).sort());
    // no watermark stored: the next (unbounded) run exports everything
    const next = await run({ pipelineFile: file, env: env(), stateDir: path.join(dir, 'state') });
    expect(next.rows.read).toBe(truth.length);
  }, 60_000);

  it('incremental: the next run exports the events after the watermark, those sharing its second, and a late one within lookback', async () => {
    const dir = await mkdtemp(path.join(tmp, 'events-inc-'));
    const source = '{type: klaviyo, resource: events, pageSize: 200, concurrency: 3}';
    const first = await exportRows('events-inc', source, { id: 'id', datetime: 'datetime' }, dir);
    expect(first.rows.map((r) => r.id).sort()).toEqual(truth.map((e) => e.id).sort());
    const lastTime = Math.max(...truth.map((e) => Date.parse(e.datetime)));
    // 3 at the last exported second, 20 later ones, and one sent late with a time 2 hours back
    const before = new Set(truth.map((e) => e.id));
    await seedEvents(call, { count: 3, profiles: 120, start: lastTime, stepMs: 0, offset: 5000 });
    await seedEvents(call, { count: 20, profiles: 120, start: lastTime + 60_000, stepMs: 60_000, offset: 6000 });
    await seedEvents(call, { count: 1, profiles: 120, start: lastTime - 2 * 3_600_000, stepMs: 0, offset: 7000 });
    const now = await allEvents(call);
    const added = now.filter((e) => !before.has(e.id));
    expect(added).toHaveLength(24);
    const late = added.find((e) => e.value === 7000)!;
    const second = await exportRows('events-inc', source, { id: 'id', datetime: 'datetime' }, dir);
    // without lookback: the late event (older than the watermark) is not seen
    expect(second.rows.map((r) => r.id).sort()).toEqual(added.filter((e) => e !== late).map((e) => e.id).sort());
    // with lookback 3h: the late event and everything in the 3 hours before the watermark again
    const third = await exportRows('events-inc', '{type: klaviyo, resource: events, pageSize: 200, concurrency: 3, lookback: 3h}', { id: 'id', datetime: 'datetime' }, dir);
    const newest = Math.max(...now.map((e) => Date.parse(e.datetime)));
    const window = now.filter((e) => Date.parse(e.datetime) >= newest - 3 * 3_600_000);
    expect(third.rows.map((r) => r.id).sort()).toEqual(window.map((e) => e.id).sort());
    expect(third.rows.map((r) => r.id)).toContain(late.id);
    truth = now;
  }, 60_000);
});

describe('profiles', () => {
  it('all profiles with consent; the next run exactly those updated or created since', async () => {
    const dir = await mkdtemp(path.join(tmp, 'profiles-'));
    const source = '{type: klaviyo, resource: profiles, subscriptions: true, concurrency: 4, pageSize: 20}';
    const columns = { id: 'id', email: 'email', first_name: 'first_name', updated: 'updated', consent: 'subscriptions.email.marketing.consent' };
    const held = (await readAll(call, '/api/profiles?page[size]=100')).data;
    expect(held).toHaveLength(120);
    const first = await exportRows('profiles', source, columns, dir);
    expect(first.rows.map((r) => r.id).sort()).toEqual(held.map((p) => p.id as string).sort());
    const one = first.rows.find((r) => r.email === 'e7@example.com')!;
    expect(one).toMatchObject({ first_name: 'First 7', consent: 'NEVER_SUBSCRIBED' });

    t += 3_600_000;
    const changed = held.slice(10, 15).map((p) => p.id as string);
    for (const id of changed) expect((await call('PATCH', `/api/profiles/${id}`, profileBody({ last_name: 'Changed' }, id))).status).toBe(200);
    const created = await call('POST', '/api/profiles', profileBody({ email: 'new-profile@example.com' }));
    expect(created.status).toBe(201);
    const second = await exportRows('profiles', source, columns, dir);
    expect(second.rows.map((r) => r.id).sort()).toEqual([...changed, created.json.data.id as string].sort());
  }, 60_000);

  it('only the fields asked for; by created', async () => {
    const { rows } = await exportRows('profiles-fields', '{type: klaviyo, resource: profiles, by: created, fields: [email], incremental: false}', { id: 'id', email: 'email', first_name: 'first_name', created: 'created' });
    expect(rows.length).toBeGreaterThanOrEqual(121);
    expect(rows.every((r) => r.first_name === '' && r.email !== '' && r.created !== '')).toBe(true);
  }, 60_000);
});

describe('catalog', () => {
  it('lists, segments and metrics: every one the emulator holds, with its id and name', async () => {
    for (const name of ['Alpha', 'Beta', 'Gamma']) expect((await call('POST', '/api/lists', { data: { type: 'list', attributes: { name } } })).status).toBe(201);
    for (const resource of ['lists', 'segments', 'metrics'] as const) {
      const held = (await readAll(call, `/api/${resource}`)).data;
      const { rows } = await exportRows(`catalog-${resource}`, `{type: klaviyo, resource: ${resource}}`, { id: 'id', name: 'name' });
      expect(rows.map((r) => `${r.id} ${r.name}`).sort()).toEqual(held.map((x) => `${x.id} ${x.attributes.name}`).sort());
      if (resource === 'metrics') expect(rows.map((r) => r.name).sort()).toEqual([...METRICS].sort());
      if (resource === 'lists') expect(rows).toHaveLength(3);
    }
  }, 60_000);

  it('lists incrementally: a second run exports only the list created since', async () => {
    const dir = await mkdtemp(path.join(tmp, 'lists-inc-'));
    await exportRows('lists-inc', '{type: klaviyo, resource: lists}', { id: 'id', name: 'name' }, dir);
    t += 60_000;
    const r = await call('POST', '/api/lists', { data: { type: 'list', attributes: { name: 'Delta' } } });
    const second = await exportRows('lists-inc', '{type: klaviyo, resource: lists}', { id: 'id', name: 'name' }, dir);
    expect(second.rows.map((x) => x.id)).toEqual([r.json.data.id]);
    expect(await readdir(path.join(dir, 'out'))).toHaveLength(2);
  }, 60_000);
});
