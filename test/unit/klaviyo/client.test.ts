import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EtlError } from '../../../src/core/errors.js';
import { API_KEY, testClient, withServer, type TestServer } from '../load/helpers.js';
import { manualClock } from './manual-clock.js';

const KEY = 'POST /api/event-bulk-create-jobs';

let server: TestServer | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0)) await c();
  await server?.close();
  server = undefined;
});

function client(url: string, options: Parameters<typeof testClient>[1] = {}) {
  const c = testClient(url, options);
  cleanups.push(c.close);
  return c;
}

async function caught(promise: Promise<unknown>): Promise<EtlError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(EtlError);
    return error as EtlError;
  }
  throw new Error('expected a rejection');
}

/**
 * Fake `setTimeout`/`clearTimeout`/`Date` only (the client's clock and the limiter's), so sockets, `setImmediate`
 * and `performance` stay real: requests really go to the local server while the waits between them are fake.
 */
function useFakeClock(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
}

/** Let real I/O run (requests reach the server, responses come back) until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Settle `promise` while real I/O runs, moving fake time on 1 ms per turn of the event loop (the backoffs). */
async function drive<T>(promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await until(() => {
    if (!settled) vi.advanceTimersByTime(1);
    return settled;
  }, 'the request settles');
  return promise;
}

function expectNoKey(error: unknown): void {
  const texts = [
    String(error),
    (error as Error).message,
    JSON.stringify(error),
    inspect(error, { showHidden: true, depth: 10 }),
    JSON.stringify((error as { http?: unknown }).http ?? null),
  ];
  for (const text of texts) expect(text).not.toContain(API_KEY);
}

