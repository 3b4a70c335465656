/**
 * The emulator at volume: a generated account read through GET /api/events, /api/profiles and list members the
 * way an export reads it (filters, sorts, key cursors, writes between pages, ties), every answer validated against
 * the spec, and compared with what the emulator holds (/_emulator/events, /_emulator/profiles).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorOptionsFromArgs } from '../../src/cli/commands/emulator.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { loadSpecResponseValidator, type SpecResponseValidator } from '../helpers/openapi.js';
import { client, eventBody, KEY, profileBody, type ApiResponse } from '../unit/emulator/client.js';

const END = '2026-01-01T00:00:00Z';
let emu: EmulatorHandle;
let spec: SpecResponseValidator;
let raw: ReturnType<typeof client>;

/** GET through the spec: every answer must match its operation's schema. */
async function get(path: string): Promise<ApiResponse> {
  const r = await raw('GET', path);
  const check = spec.check('GET', path.split('?')[0]!, r.status, r.text);
  expect(check.errors, `${path} → ${r.status}`).toEqual([]);
  return r;
}

/** Every page of a read (following links.next), with the number of pages. */
async function readAll(path: string): Promise<{ data: Record<string, any>[]; included: Record<string, any>[]; pages: number }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const data = [];
  const included = [];
  let pages = 0;
  let next: string | undefined = path;
  while (next) {
    const r = await get(next.replace(emu.url, ''));
    expect(r.status).toBe(200);
    data.push(...r.json.data);
    included.push(...(r.json.included ?? []));
    pages++;
    next = r.json.links.next;
  }
  return { data, included, pages };
}

