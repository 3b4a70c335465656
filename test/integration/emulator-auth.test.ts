import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { client, KEY, profileBody, getJson } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let restricted: EmulatorHandle;

beforeAll(async () => {
  emu = await startEmulator({ port: 0, limits: 'off' });
  restricted = await startEmulator({ port: 0, limits: 'off', apiKeys: [KEY] });
});
afterAll(async () => {
  await emu.close();
  await restricted.close();
});

describe('emulator auth and request checks', () => {
  it('prints a loopback base URL', () => {
    expect(emu.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emu.port).toBeGreaterThan(0);
  });

  it('missing Authorization → 401 not_authenticated with a JSON:API error body', async () => {
    const r = await client(emu.url, null)('GET', '/api/profiles');
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toContain('application/vnd.api+json');
    const e = r.json.errors[0];
    expect(e).toMatchObject({ status: 401, code: 'not_authenticated', links: {}, meta: {} });
    expect(typeof e.id).toBe('string');
    expect(typeof e.title).toBe('string');
    expect(typeof e.detail).toBe('string');
  });

  it('a public 6-char site id → 403 permission_denied', async () => {
    const r = await client(emu.url, 'AbC123')('GET', '/api/profiles');
    expect(r.status).toBe(403);
    expect(r.json.errors[0].code).toBe('permission_denied');
  });

  it('a malformed key → 401 authentication_failed', async () => {
    const r = await client(emu.url, 'sk_nonsense')('GET', '/api/profiles');
    expect(r.status).toBe(401);
    expect(r.json.errors[0].code).toBe('authentication_failed');
  });

  it('with apiKeys set, an unknown well-formed key → 401, the listed key works', async () => {
    expect((await client(restricted.url, 'pk_other_key_1234')('GET', '/api/profiles')).status).toBe(401);
    expect((await client(restricted.url, KEY)('GET', '/api/profiles')).status).toBe(200);
  });

  it('missing or malformed revision → 400 with source.parameter "revision"', async () => {
    const missing = await client(emu.url)('GET', '/api/profiles', undefined, { revision: undefined });
    expect(missing.status).toBe(400);
    expect(missing.json.errors[0]).toMatchObject({ code: 'invalid', source: { parameter: 'revision' } });
    const bad = await client(emu.url)('GET', '/api/profiles', undefined, { revision: 'July 2024' });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ parameter: 'revision' });
    const pre = await client(emu.url)('GET', '/api/profiles', undefined, { revision: '2026-07-15.pre' });
    expect(pre.status).toBe(200);
  });

  it('accepts application/json and application/vnd.api+json; 415 for others', async () => {
    const call = client(emu.url);
    const a = await call('POST', '/api/profiles', profileBody({ email: 'ct1@example.com' }), { 'content-type': 'application/json' });
    expect(a.status).toBe(201);
    const b = await call('POST', '/api/profiles', profileBody({ email: 'ct2@example.com' }), { 'content-type': 'application/vnd.api+json; charset=utf-8' });
    expect(b.status).toBe(201);
    const c = await call('POST', '/api/profiles', profileBody({ email: 'ct3@example.com' }), { 'content-type': 'text/plain' });
    expect(c.status).toBe(415);
    expect(c.json.errors[0].code).toBe('unsupported_media_type');
  });

  it('a body over 5 MB → 413', async () => {
    const big = JSON.stringify(profileBody({ email: 'big@example.com', properties: { blob: 'x'.repeat(5 * 1024 * 1024) } }));
    const r = await client(emu.url)('POST', '/api/profiles', big);
    expect(r.status).toBe(413);
  });

  it('malformed JSON → 400 parse_error', async () => {
    const r = await client(emu.url)('POST', '/api/profiles', '{"data":');
    expect(r.status).toBe(400);
    expect(r.json.errors[0].code).toBe('parse_error');
  });

  it('unknown path → 404, wrong method → 405', async () => {
    expect((await client(emu.url)('GET', '/api/nope')).status).toBe(404);
    const r = await client(emu.url)('DELETE', '/api/profiles');
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toContain('GET');
  });

  it('each key is its own account', async () => {
    const a = client(emu.url, 'pk_account_a_1234');
    const b = client(emu.url, 'pk_account_b_1234');
    expect((await a('POST', '/api/profiles', profileBody({ email: 'iso@example.com' }))).status).toBe(201);
    expect((await b('POST', '/api/profiles', profileBody({ email: 'iso@example.com' }))).status).toBe(201);
    const list = await a('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"iso@example.com")')}`);
    expect(list.json.data).toHaveLength(1);
    const stateA = await getJson(`${emu.url}/_emulator/state?key=pk_account_a_1234`);
    expect(stateA.profiles).toBe(1);
  });
});
