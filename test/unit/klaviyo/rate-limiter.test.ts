import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/klaviyo/rate-limiter.js';
import { withServer, type TestServer } from '../load/helpers.js';

const KEY = 'POST /api/event-bulk-create-jobs';

/** Most arrivals in any fixed window of `windowMs`, over several alignments of the windows. */
function maxInFixedWindows(times: number[], windowMs: number, stepMs = 25): number {
  let max = 0;
  for (let offset = 0; offset < windowMs; offset += stepMs) {
    const counts = new Map<number, number>();
    for (const t of times) {
      const w = Math.floor((t + offset) / windowMs);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    for (const c of counts.values()) max = Math.max(max, c);
  }
  return max;
}

let server: TestServer | undefined;
let limiters: RateLimiter[] = [];
afterEach(async () => {
  await Promise.all(limiters.map((l) => l.close()));
  limiters = [];
  await server?.close();
  server = undefined;
});

function limiter(options: ConstructorParameters<typeof RateLimiter>[0]): RateLimiter {
  const l = new RateLimiter(options);
  limiters.push(l);
  return l;
}

describe('RateLimiter', () => {
  it('takes tiers from ENDPOINTS, per-key overrides, and scales them', () => {
    const l = limiter({ tiers: { 'GET /api/lists': { burst: 5, steady: 50 } }, scale: 2 });
    expect(l.limits(KEY)).toEqual({ burst: 20, steady: 300 });
    expect(l.limits('GET /api/lists')).toEqual({ burst: 10, steady: 100 });
    expect(new RateLimiter({ scale: 0.01 }).limits(KEY)).toEqual({ burst: 1, steady: 1 });
    expect(() => new RateLimiter({ scale: 0 })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('never lets more than burst / steady requests reach the server in any fixed window', async () => {
    server = await withServer(() => ({ status: 202 }));
    // Short windows keep the test quick; the margin absorbs event-loop jitter on a busy machine (server and client
    // share this process).
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 5 } }, burstWindowMs: 500, steadyWindowMs: 2000, marginMs: 150 });
    const url = server.url;
    const starts: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, () =>
        l.schedule(KEY, () => {
          starts.push(Date.now());
          return fetch(url, { method: 'POST' }).then((r) => r.arrayBuffer());
        }),
      ),
    );
    const arrivals = server.requests.map((r) => r.at);
    expect(arrivals).toHaveLength(12);
    // what the limiter controls: starts, in any window (sliding ⇒ every alignment)
    expect(maxInFixedWindows(starts, 500 + 100)).toBeLessThanOrEqual(2);
    expect(maxInFixedWindows(starts, 2000 + 100)).toBeLessThanOrEqual(5);
    // what the server counts, in its fixed windows
    expect(maxInFixedWindows(arrivals, 500)).toBeLessThanOrEqual(2);
    expect(maxInFixedWindows(arrivals, 2000)).toBeLessThanOrEqual(5);
    // the steady window was actually reached (the test would prove nothing otherwise)
    expect(maxInFixedWindows(arrivals, 2000)).toBeGreaterThanOrEqual(4);
  });

  it('starts waiting requests in the order they were scheduled', async () => {
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 100 } }, burstWindowMs: 50, marginMs: 0 });
    const started: number[] = [];
    await Promise.all(Array.from({ length: 7 }, (_, i) => l.schedule(KEY, async () => void started.push(i))));
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('keeps separate allowances per endpoint key', async () => {
    const l = limiter({ tiers: { A: { burst: 100, steady: 1 }, B: { burst: 100, steady: 1 } }, steadyWindowMs: 60_000 });
    const started: string[] = [];
    void l.schedule('A', async () => started.push('A'));
    void l.schedule('B', async () => started.push('B'));
    void l.schedule('A', async () => started.push('A2'));
    await new Promise((r) => setTimeout(r, 300));
    expect(started.sort()).toEqual(['A', 'B']);
  });

  it('pauses a key for Retry-After', async () => {
    const l = limiter({ tiers: { [KEY]: { burst: 100, steady: 100 } } });
    await l.schedule(KEY, async () => undefined);
    const paused = Date.now();
    l.pause(KEY, 400);
    const started = await l.schedule(KEY, async () => Date.now());
    expect(started - paused).toBeGreaterThanOrEqual(390);
  });

  it('widens a key\'s safety margin on every 429 (doubled, at least 250 ms, at most 1 s), not other keys\'', () => {
    const l = limiter({});
    expect(l.marginMs(KEY)).toBe(2);
    l.pause(KEY, 0);
    expect(l.marginMs(KEY)).toBe(250);
    l.pause(KEY, 0);
    expect(l.marginMs(KEY)).toBe(500);
    l.pause(KEY, 0);
    l.pause(KEY, 0);
    expect(l.marginMs(KEY)).toBe(1000);
    expect(l.marginMs("GET /api/lists")).toBe(2);
  });

  it('gives a token back one window after its request ended, or window + 250 ms after a start left unanswered', async () => {
    const window = 300;
    const l = limiter({ tiers: { [KEY]: { burst: 1, steady: 100 } }, burstWindowMs: window, marginMs: 0 });
    // answered after 150 ms: the next request waits for the answer + one window, not the start + one window
    const t0 = Date.now();
    let answered = 0;
    await l.schedule(KEY, async () => {
      await new Promise((r) => setTimeout(r, 150));
      answered = Date.now();
    });
    const second = await l.schedule(KEY, async () => Date.now());
    expect(answered - t0).toBeGreaterThanOrEqual(145);
    expect(second - answered).toBeGreaterThanOrEqual(window - 5);
    // unanswered for 2 s: its token still comes back one window + 250 ms after its start
    const third = l.schedule(KEY, () => new Promise<number>((r) => setTimeout(() => r(Date.now()), 2000)));
    // (the third request waits for the second's token first)
    const fourth = await l.schedule(KEY, async () => Date.now());
    // answered 2,000 ms (or more) after it started, so this is its start or later: the bound below is conservative
    const thirdStarted = (await third) - 2000;
    expect(fourth - thirdStarted).toBeGreaterThanOrEqual(window + 250 - 10);
    expect(fourth - thirdStarted).toBeLessThan(2000); // did not wait for the answer
  });

  it('gives tokens back in due order when a later-ended request is due first', async () => {
    const window = 2000;
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 100 } }, burstWindowMs: window, marginMs: 0 });
    const t0 = Date.now();
    // slow: answered after 1,900 ms, so its token is due at its start + 250 ms + one window (~t0 + 2,250)
    const slow = l.schedule(KEY, () => new Promise((r) => setTimeout(r, 1900)));
    // quick, started 1,500 ms later and ended first (~t0 + 1,600): due at its end + one window (~t0 + 3,600)
    await new Promise((r) => setTimeout(r, 1500));
    await l.schedule(KEY, () => new Promise((r) => setTimeout(r, 100)));
    await slow;
    const third = await l.schedule(KEY, async () => Date.now());
    expect(third - t0).toBeGreaterThanOrEqual(window + 250 - 10);
    expect(third - t0).toBeLessThan(window + 1600 - 300); // the slow request's token, not the quick one's
  });

  it('keeps the tokens waiting out a steady window compact: no timer or closure per request', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const l = limiter({ tiers: { [KEY]: { burst: 1e9, steady: 1e9 } } });
    await l.schedule(KEY, async () => undefined);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20_000; i++) await l.schedule(KEY, async () => undefined);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // 20,000 tokens are out for the next minute: ~40 bytes each measured (0.75 MB), ~1.4 KB each as a timer and
    // closures per request (28.6 MB)
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  });

  it('lowers its allowance when the server reports fewer remaining requests, until the window resets', async () => {
    const l = limiter({ tiers: { [KEY]: { burst: 100, steady: 100 } }, marginMs: 0 });
    await l.schedule(KEY, async () => undefined);
    const observed = Date.now();
    await l.observe(KEY, { remaining: 0, resetSeconds: 0.5 });
    const started = await l.schedule(KEY, async () => Date.now());
    expect(started - observed).toBeGreaterThanOrEqual(450);
  });

  it('shares one allowance between processes through Redis', async () => {
    const redis = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: `klaviyo-etl-test-${process.pid}-${Date.now()}` };
    const tiers = { [KEY]: { burst: 100, steady: 4 } };
    const a = limiter({ tiers, redis });
    const b = limiter({ tiers, redis });
    let started = 0;
    for (let i = 0; i < 3; i++) {
      void a.schedule(KEY, async () => started++).catch(() => undefined);
      void b.schedule(KEY, async () => started++).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(started).toBe(4);
  });
});