async function ndjson(path: string): Promise<Record<string, any>[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await fetch(`${emu.url}${path}?key=${KEY}`).then((r) => r.text());
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const q = encodeURIComponent;
/** Events in (time, id) order. */
const inOrder = (ts: { attributes: { datetime: string }; id: string }[]) => ts.every((e, i) => i === 0 || ts[i - 1]!.attributes.datetime < e.attributes.datetime || (ts[i - 1]!.attributes.datetime === e.attributes.datetime && ts[i - 1]!.id < e.id));

beforeAll(async () => {
  spec = loadSpecResponseValidator();
  emu = await startEmulator({ port: 0, limits: 'off', generate: { profiles: 1500, events: 6000, members: 400, seed: 5, end: END } });
  raw = client(emu.url);
  // the account (and its generated data) is made by its first /api request
  expect((await raw('GET', '/api/metrics')).status).toBe(200);
});
afterAll(() => emu.close());

describe('GET /api/events on a generated account', () => {
  it('reads every event the emulator holds, in (datetime, id) order, with the profile and metric included', async () => {
    const held = await ndjson('/_emulator/events');
    expect(held).toHaveLength(6000);
    const { data, included, pages } = await readAll('/api/events?page[size]=1000&include=profile,metric&fields[profile]=email');
    expect(pages).toBe(6);
    expect(data.map((e) => e.id).sort()).toEqual(held.map((e) => e.id).sort());
    expect(inOrder(data as never)).toBe(true);
    const byId = new Map(held.map((e) => [e.id, e]));
    for (const e of data.slice(0, 50)) {
      const h = byId.get(e.id)!;
      expect(e.attributes.datetime).toBe(h.time.replace('.000Z', '+00:00'));
      expect(e.relationships.profile.data.id).toBe(h.profile_id);
      expect(e.attributes.event_properties).toMatchObject(h.properties);
      expect(e.attributes.event_properties.$event_id).toBe(h.unique_id);
    }
    const emails = new Map(included.filter((x) => x.type === 'profile').map((p) => [p.id, p.attributes.email]));
    expect(emails.get(data[0]!.relationships.profile.data.id)).toBe(byId.get(data[0]!.id)!.email);
    expect(included.filter((x) => x.type === 'metric').map((m) => m.attributes.name)).toContain('Placed Order');
  });

  it('filters by a datetime range and metric_id, sorted descending, exactly what the emulator holds', async () => {
    const held = await ndjson('/_emulator/events');
    const metricId = held.find((e) => e.metric === 'Viewed Product')!.metric_id;
    const [lo, hi] = ['2025-03-01T00:00:00Z', '2025-09-01T12:00:00Z'];
    const want = held.filter((e) => e.metric_id === metricId && e.time >= '2025-03-01T00:00:00.000Z' && e.time < '2025-09-01T12:00:00.000Z');
    const filter = q(`and(equals(metric_id,"${metricId}"),greater-or-equal(datetime,${lo}),less-than(datetime,${hi}))`);
    const { data } = await readAll(`/api/events?filter=${filter}&sort=-datetime&page[size]=97&fields[event]=datetime`);
    expect(want.length).toBeGreaterThan(100);
    expect(data.map((e) => e.id).sort()).toEqual(want.map((e) => e.id).sort());
    expect(inOrder([...data].reverse() as never)).toBe(true);
    expect(Object.keys(data[0]!.attributes)).toEqual(['datetime']);
    // the timestamp filter (epoch seconds) selects the same events
    const ts = q(`equals(metric_id,"${metricId}"),greater-or-equal(timestamp,${Date.parse(lo) / 1000}),less-than(timestamp,${Date.parse(hi) / 1000})`);
    expect((await readAll(`/api/events?filter=${ts}&page[size]=1000`)).data).toHaveLength(want.length);
  });

  it('filters by profile_id (generated and stored events of the profile); a generated event reads by id', async () => {
    const held = await ndjson('/_emulator/events');
    const pid = held[100]!.profile_id as string;
    const profile = (await get(`/api/profiles/${pid}`)).json.data;
    const r = await raw('POST', '/api/events', eventBody({ time: '2025-06-01T00:00:00Z', unique_id: 'mine-1' }, { email: profile.attributes.email }, 'Viewed Product'));
    expect(r.status).toBe(202);
    // a generated event sent again (same profile, metric and unique_id) is a duplicate, ignored as Klaviyo does
    const again = held[100]!;
    const before = emu.snapshot().duplicateEventsIgnored;
    expect((await raw('POST', '/api/events', eventBody({ time: again.time, unique_id: again.unique_id }, { email: again.email }, again.metric))).status).toBe(202);
    expect(emu.snapshot().duplicateEventsIgnored).toBe(before + 1);
    const { data } = await readAll(`/api/events?filter=${q(`equals(profile_id,"${pid}")`)}`);
    expect(data).toHaveLength(held.filter((e) => e.profile_id === pid).length + 1);
    expect(data.every((e) => e.relationships.profile.data.id === pid)).toBe(true);
    expect(inOrder(data as never)).toBe(true);
    const one = await get(`/api/events/${held[100]!.id}?include=metric`);
    expect(one.json.data.id).toBe(held[100]!.id);
    expect(one.json.included[0].attributes.name).toBe(held[100]!.metric);
  });

  it('keeps a cursor valid across writes: nothing skipped or repeated, events after the cursor are seen; ties in time ordered by id', async () => {
    const first = await get('/api/events?sort=datetime&page[size]=100');
    const cursorTime = first.json.data.at(-1).attributes.datetime as string;
    const at = new Date(Date.parse(cursorTime) + 1000).toISOString();
    // three events at one second (a tie), after the cursor; one before it (not seen by this read)
    for (const email of ['tie-c@example.com', 'tie-a@example.com', 'tie-b@example.com']) {
      expect((await raw('POST', '/api/events', eventBody({ time: at, unique_id: email }, { email }, 'Tie'))).status).toBe(202);
    }
    expect((await raw('POST', '/api/events', eventBody({ time: '2024-01-01T00:00:00Z', unique_id: 'early' }, { email: 'early@example.com' }, 'Tie'))).status).toBe(202);
    const rest = await readAll(first.json.links.next.replace(emu.url, ''));
    const all = [...first.json.data, ...rest.data];
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(inOrder(all)).toBe(true);
    const held = await ndjson('/_emulator/events');
    expect(all).toHaveLength(held.length - 1);
    const ties = all.filter((e) => e.attributes.datetime === at.replace('.000Z', '+00:00'));
    expect(ties.length).toBeGreaterThanOrEqual(3);
    expect(ties.map((e) => e.id)).toEqual(ties.map((e) => e.id).sort());
  });

  it('answers 400 for what the spec does not allow: page[size] over 1000, an operator or sort outside the spec, a bad cursor', async () => {
    for (const path of [
      '/api/events?page[size]=1001',
      `/api/events?filter=${q('equals(datetime,2025-01-01T00:00:00Z)')}`,
      `/api/events?filter=${q('greater-than(metric_id,"x")')}`,
      '/api/events?sort=created',
      '/api/events?page[cursor]=nonsense',
      '/api/events?include=lists',
      '/api/events?fields[event]=name',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
    }
    const last = await get(`/api/events?page[size]=5&filter=${q('greater-than(datetime,2025-12-31T23:50:00Z)')}`);
    expect(last.status).toBe(200);
    expect(last.json.links.next).toBeUndefined();
  });
});

describe('GET /api/profiles on a generated account', () => {
  it('reads profiles updated since a time, sorted by updated, exactly what the emulator holds; an update moves a profile to the end', async () => {
    const held = await ndjson('/_emulator/profiles');
    const since = '2025-07-01T00:00:00Z';
    const want = held.filter((p) => Date.parse(p.updated) > Date.parse(since));
    const path = `/api/profiles?filter=${q(`greater-than(updated,${since})`)}&sort=updated&page[size]=100&additional-fields[profile]=subscriptions`;
    const firstPage = await get(path);
    const seen = firstPage.json.data;
    const updated = seen.map((p: { attributes: { updated: string } }) => p.attributes.updated);
    expect(updated).toEqual([...updated].sort());
    expect(seen[0].attributes.subscriptions.email.marketing.consent).toMatch(/SUBSCRIBED|NEVER_SUBSCRIBED|UNSUBSCRIBED/);
    // a profile of the first page changes: a read by updated sees it again at the end, with its new time
    const moved = seen[3];
    expect((await raw('PATCH', `/api/profiles/${moved.id}`, profileBody({ first_name: 'Moved' }, moved.id))).status).toBe(200);
    const rest = await readAll(firstPage.json.links.next.replace(emu.url, ''));
    const ids = [...seen, ...rest.data].map((p) => p.id);
    expect(new Set(ids).size).toBe(want.length);
    expect(ids.at(-1)).toBe(moved.id);
    expect(rest.data.at(-1)!.attributes.first_name).toBe('Moved');
  });

  it('sorts by created descending with a created range; default order is by id; 400 outside the spec', async () => {
    const held = await ndjson('/_emulator/profiles');
    const [lo, hi] = ['2024-06-01T00:00:00Z', '2025-01-01T00:00:00Z'];
    const want = held.filter((p) => Date.parse(p.created) > Date.parse(lo) && Date.parse(p.created) < Date.parse(hi));
    const { data } = await readAll(`/api/profiles?filter=${q(`greater-than(created,${lo}),less-than(created,${hi})`)}&sort=-created&page[size]=100&fields[profile]=created`);
    expect(data.map((p) => p.id).sort()).toEqual(want.map((p) => p.id).sort());
    const created = data.map((p) => p.attributes.created);
    expect(created).toEqual([...created].sort().reverse());
    const byId = await get('/api/profiles?page[size]=100');
    const ids = byId.json.data.map((p: { id: string }) => p.id);
    expect(ids).toEqual([...ids].sort());
    for (const path of [
      `/api/profiles?filter=${q('greater-or-equal(updated,2025-01-01T00:00:00Z)')}`,
      '/api/profiles?page[size]=101',
      '/api/profiles?sort=first_name',
      '/api/profiles?additional-fields[profile]=lists',
    ]) {
      expect((await get(path)).status, path).toBe(400);
    }
  });
});

describe('list members of a generated list', () => {
  it('pages members by joined_group_at (range, both directions) exactly as the emulator holds them', async () => {
    const lists = (await get('/api/lists')).json.data;
    expect(lists.map((l: { attributes: { name: string } }) => l.attributes.name)).toContain('Generated list');
    const id = lists.find((l: { attributes: { name: string } }) => l.attributes.name === 'Generated list').id;
    const held = (await ndjson('/_emulator/profiles')).flatMap((p) => p.lists.filter((l: { id: string }) => l.id === id).map((l: { joined_group_at: string }) => ({ id: p.id, at: l.joined_group_at })));
    expect(held).toHaveLength(400);
    const all = await readAll(`/api/lists/${id}/profiles?page[size]=100&sort=-joined_group_at&fields[profile]=joined_group_at,email`);
    expect(all.pages).toBe(4);
    expect(all.data.map((p) => p.id).sort()).toEqual(held.map((m) => m.id).sort());
    const at = all.data.map((p) => p.attributes.joined_group_at);
    expect(at).toEqual([...at].sort().reverse());
    const since = '2025-06-01T00:00:00Z';
    const range = await readAll(`/api/lists/${id}/relationships/profiles?page[size]=30&filter=${q(`greater-or-equal(joined_group_at,${since})`)}`);
    expect(range.data.map((p) => p.id).sort()).toEqual(held.filter((m) => Date.parse(m.at) >= Date.parse(since)).map((m) => m.id).sort());
    const one = all.data[7]!;
    const byEmail = await get(`/api/lists/${id}/profiles?filter=${q(`equals(email,"${one.attributes.email}")`)}`);
    expect(byEmail.json.data.map((p: { id: string }) => p.id)).toEqual([one.id]);
  });
});

describe('latency', () => {
  it('delays every answer by the fixed latency; faults slowRate still delays too', async () => {
    const slow = await startEmulator({ port: 0, limits: 'off', latency: 120 });
    const faulty = await startEmulator({ port: 0, limits: 'off', faults: { slowRate: 1, slowMs: 120 } });
    try {
      for (const url of [slow.url, faulty.url]) {
        const t = performance.now();
        const r = await client(url)('GET', '/api/lists');
        expect(r.status).toBe(200);
        expect(performance.now() - t).toBeGreaterThanOrEqual(115);
      }
    } finally {
      await slow.close();
      await faulty.close();
    }
  });
});

describe('emulator flags', () => {
  it('--generate and --latency become options; bad values are USAGE errors naming the flag', () => {
    const base = { port: 0, host: '127.0.0.1', limits: 'off' };
    expect(emulatorOptionsFromArgs({ ...base, generate: 'profiles=10,events=5,members=2,seed=9', latency: '100-200' })).toMatchObject({
      generate: { profiles: 10, events: 5, members: 2, seed: 9 },
      latency: { min: 100, max: 200 },
    });
    expect(emulatorOptionsFromArgs({ ...base, latency: '250' }).latency).toBe(250);
    expect(() => emulatorOptionsFromArgs({ ...base, generate: 'rows=10' })).toThrow(/--generate.*unknown key rows/);
    expect(() => emulatorOptionsFromArgs({ ...base, generate: 'profiles=3,members=4' })).toThrow(/--generate.*members/);
    expect(() => emulatorOptionsFromArgs({ ...base, latency: 'slow' })).toThrow(/--latency/);
  });
});

describe('generate in a seed file and a state file', () => {
  it('a seed file with generate: seeds every account; a state file keeps the options and generates the events again on load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emu-volume-'));
    const seedFile = join(dir, 'seed.json');
    const stateFile = join(dir, 'state.json');
    writeFileSync(seedFile, JSON.stringify({ generate: { profiles: 300, events: 2000, members: 50, seed: 2, end: END }, lists: [{ name: 'Own list', members: ['own@example.com'] }] }));
    const first = await startEmulator({ port: 0, limits: 'off', seedFile, stateFile });
    const call = client(first.url);
    const page = await call('GET', '/api/events?page[size]=3&sort=-datetime');
    await first.close();
    expect(first.snapshot()).toMatchObject({ profiles: 301, events: 2000, lists: [{ name: 'Generated list', members: 50 }, { name: 'Own list', members: 1 }] });
    const again = await startEmulator({ port: 0, limits: 'off', stateFile });
    try {
      const same = await client(again.url)('GET', '/api/events?page[size]=3&sort=-datetime');
      const strip = (data: { id: string; attributes: unknown }[]) => data.map((e) => [e.id, e.attributes]);
      expect(strip(same.json.data)).toEqual(strip(page.json.data));
      expect(again.snapshot()).toMatchObject({ profiles: 301, events: 2000 });
    } finally {
      await again.close();
    }
    writeFileSync(seedFile, JSON.stringify({ generate: { profiles: 3, members: 4 } }));
    await expect(startEmulator({ port: 0, seedFile })).rejects.toThrow(/generate.*members must not exceed profiles/);
  });
});