describe('KlaviyoClient', () => {
  it('sends auth, revision and JSON:API headers and counts the request per endpoint', async () => {
    server = await withServer(() => ({ status: 202 }));
    const { client: c, stats } = client(server.url);
    const res = await c.request(KEY, { body: { data: { type: 'x' } } });
    expect(res.status).toBe(202);
    expect(res.ok).toBe(true);
    const seen = server.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/api/event-bulk-create-jobs');
    expect(seen.headers.authorization).toBe(`Klaviyo-API-Key ${API_KEY}`);
    expect(seen.headers.revision).toBe('2026-07-15');
    expect(seen.headers.accept).toBe('application/vnd.api+json');
    expect(seen.headers['content-type']).toBe('application/vnd.api+json');
    expect(seen.json).toEqual({ data: { type: 'x' } });
    expect(stats.requests).toMatchObject({ total: 1, throttled: 0, retried: 0, byEndpoint: { [KEY]: 1 } });
  });

  it('fills path parameters and query strings, and follows full links.next URLs on the same origin', async () => {
    server = await withServer(() => ({ status: 200, body: { data: [] } }));
    const { client: c } = client(server.url);
    await c.request('GET /api/profile-bulk-import-jobs/{id}/import-errors', {
      path: '/api/profile-bulk-import-jobs/J1/import-errors',
      query: { 'page[size]': 100 },
    });
    await c.request('GET /api/profile-bulk-import-jobs/{id}/import-errors', {
      path: `${server.url}/api/profile-bulk-import-jobs/J1/import-errors?page%5Bcursor%5D=abc`,
    });
    expect(server.requests.map((r) => decodeURIComponent(r.url))).toEqual([
      '/api/profile-bulk-import-jobs/J1/import-errors?page[size]=100',
      '/api/profile-bulk-import-jobs/J1/import-errors?page[cursor]=abc',
    ]);
    await expect(c.request('GET /api/lists', { path: 'http://elsewhere.example/api/lists' })).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('honours Retry-After on 429 before the next attempt', async () => {
    server = await withServer((_req, i) =>
      i === 0
        ? { status: 429, headers: { 'retry-after': '1' }, body: { errors: [{ status: 429, code: 'throttled', detail: 'Request was throttled.' }] } }
        : { status: 202 },
    );
    useFakeClock();
    const { client: c, stats } = client(server.url);
    const pending = c.request(KEY, { body: {} });
    await until(() => stats.requests.retried === 1, 'the 429 is answered');
    // Retry-After 1 s plus the policy's jitter (random() = 0.5: 125 ms)
    await vi.advanceTimersByTimeAsync(1124);
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stats.requests.total).toBe(1); // no second attempt started yet
    expect(server.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.status).toBe(202);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(stats.requests).toMatchObject({ total: 2, throttled: 1, retried: 1 });
  });

  it('returns a non-retryable 4xx with its JSON:API errors after one request', async () => {
    const errors = [{ id: '1', status: 400, code: 'invalid', title: 'Invalid input.', detail: 'Invalid email address', source: { pointer: '/data/attributes/email' } }];
    server = await withServer(() => ({ status: 400, body: { errors } }));
    const { client: c, stats } = client(server.url);
    const res = await c.request(KEY, { body: {} });
    expect(res.ok).toBe(false);
    expect(res.status).toBe(400);
    expect(res.errors).toEqual(errors);
    expect(server.requests).toHaveLength(1);
    expect(stats.requests).toMatchObject({ total: 1, retried: 0, failed: 1 });
  });

  it('retries 5xx up to the budget, then throws KLAVIYO_UNAVAILABLE without the API key', async () => {
    server = await withServer(() => ({ status: 503, body: { errors: [{ code: 'unavailable', detail: `echo ${API_KEY}` }] } }));
    useFakeClock();
    const { client: c, stats } = client(server.url, { retries: 2 });
    const error = await caught(drive(c.request(KEY, { body: {} })));
    expect(error.code).toBe('KLAVIYO_UNAVAILABLE');
    expect(server.requests).toHaveLength(3);
    expect(stats.requests).toMatchObject({ total: 3, retried: 2, failed: 1 });
    expect((error as unknown as { http: { status: number } }).http.status).toBe(503);
    expect(Object.keys(error)).not.toContain('http');
    expectNoKey(error);
  });

  it('retries network failures (socket destroyed) and recovers', async () => {
    server = await withServer((_req, i) => (i < 2 ? { status: 0, destroy: true } : { status: 202 }));
    useFakeClock();
    const { client: c, stats } = client(server.url);
    const res = await drive(c.request(KEY, { body: {} }));
    expect(res.status).toBe(202);
    expect(stats.requests.retried).toBe(2);
  });

  it('throws KLAVIYO_UNAVAILABLE when the server cannot be reached, without the API key', async () => {
    server = await withServer(() => ({ status: 202 }));
    const url = server.url;
    await server.close();
    server = undefined;
    useFakeClock();
    const { client: c } = client(url, { retries: 1 });
    const error = await caught(drive(c.request(KEY, { body: {} })));
    expect(error.code).toBe('KLAVIYO_UNAVAILABLE');
    expect(error.context.errorCode).toBe('ECONNREFUSED');
    expectNoKey(error);
  });

  it.each([401, 403])('throws KLAVIYO_AUTH on %i without retrying or leaking the key', async (status) => {
    server = await withServer(() => ({ status, body: { errors: [{ code: 'not_authenticated', detail: `bad key ${API_KEY}` }] } }));
    const { client: c } = client(server.url);
    const error = await caught(c.request(KEY, { body: {} }));
    expect(error.code).toBe('KLAVIYO_AUTH');
    expect(server.requests).toHaveLength(1);
    expectNoKey(error);
  });

  it.each([
    ['not_authenticated', /no usable key/],
    ['authentication_failed', /wrong, revoked/],
    ['permission_denied', /lacks a scope .*events:write/],
  ])('throws KLAVIYO_AUTH on a 400 with the auth code %s (Klaviyo documents 400 for a bad key), on the first request', async (code, cause) => {
    server = await withServer(() => ({ status: 400, body: { errors: [{ status: 400, code, detail: 'Incorrect authentication credentials.', source: { pointer: '/data/' } }] } }));
    const { client: c, stats } = client(server.url);
    const error = await caught(c.request(KEY, { body: {} }));
    expect(error.code).toBe('KLAVIYO_AUTH');
    expect(error.message).toMatch(cause);
    expect(server.requests).toHaveLength(1);
    expect(stats.requests).toMatchObject({ total: 1, retried: 0, failed: 1 });
  });

  it('a 403 names the scope the endpoint needs', async () => {
    server = await withServer(() => ({ status: 403, body: { errors: [{ code: 'permission_denied', detail: 'You do not have permission to perform this action.' }] } }));
    const { client: c } = client(server.url);
    const error = await caught(c.request('POST /api/profile-bulk-import-jobs', { body: {} }));
    expect(error.code).toBe('KLAVIYO_AUTH');
    expect(error.message).toContain('profiles:write');
  });

  it.each([500, 502])('does not retry %i on a write that is not idempotent: KLAVIYO_UNAVAILABLE after one request', async (status) => {
    server = await withServer(() => ({ status, body: { errors: [{ code: 'error', detail: 'A server error occurred.' }] } }));
    const { client: c, stats } = client(server.url, { retries: 3 });
    const error = await caught(c.request(KEY, { body: {} }));
    expect(error.code).toBe('KLAVIYO_UNAVAILABLE');
    expect(error.message).toMatch(/not retried/);
    expect(server.requests).toHaveLength(1);
    expect(stats.requests).toMatchObject({ total: 1, retried: 0, failed: 1 });
  });

  it.each([500, 502])('retries %i on an idempotent write (and on a GET) until it succeeds', async (status) => {
    server = await withServer((_req, i) => (i % 2 === 0 ? { status } : { status: 202 }));
    const { client: c, stats } = client(server.url, { retries: 3 });
    expect((await c.request(KEY, { body: {}, idempotent: true })).status).toBe(202);
    expect((await c.request('GET /api/profiles')).status).toBe(202);
    expect(server.requests).toHaveLength(4);
    expect(stats.requests.retried).toBe(2);
  });

  it.each([503, 504, 524])('retries %i on any write, as Klaviyo\'s SDKs do', async (status) => {
    server = await withServer((_req, i) => (i === 0 ? { status } : { status: 202 }));
    const { client: c, stats } = client(server.url, { retries: 3 });
    expect((await c.request(KEY, { body: {}, idempotent: false })).status).toBe(202);
    expect(stats.requests.retried).toBe(1);
  });

  it.each([
    ['a public key (6-character site id)', 'AbC123', /public key .*pk_/],
    ['a key without pk_', 'sk_0123456789abcdef', /not starting with `pk_`.*private key/],
    ['pk_ alone', 'pk_', /shape of a private key/],
  ])('refuses %s before any request, with API_KEY_INVALID saying a private key is needed and why', async (_what, apiKey, message) => {
    const { KlaviyoClient } = await import('../../../src/klaviyo/client.js');
    const { limiter, stats, close } = testClient('http://127.0.0.1:9');
    cleanups.push(close);
    let error: unknown;
    try {
      new KlaviyoClient({ baseUrl: 'http://127.0.0.1:9', apiKey, limiter, stats });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EtlError);
    expect((error as EtlError).code).toBe('API_KEY_INVALID');
    expect((error as EtlError).message).toMatch(message);
    expect((error as EtlError).message).toMatch(/server-side \/api endpoints/);
    expect((error as EtlError).message).not.toContain(apiKey === 'pk_' ? 'pk_x' : apiKey);
    expect(stats.requests.total).toBe(0);
  });

  it('turns an abort into INTERRUPTED', async () => {
    server = await withServer(() => ({ status: 503 }));
    useFakeClock();
    const controller = new AbortController();
    const { limiter, stats } = testClient(server.url);
    const { KlaviyoClient } = await import('../../../src/klaviyo/client.js');
    const c = new KlaviyoClient({ baseUrl: server.url, apiKey: API_KEY, limiter, stats, signal: controller.signal, retryPolicy: { baseMs: 10_000, capMs: 10_000, random: () => 1 } });
    cleanups.push(async () => {
      await c.close();
      await limiter.close();
    });
    const t0 = Date.now();
    const pending = c.request(KEY, { body: {} });
    const settled = pending.catch((error: unknown) => error);
    // the 503 is answered and the client waits out its 10 s backoff (fake time stands still)
    await until(() => stats.requests.retried === 1, 'the 503 is answered');
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    expect(await settled).toMatchObject({ code: 'INTERRUPTED' });
    expect(Date.now() - t0).toBeLessThan(10_000); // the abort ended the wait
    expect(server.requests).toHaveLength(1);
  });

  it('waits between attempts on the injected clock', async () => {
    server = await withServer((_req, i) => (i === 0 ? { status: 503 } : { status: 202 }));
    const clock = manualClock();
    const { limiter, stats } = testClient(server.url);
    const { KlaviyoClient } = await import('../../../src/klaviyo/client.js');
    const c = new KlaviyoClient({ baseUrl: server.url, apiKey: API_KEY, limiter, stats, clock, retryPolicy: { baseMs: 1000, capMs: 1000, random: () => 0.9999 } });
    cleanups.push(async () => {
      await c.close();
      await limiter.close();
    });
    const pending = c.request(KEY, { body: {} });
    await until(() => stats.requests.retried === 1, 'the 503 is answered');
    clock.advance(998); // the backoff: floor(0.9999 × 1000) = 999 ms
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stats.requests.total).toBe(1);
    clock.advance(1);
    expect((await pending).status).toBe(202);
    expect(stats.requests.total).toBe(2);
  });
});
