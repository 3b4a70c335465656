import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { client, profileBody } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let call: ReturnType<typeof client>;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const f = (expr: string) => encodeURIComponent(expr);

beforeAll(async () => {
  emu = await startEmulator({ port: 0, limits: 'off' });
  call = client(emu.url);
});
afterAll(() => emu.close());

describe('POST /api/profiles', () => {
  it('creates a profile (201) with a ULID id and all attributes', async () => {
    const r = await call('POST', '/api/profiles', profileBody({ email: 'A@Example.com', phone_number: '+14155552671', first_name: 'Ann', properties: { tier: 'gold' } }));
    expect(r.status).toBe(201);
    expect(r.json.data.type).toBe('profile');
    expect(r.json.data.id).toMatch(ULID);
    expect(r.json.data.attributes).toMatchObject({ email: 'A@Example.com', phone_number: '+14155552671', first_name: 'Ann', last_name: null, properties: { tier: 'gold' } });
    expect(r.json.data.links.self).toContain(`/api/profiles/${r.json.data.id}`);
  });

  it('409 duplicate_profile with meta.duplicate_profile_id for an existing identifier (email case-insensitive)', async () => {
    const first = await call('POST', '/api/profiles', profileBody({ external_id: 'crm-dup' }));
    const r = await call('POST', '/api/profiles', profileBody({ external_id: 'crm-dup', first_name: 'B' }));
    expect(r.status).toBe(409);
    expect(r.json.errors[0]).toMatchObject({ code: 'duplicate_profile', source: { pointer: '/data/attributes' }, meta: { duplicate_profile_id: first.json.data.id } });
    const byEmail = await call('POST', '/api/profiles', profileBody({ email: 'a@example.COM' }));
    expect(byEmail.status).toBe(409);
  });

  it('400 invalid with one pointer per bad field and Klaviyo messages', async () => {
    const r = await call('POST', '/api/profiles', profileBody({ email: 'not-an-email', phone_number: '555-1234', first_name: 7, bogus: 1 }));
    expect(r.status).toBe(400);
    const byPointer = Object.fromEntries(r.json.errors.map((e: { source: { pointer: string }; detail: string }) => [e.source.pointer, e.detail]));
    expect(byPointer['/data/attributes/email']).toBe('Invalid email address');
    expect(byPointer['/data/attributes/phone_number']).toBe('Invalid phone number format (Example of a valid format: +12345678901)');
    expect(byPointer['/data/attributes/first_name']).toBeDefined();
    expect(byPointer['/data/attributes/bogus']).toBeDefined();
    for (const e of r.json.errors) expect(e).toMatchObject({ status: 400, code: 'invalid', title: 'Invalid input.' });
  });

  it('rejects a wrong type, a missing identifier and a profile over 100 KB', async () => {
    const t = await call('POST', '/api/profiles', { data: { type: 'event', attributes: { email: 'x@example.com' } } });
    expect(t.json.errors[0].source.pointer).toBe('/data/type');
    const noId = await call('POST', '/api/profiles', profileBody({ first_name: 'Nobody' }));
    expect(noId.status).toBe(400);
    expect(noId.json.errors[0].source.pointer).toBe('/data/attributes');
    const big = await call('POST', '/api/profiles', profileBody({ email: 'big@example.com', properties: { a: 'x'.repeat(60_000), b: 'y'.repeat(60_000) } }));
    expect(big.status).toBe(400);
    const longString = await call('POST', '/api/profiles', profileBody({ email: 'long@example.com', properties: { a: 'x'.repeat(110_000) } }));
    expect(longString.status).toBe(400);
    expect(longString.json.errors[0].source.pointer).toBe('/data/attributes/properties/a');
  });
});

describe('POST /api/profile-import (upsert)', () => {
  it('201 when created, 200 when updated, null clears a field', async () => {
    const a = await call('POST', '/api/profile-import', profileBody({ email: 'up@example.com', first_name: 'Up', properties: { a: 1, b: 2 } }));
    expect(a.status).toBe(201);
    const b = await call('POST', '/api/profile-import', profileBody({ email: 'up@example.com', first_name: null, last_name: 'Dated', properties: { a: null, c: 3 } }));
    expect(b.status).toBe(200);
    expect(b.json.data.id).toBe(a.json.data.id);
    expect(b.json.data.attributes).toMatchObject({ first_name: null, last_name: 'Dated', properties: { b: 2, c: 3 } });
    expect(b.json.data.attributes.properties).not.toHaveProperty('a');
  });

  it('matches by phone_number or external_id and adds new identifiers', async () => {
    const a = await call('POST', '/api/profile-import', profileBody({ external_id: 'ext-77' }));
    const b = await call('POST', '/api/profile-import', profileBody({ external_id: 'ext-77', phone_number: '+442071838750' }));
    expect(b.status).toBe(200);
    const c = await call('POST', '/api/profile-import', profileBody({ phone_number: '+442071838750', email: 'ext77@example.com' }));
    expect(c.status).toBe(200);
    expect(c.json.data.id).toBe(a.json.data.id);
    expect(c.json.data.attributes).toMatchObject({ email: 'ext77@example.com', phone_number: '+442071838750', external_id: 'ext-77' });
  });

  it('409 when the identifiers belong to two different profiles', async () => {
    await call('POST', '/api/profile-import', profileBody({ email: 'one@example.com' }));
    const two = await call('POST', '/api/profile-import', profileBody({ external_id: 'two' }));
    const r = await call('POST', '/api/profile-import', profileBody({ email: 'one@example.com', external_id: 'two' }));
    expect(r.status).toBe(409);
    expect(r.json.errors[0].code).toBe('duplicate_profile');
    expect(r.json.errors[0].meta.duplicate_profile_id).toBe(two.json.data.id);
  });
});

