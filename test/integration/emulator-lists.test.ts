import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { client, getJson, KEY, profileBody } from '../unit/emulator/client.js';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
let t = T0;
let emu: EmulatorHandle;
let call: ReturnType<typeof client>;
const f = (s: string) => encodeURIComponent(s);
const listBody = (name: string, opt?: string) => ({ data: { type: 'list', attributes: { name, ...(opt ? { opt_in_process: opt } : {}) } } });

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emu-lists-'));
  const seedFile = join(dir, 'seed.json');
  writeFileSync(seedFile, JSON.stringify({ lists: [{ id: 'Seeded', name: 'Seeded list', members: ['m1@example.com'] }], segments: [{ id: 'Seg001', name: 'Engaged', members: ['g1@example.com', 'g2@example.com', 'g3@example.com'] }] }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, now: () => t });
  call = client(emu.url);
});
afterAll(() => emu.close());

async function newProfile(email: string, phone?: string): Promise<string> {
  const r = await call('POST', '/api/profiles', profileBody({ email, ...(phone ? { phone_number: phone } : {}) }));
  expect(r.status).toBe(201);
  return r.json.data.id;
}

describe('lists', () => {
  it('POST /api/lists creates a list (201) with opt_in_process; GET /api/lists/{id} with profile_count', async () => {
    const r = await call('POST', '/api/lists', listBody('Weekly', 'double_opt_in'));
    expect(r.status).toBe(201);
    expect(r.json.data).toMatchObject({ type: 'list', attributes: { name: 'Weekly', opt_in_process: 'double_opt_in' } });
    expect(r.json.data.id).toMatch(/^[A-Za-z0-9]{6}$/);
    const g = await call('GET', `/api/lists/${r.json.data.id}?additional-fields[list]=profile_count`);
    expect(g.json.data.attributes).toMatchObject({ name: 'Weekly', profile_count: 0 });
    const seeded = await call('GET', '/api/lists/Seeded?additional-fields[list]=profile_count');
    expect(seeded.json.data.attributes.profile_count).toBe(1);
  });

  it('GET /api/lists pages by 10 (max 10) with links.next, filters name/id/created and sorts', async () => {
    for (let i = 0; i < 12; i++) {
      t += 1000;
      await call('POST', '/api/lists', listBody(`Bulk ${String(i).padStart(2, '0')}`));
    }
    const first = await call('GET', '/api/lists');
    expect(first.json.data).toHaveLength(10);
    expect(first.json.links.next).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/lists\/\?page%5Bcursor%5D=/);
    const second = await call('GET', first.json.links.next.slice(emu.url.length));
    expect(second.json.data.length).toBeGreaterThan(0);
    expect(second.json.data.map((l: { id: string }) => l.id)).not.toContain(first.json.data[0].id);
    const byName = await call('GET', `/api/lists?filter=${f('any(name,["Bulk 03","Bulk 07"])')}&sort=-name`);
    expect(byName.json.data.map((l: { attributes: { name: string } }) => l.attributes.name)).toEqual(['Bulk 07', 'Bulk 03']);
    const recent = await call('GET', `/api/lists?filter=${f(`greater-than(created,${new Date(T0 + 10_500).toISOString()})`)}`);
    expect(recent.json.data.map((l: { attributes: { name: string } }) => l.attributes.name)).toEqual(['Bulk 10', 'Bulk 11']);
    const bad = await call('GET', `/api/lists?filter=${f('contains(name,"x")')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ parameter: 'filter' });
  });

  it('members: add/remove by id (204, idempotent), joined_group_at, filters, sort and cursor paging', async () => {
    const list = (await call('POST', '/api/lists', listBody('Members'))).json.data.id;
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await newProfile(`mem${i}@example.com`, i === 3 ? '+14155552671' : undefined));
    // join in three waves at known times
    const wave = async (slice: string[], at: number) => {
      t = at;
      const r = await call('POST', `/api/lists/${list}/relationships/profiles`, { data: slice.map((id) => ({ type: 'profile', id })) });
      expect(r.status).toBe(204);
      expect(r.text).toBe('');
    };
    await wave(ids.slice(0, 10), T0 + 100_000);
    await wave(ids.slice(10, 20), T0 + 200_000);
    await wave(ids.slice(20), T0 + 300_000);
    await wave(ids.slice(0, 2), T0 + 400_000); // re-adding keeps the first joined_group_at

    const seen: string[] = [];
    let path: string | null = `/api/lists/${list}/profiles?page[size]=10`;
    while (path) {
      const r = await call('GET', path);
      expect(r.status).toBe(200);
      for (const p of r.json.data) {
        expect(p.attributes.joined_group_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
        seen.push(p.id);
      }
      path = r.json.links.next ? r.json.links.next.slice(emu.url.length) : null;
    }
    expect(seen).toEqual(ids);
    const first = await call('GET', `/api/lists/${list}/profiles?page[size]=1`);
    expect(first.json.data[0].attributes.joined_group_at).toBe(new Date(T0 + 100_000).toISOString().replace('Z', '000+00:00'));

    const mid = await call('GET', `/api/lists/${list}/profiles?page[size]=100&filter=${f(`greater-or-equal(joined_group_at,${new Date(T0 + 200_000).toISOString()}),less-than(joined_group_at,${new Date(T0 + 300_000).toISOString()})`)}`);
    expect(mid.json.data.map((p: { id: string }) => p.id)).toEqual(ids.slice(10, 20));
    const gt = await call('GET', `/api/lists/${list}/relationships/profiles?page[size]=100&filter=${f(`greater-than(joined_group_at,${new Date(T0 + 200_000).toISOString()})`)}`);
    expect(gt.json.data).toEqual(ids.slice(20).map((id) => ({ type: 'profile', id })));
    const le = await call('GET', `/api/lists/${list}/relationships/profiles?page[size]=100&filter=${f(`less-or-equal(joined_group_at,${new Date(T0 + 100_000).toISOString()})`)}`);
    expect(le.json.data).toHaveLength(10);
    const desc = await call('GET', `/api/lists/${list}/profiles?sort=-joined_group_at&page[size]=5&fields[profile]=email`);
    expect(desc.json.data.map((p: { id: string }) => p.id)).toEqual(ids.slice(20).reverse());
    // joined_group_at is a sparse field of its own: left out by a fieldset that does not name it, kept by one that does
    expect(Object.keys(desc.json.data[0].attributes).sort()).toEqual(['email']);
    const named = await call('GET', `/api/lists/${list}/profiles?sort=-joined_group_at&page[size]=5&fields[profile]=email,joined_group_at`);
    expect(Object.keys(named.json.data[0].attributes).sort()).toEqual(['email', 'joined_group_at']);
    const byEmail = await call('GET', `/api/lists/${list}/profiles?filter=${f('any(email,["MEM4@example.com","mem5@example.com","other@example.com"])')}`);
    expect(byEmail.json.data.map((p: { id: string }) => p.id)).toEqual([ids[4], ids[5]]);
    const byPhone = await call('GET', `/api/lists/${list}/profiles?filter=${f('equals(phone_number,"+14155552671")')}`);
    expect(byPhone.json.data.map((p: { id: string }) => p.id)).toEqual([ids[3]]);

    const del = await call('DELETE', `/api/lists/${list}/relationships/profiles`, { data: ids.slice(0, 5).map((id) => ({ type: 'profile', id })) });
    expect(del.status).toBe(204);
    const again = await call('DELETE', `/api/lists/${list}/relationships/profiles`, { data: [{ type: 'profile', id: ids[0] }] });
    expect(again.status).toBe(204);
    const state = await getJson(`${emu.url}/_emulator/state?key=${KEY}`);
    expect(state.lists.find((l: { id: string }) => l.id === list)).toEqual({ id: list, name: 'Members', members: 20 });
    const ndjson = await (await fetch(`${emu.url}/_emulator/profiles?key=${KEY}`)).text();
    const line = ndjson.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((p: { id: string }) => p.id === ids[10]);
    expect(line.lists.map((l: { id: string }) => l.id)).toContain(list);
  });

  it('adding to a list does not change consent; unknown profile ids → 400 Invalid profile IDs and nothing added', async () => {
    const list = (await call('POST', '/api/lists', listBody('NoConsent'))).json.data.id;
    const id = await newProfile('noconsent@example.com');
    await call('POST', `/api/lists/${list}/relationships/profiles`, { data: [{ type: 'profile', id }] });
    const m = await call('GET', `/api/lists/${list}/profiles?additional-fields[profile]=subscriptions`);
    expect(m.json.data[0].attributes.subscriptions.email.marketing).toMatchObject({ consent: 'NEVER_SUBSCRIBED', can_receive_email_marketing: false });
    const r = await call('POST', `/api/lists/${list}/relationships/profiles`, { data: [{ type: 'profile', id }, { type: 'profile', id: '01ZZZZZZZZZZZZZZZZZZZZZZZZ' }] });
    expect(r.status).toBe(400);
    expect(r.json.errors[0]).toMatchObject({ code: 'invalid', detail: "Invalid profile IDs: {'01ZZZZZZZZZZZZZZZZZZZZZZZZ'}", source: { pointer: '/data/' } });
    const after = await call('GET', `/api/lists/${list}/relationships/profiles`);
    expect(after.json.data.map((p: { id: string }) => p.id)).toEqual([id]);
    const missing = await call('GET', '/api/lists/XXXXXX/profiles');
    expect(missing.status).toBe(404);
  });
});

describe('segments (from the seed file)', () => {
  it('GET /api/segments, /api/segments/{id}, members with profile_id filter', async () => {
    const all = await call('GET', '/api/segments');
    expect(all.json.data).toEqual([expect.objectContaining({ type: 'segment', id: 'Seg001', attributes: expect.objectContaining({ name: 'Engaged', is_active: true }) })]);
    const one = await call('GET', '/api/segments/Seg001?additional-fields[segment]=profile_count');
    expect(one.json.data.attributes.profile_count).toBe(3);
    const members = await call('GET', '/api/segments/Seg001/profiles');
    expect(members.json.data.map((p: { attributes: { email: string } }) => p.attributes.email)).toEqual(['g1@example.com', 'g2@example.com', 'g3@example.com']);
    const pid = members.json.data[1].id;
    const filtered = await call('GET', `/api/segments/Seg001/profiles?filter=${f(`equals(profile_id,"${pid}")`)}`);
    expect(filtered.json.data.map((p: { id: string }) => p.id)).toEqual([pid]);
    const byList = await call('GET', `/api/lists/Seeded/profiles?filter=${f(`equals(profile_id,"${pid}")`)}`);
    expect(byList.status).toBe(400);
    const state = await getJson(`${emu.url}/_emulator/state?key=${KEY}`);
    expect(state.segments).toEqual([{ id: 'Seg001', name: 'Engaged', members: 3 }]);
  });
});

describe('POST /api/lists daily cap', () => {
  it('150 lists per day, then 429 until the next UTC day (counted as throttled)', async () => {
    let now = Date.UTC(2026, 2, 1, 8, 0, 0);
    const capped = await startEmulator({ port: 0, limits: 'klaviyo', now: () => now });
    try {
      const c = client(capped.url);
      for (let i = 0; i < 150; i++) {
        now += 61_000; // stay clear of the burst and steady windows
        const r = await c('POST', '/api/lists', listBody(`L${i}`));
        expect(r.status).toBe(201);
      }
      now += 61_000;
      const over = await c('POST', '/api/lists', listBody('one too many'));
      expect(over.status).toBe(429);
      expect(over.json.errors[0].code).toBe('throttled');
      const toMidnight = Math.ceil((Date.UTC(2026, 2, 2) - now) / 1000);
      expect(Number(over.headers.get('retry-after'))).toBe(toMidnight);
      const other = await c('GET', '/api/lists');
      expect(other.status).toBe(200);
      now = Date.UTC(2026, 2, 2, 0, 0, 1);
      expect((await c('POST', '/api/lists', listBody('next day'))).status).toBe(201);
      const state = await getJson(`${capped.url}/_emulator/state?key=${KEY}`);
      expect(state.lists).toHaveLength(151);
      expect(state.requests.throttled).toBe(1);
    } finally {
      await capped.close();
    }
  });
});
