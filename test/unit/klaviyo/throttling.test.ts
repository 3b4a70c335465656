import { afterEach, describe, expect, it, vi } from 'vitest';
import { EtlError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { newStats } from '../../../src/core/stats.js';
import { availableInMs, KlaviyoClient } from '../../../src/klaviyo/client.js';
import { RateLimiter } from '../../../src/klaviyo/rate-limiter.js';
import { withServer, type TestServer } from '../load/helpers.js';

// 429s as Klaviyo really sends them (issue 12): without Retry-After ("Expected available in 0 seconds"), or because
// another client used up the account's steady window. The client waits for the end of the window that refused the
// request and retries for a time budget, not a count. Fake setTimeout/Date (the client's and limiter's clock), real
// sockets to a local server.

const KEY = 'POST /api/event-bulk-create-jobs';
const API_KEY = 'pk_throttling_unit_test_key_0000';
const THROTTLED_0 = { errors: [{ status: 429, code: 'throttled', title: 'Request was throttled.', detail: 'Request was throttled. Expected available in 0 seconds.' }] };

let server: TestServer | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0)) await c();
  await server?.close();
  server = undefined;
});

function client(url: string, retryBudgetMs?: number) {
  const stats = newStats();
  const limiter = new RateLimiter({ logger: silentLogger });
  const c = new KlaviyoClient({ baseUrl: url, apiKey: API_KEY, limiter, stats, logger: silentLogger, retries: 3, timeoutMs: 5000, retryBudgetMs, retryPolicy: { baseMs: 5, capMs: 20, random: () => 0.5 } });
  cleanups.push(async () => {
    await c.close();
    await limiter.close();
  });
  return { client: c, stats, limiter };
}

/** Let real I/O run until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Move fake time by `ms`, then let real I/O run a few turns. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('429 without Retry-After', () => {
  it('waits for the burst window, then for the steady window\'s reset that RateLimit-Reset stated', async () => {
    // another client uses up the steady window after our first request: 429s without Retry-After until it resets
    server = await withServer((_req, i) =>
      i === 0
        ? { status: 202, headers: { 'ratelimit-limit': '150', 'ratelimit-remaining': '100', 'ratelimit-reset': '30' } }
        : i < 3
          ? { status: 429, body: THROTTLED_0 }
          : { status: 202 },
    );
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { client: c, stats } = client(server.url);
    expect((await c.request(KEY, { body: {} })).status).toBe(202);
    const t0 = server.requests[0]!.at;
    const pending = c.request(KEY, { body: {} });
    await until(() => stats.requests.throttled === 1, 'the first 429');
    // first 429, the steady window still had room: the burst window (1 s) + jitter (125 ms)
    await advance(1124);
    expect(server.requests).toHaveLength(2);
    await advance(1);
    await until(() => stats.requests.throttled === 2, 'the second 429');
    // refused again: the steady window's end, 30 s after the first answer (+ margin and jitter)
    await advance(30_000 - (Date.now() - t0) - 10);
    expect(server.requests).toHaveLength(3);
    await advance(1000);
    expect((await pending).status).toBe(202);
    expect(server.requests).toHaveLength(4);
    const last = server.requests[3]!.at - t0;
    expect(last).toBeGreaterThanOrEqual(30_000);
    expect(last).toBeLessThan(31_000);
    expect(stats.requests).toMatchObject({ throttled: 2, retried: 2, failed: 0 });
  });

  it('with nothing known of the windows, waits a whole steady window after a second 429, until the time budget', async () => {
    server = await withServer(() => ({ status: 429, body: THROTTLED_0 }));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { client: c, stats } = client(server.url, 150_000);
    const t0 = Date.now();
    let error: unknown;
    const pending = c.request(KEY, { body: {} }).catch((e: unknown) => (error = e));
    await until(() => server!.requests.length === 1 && stats.requests.throttled === 1, 'the first 429');
    await advance(1125); // burst window + jitter
    await until(() => stats.requests.throttled === 2, 'the second 429');
    for (const n of [3, 4]) {
      await advance(60_000 - 200);
      expect(server.requests).toHaveLength(n - 1); // not before the steady window
      await advance(60_000 + 200 - (60_000 - 200) + 300);
      await until(() => stats.requests.throttled === n, `429 number ${n}`);
    }
    // the next attempt would start ~182 s after the first: past the 150 s budget
    await until(() => error !== undefined, 'the request fails');
    await pending;
    expect(error).toBeInstanceOf(EtlError);
    expect(error).toMatchObject({ code: 'KLAVIYO_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/retry budget/);
    expect((error as Error).message).not.toContain(API_KEY);
    expect(server.requests).toHaveLength(4);
    const at = server.requests.map((r) => r.at - t0);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(60_000);
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(60_000);
    expect(stats.requests).toMatchObject({ total: 4, throttled: 4, retried: 3, failed: 1 });
  });

  it('more than `retries` 429s are retried while the budget lasts (retries bounds 5xx and network failures)', async () => {
    server = await withServer((_req, i) => (i < 12 ? { status: 429, headers: { 'retry-after': '1' }, body: THROTTLED_0 } : { status: 202 }));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { client: c, stats } = client(server.url);
    let done = false;
    const pending = c.request(KEY, { body: {} }).finally(() => (done = true));
    while (!done) await advance(200);
    expect((await pending).status).toBe(202);
    expect(server.requests).toHaveLength(13); // retries: 3, but 12 429s
    expect(stats.requests).toMatchObject({ throttled: 12, failed: 0 });
  });

  it('reads "Expected available in N seconds" of the body', () => {
    expect(availableInMs(JSON.stringify(THROTTLED_0))).toBe(0);
    expect(availableInMs('Request was throttled. Expected available in 56.0 seconds.')).toBe(56_000);
    expect(availableInMs('Expected available in 1 second.')).toBe(1000);
    expect(availableInMs('nothing')).toBeUndefined();
  });
});