describe('GET / PATCH /api/profiles/{id}', () => {
  it('gets a profile with fields[profile]; 404 for an unknown id', async () => {
    const a = await call('POST', '/api/profiles', profileBody({ email: 'get@example.com', first_name: 'G' }));
    const r = await call('GET', `/api/profiles/${a.json.data.id}?fields[profile]=email,location.city`);
    expect(r.status).toBe(200);
    expect(r.json.data.attributes).toEqual({ email: 'get@example.com', location: { city: null } });
    const missing = await call('GET', '/api/profiles/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0].code).toBe('not_found');
  });

  it('PATCH: null clears, omitted unchanged, patch_properties append/unappend/unset', async () => {
    const a = await call('POST', '/api/profiles', profileBody({ email: 'patch@example.com', first_name: 'P', last_name: 'Q', properties: { skus: ['1'], old: 'x', keep: true } }));
    const id = a.json.data.id;
    const r = await call('PATCH', `/api/profiles/${id}`, {
      data: { type: 'profile', id, attributes: { first_name: null }, meta: { patch_properties: { append: { skus: '2' }, unset: 'old' } } },
    });
    expect(r.status).toBe(200);
    expect(r.json.data.attributes).toMatchObject({ first_name: null, last_name: 'Q', properties: { skus: ['1', '2'], keep: true } });
    expect(r.json.data.attributes.properties).not.toHaveProperty('old');
    const r2 = await call('PATCH', `/api/profiles/${id}`, { data: { type: 'profile', id, attributes: {}, meta: { patch_properties: { unappend: { skus: '1' } } } } });
    expect(r2.json.data.attributes.properties.skus).toEqual(['2']);
  });

  it('PATCH with a body id that differs from the URL → 409; to an email owned by another profile → 409 duplicate_profile', async () => {
    const a = await call('POST', '/api/profiles', profileBody({ email: 'pa@example.com' }));
    const b = await call('POST', '/api/profiles', profileBody({ email: 'pb@example.com' }));
    const mismatch = await call('PATCH', `/api/profiles/${a.json.data.id}`, { data: { type: 'profile', id: b.json.data.id, attributes: {} } });
    expect(mismatch.status).toBe(409);
    const dup = await call('PATCH', `/api/profiles/${a.json.data.id}`, { data: { type: 'profile', id: a.json.data.id, attributes: { email: 'pb@example.com' } } });
    expect(dup.status).toBe(409);
    expect(dup.json.errors[0].meta.duplicate_profile_id).toBe(b.json.data.id);
  });
});

describe('GET /api/profiles', () => {
  it('filters with equals/any on identifiers and pages with links.next', async () => {
    const emails = Array.from({ length: 7 }, (_, i) => `page${i}@example.com`);
    for (const email of emails) await call('POST', '/api/profiles', profileBody({ email }));
    const any = await call('GET', `/api/profiles?filter=${f(`any(email,["page1@example.com","page3@example.com","nobody@example.com"])`)}`);
    expect(any.json.data.map((p: { attributes: { email: string } }) => p.attributes.email).sort()).toEqual(['page1@example.com', 'page3@example.com']);
    const eq = await call('GET', `/api/profiles?filter=${f(`equals(email,'page2@example.com')`)}`);
    expect(eq.json.data).toHaveLength(1);

    const seen: string[] = [];
    let url: string | undefined = `/api/profiles?page[size]=3`;
    let pages = 0;
    while (url) {
      const r = await call('GET', url);
      expect(r.status).toBe(200);
      expect(r.json.data.length).toBeLessThanOrEqual(3);
      seen.push(...r.json.data.map((p: { id: string }) => p.id));
      url = r.json.links.next ? r.json.links.next.slice(emu.url.length) : undefined;
      pages++;
    }
    expect(pages).toBeGreaterThan(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(emu.snapshot().profiles);
  });

  it('filters on created with greater-than / less-than', async () => {
    const before = new Date(Date.now() - 60_000).toISOString().slice(0, 19) + 'Z';
    const all = await call('GET', `/api/profiles?page[size]=100&filter=${f(`greater-than(created,${before})`)}`);
    expect(all.json.data.length).toBeGreaterThan(0);
    const none = await call('GET', `/api/profiles?filter=${f(`less-than(created,${before})`)}`);
    expect(none.json.data).toHaveLength(0);
  });

  it('rejects page[size] > 100 and unknown filter fields with source.parameter', async () => {
    const big = await call('GET', '/api/profiles?page[size]=101');
    expect(big.status).toBe(400);
    expect(big.json.errors[0].source).toEqual({ parameter: 'page[size]' });
    const bad = await call('GET', `/api/profiles?filter=${f('equals(first_name,"x")')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ parameter: 'filter' });
  });
});
