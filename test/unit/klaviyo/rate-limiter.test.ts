import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RateLimiter } from '../../../src/klaviyo/rate-limiter.js';
import { manualClock } from './manual-clock.js';

// Time-based cases run on vitest's fake timers (the limiter's default clock reads Date.now() and the global timers
// on every call), so they wait no wall-clock time and their timings are exact. Sharing through Redis is in
// test/integration/rate-limiter-redis.test.ts.

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

let limiters: RateLimiter[] = [];
afterEach(async () => {
  await Promise.all(limiters.map((l) => l.close()));
  limiters = [];
  vi.useRealTimers();
});

function limiter(options: ConstructorParameters<typeof RateLimiter>[0]): RateLimiter {
  const l = new RateLimiter(options);
  limiters.push(l);
  return l;
}

/** Run every fake timer (and the promise chains they start) until none is left, then settle `promise`. */
async function settle<T>(promise: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return promise;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('RateLimiter', () => {
  it('takes tiers from ENDPOINTS, per-key overrides, and scales them', () => {
    const l = limiter({ tiers: { 'GET /api/lists': { burst: 5, steady: 50 } }, scale: 2 });
    expect(l.limits(KEY)).toEqual({ burst: 20, steady: 300 });
    expect(l.limits('GET /api/lists')).toEqual({ burst: 10, steady: 100 });
    expect(new RateLimiter({ scale: 0.01 }).limits(KEY)).toEqual({ burst: 1, steady: 1 });
    expect(() => new RateLimiter({ scale: 0 })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('never lets more than burst / steady requests reach the server in any fixed window', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 5 } }, burstWindowMs: 500, steadyWindowMs: 2000, marginMs: 150 });
    const starts: number[] = [];
    const arrivals: number[] = [];
    // The server counts a request anywhere between its start and its answer: latencies of 0-250 ms (the limiter
    // assumes a request is counted within 250 ms of its start), counted at the start, the answer, or in between.
    const schedule = Array.from({ length: 12 }, (_, i) =>
      l.schedule(KEY, async () => {
        const start = Date.now();
        starts.push(start);
        const latency = (i * 70) % 251;
        const counted = Math.round(latency * [0, 1, 0.5][i % 3]!);
        await delay(counted);
        arrivals.push(Date.now());
        await delay(latency - counted);
      }),
    );
    await settle(Promise.all(schedule));
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
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 100 } }, burstWindowMs: 50, marginMs: 0 });
    const started: number[] = [];
    await settle(Promise.all(Array.from({ length: 7 }, (_, i) => l.schedule(KEY, async () => void started.push(i)))));
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('keeps separate allowances per endpoint key', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { A: { burst: 100, steady: 1 }, B: { burst: 100, steady: 1 } }, steadyWindowMs: 60_000, marginMs: 0 });
    const started: string[] = [];
    void l.schedule('A', async () => started.push('A'));
    void l.schedule('B', async () => started.push('B'));
    void l.schedule('A', async () => started.push('A2'));
    await vi.advanceTimersByTimeAsync(59_999);
    expect(started.sort()).toEqual(['A', 'B']);
    // A's steady token comes back one window after A's request ended
    await vi.advanceTimersByTimeAsync(1);
    expect(started.sort()).toEqual(['A', 'A2', 'B']);
  });

  it('pauses a key for Retry-After', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 100, steady: 100 } } });
    await l.schedule(KEY, async () => undefined);
    const paused = Date.now();
    l.pause(KEY, 400);
    let started: number | undefined;
    const next = l.schedule(KEY, async () => (started = Date.now()));
    await vi.advanceTimersByTimeAsync(399);
    expect(started).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await next;
    expect(started! - paused).toBe(400);
  });

  it('starts up to `burst` queued requests together when a pause ends (docs/loader.md)', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 3, steady: 100 } }, marginMs: 0 });
    const paused = Date.now();
    l.pause(KEY, 1000);
    const starts: number[] = [];
    const all = Promise.all(Array.from({ length: 5 }, () => l.schedule(KEY, async () => void starts.push(Date.now() - paused))));
    await settle(all);
    // three at the end of the pause, the other two one burst window (+ the margin the 429 widened to 250 ms) later
    expect(starts).toEqual([1000, 1000, 1000, 2250, 2250]);
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
    vi.useFakeTimers();
    const window = 300;
    const l = limiter({ tiers: { [KEY]: { burst: 1, steady: 100 } }, burstWindowMs: window, marginMs: 0 });
    const scenario = async () => {
      // answered after 150 ms: the next request waits for the answer + one window, not the start + one window
      const t0 = Date.now();
      let answered = 0;
      await l.schedule(KEY, async () => {
        await delay(150);
        answered = Date.now();
      });
      const second = await l.schedule(KEY, async () => Date.now());
      expect(answered - t0).toBe(150);
      expect(second - answered).toBe(window);
      // unanswered for 2 s: its token still comes back one window + 250 ms after its start
      let thirdStarted = 0;
      const third = l.schedule(KEY, async () => {
        thirdStarted = Date.now();
        await delay(2000);
        return Date.now();
      });
      // (the fourth request waits for the third's token first)
      const fourth = await l.schedule(KEY, async () => Date.now());
      expect(fourth - thirdStarted).toBeGreaterThanOrEqual(window + 250);
      expect(fourth - thirdStarted).toBeLessThanOrEqual(window + 251); // (+1: a timer's least delay)
      expect(fourth).toBeLessThan(await third); // did not wait for the answer
    };
    await settle(scenario());
  });

  it('gives tokens back in due order when a later-ended request is due first', async () => {
    vi.useFakeTimers();
    const window = 2000;
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 100 } }, burstWindowMs: window, marginMs: 0 });
    const scenario = async () => {
      const t0 = Date.now();
      // slow: answered after 1,900 ms, so its token is due at its start + 250 ms + one window (t0 + 2,250)
      const slow = l.schedule(KEY, () => delay(1900));
      // quick, started 1,500 ms later and ended first (t0 + 1,600): due at its end + one window (t0 + 3,600)
      await delay(1500);
      await l.schedule(KEY, () => delay(100));
      await slow;
      const third = await l.schedule(KEY, async () => Date.now());
      expect(third - t0).toBe(window + 250); // the slow request's token, not the quick one's
    };
    await settle(scenario());
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
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 100, steady: 100 } }, marginMs: 0 });
    await l.schedule(KEY, async () => undefined);
    const observed = Date.now();
    await l.observe(KEY, { remaining: 0, resetSeconds: 0.5 });
    let started: number | undefined;
    const next = l.schedule(KEY, async () => (started = Date.now()));
    await vi.advanceTimersByTimeAsync(499);
    expect(started).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await next;
    expect(started! - observed).toBe(500);
  });

  it('reads time and timers from the injected clock only', async () => {
    const clock = manualClock();
    const l = limiter({ tiers: { [KEY]: { burst: 1, steady: 100 } }, burstWindowMs: 1000, marginMs: 0, clock });
    await l.schedule(KEY, async () => undefined);
    let started: number | undefined;
    const next = l.schedule(KEY, async () => (started = clock.now()));
    clock.advance(999);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBeUndefined();
    clock.advance(1);
    await next;
    expect(started).toBe(1_000_000 + 1000);
    l.pause(KEY, 5000);
    const paused = l.schedule(KEY, async () => clock.now());
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await paused).toBe(1_000_000 + 1000 + 5000);
  });
});

describe('RateLimiter learns from the answers (issue 12)', () => {
  it('sends a key\'s first request alone: the others wait for its answer', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 100 } } });
    const t0 = Date.now();
    const starts: number[] = [];
    const all = Promise.all(Array.from({ length: 3 }, () => l.schedule(KEY, async () => {
      starts.push(Date.now() - t0);
      await delay(100);
    })));
    await settle(all);
    expect(starts).toEqual([0, 100, 100]);
  });

  it('paces at a lower RateLimit-Limit, burst scaled by the same ratio (the account\'s limits are not the tier\'s)', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 150 } }, marginMs: 0 });
    await l.schedule(KEY, async () => undefined);
    await l.observe(KEY, { limit: 75, remaining: 74, resetSeconds: 50 });
    expect(l.pacedLimits(KEY)).toEqual({ burst: 5, steady: 75 });
    // a higher limit (the spec's 750 where the loader paces at the docs' 700) never raises the allowance
    await l.observe(KEY, { limit: 150, remaining: 73, resetSeconds: 50 });
    expect(l.pacedLimits(KEY)).toEqual({ burst: 5, steady: 75 });
    const t0 = Date.now();
    const starts: number[] = [];
    await settle(Promise.all(Array.from({ length: 9 }, () => l.schedule(KEY, async () => void starts.push(Date.now() - t0)))));
    // the first request's token is back 1 s after it: 4 more now, then 5 one window later
    expect(starts.filter((s) => s < 1000)).toHaveLength(4);
    expect(starts.filter((s) => s >= 1000 && s < 2000)).toHaveLength(5);
  });

  it('a 429 of the burst window lowers the burst allowance to what got through; it grows back one per 10 windows', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 1000 } }, marginMs: 0 });
    const t0 = Date.now();
    const sent: number[] = [];
    // 10 requests in one burst window; the server (another client takes half) refuses the last four
    for (let i = 0; i < 10; i++) {
      await l.schedule(KEY, async () => void sent.push(Date.now()));
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(l.pacedLimits(KEY).burst).toBe(10);
    const cutAt = Date.now();
    const wait = l.throttled(KEY, { sentAt: sent[6]! });
    for (const at of sent.slice(7)) l.throttled(KEY, { sentAt: at });
    expect(wait).toBe(1000); // no Retry-After, the steady window has room: the end of the burst window
    expect(l.pacedLimits(KEY).burst).toBe(6); // one cut per burst window, to the six that got through
    await vi.advanceTimersByTimeAsync(9_999 - (Date.now() - cutAt));
    await l.schedule(KEY, async () => undefined);
    expect(l.pacedLimits(KEY).burst).toBe(6);
    await vi.advanceTimersByTimeAsync(1);
    await l.schedule(KEY, async () => undefined);
    expect(l.pacedLimits(KEY).burst).toBe(7);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(10_000);
  });

  it('a 429 without Retry-After when the steady window is used up waits for RateLimit-Reset', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 1000 } }, marginMs: 0 });
    const sentAt = Date.now();
    await l.schedule(KEY, async () => undefined);
    await l.observe(KEY, { limit: 1000, remaining: 0, resetSeconds: 42 });
    expect(l.throttled(KEY, { sentAt })).toBe(42_000);
    expect(l.pacedLimits(KEY).burst).toBe(10); // a steady 429 says nothing of the burst window
    // Retry-After wins when there is one
    expect(l.throttled(KEY, { sentAt, retryAfterMs: 3000 })).toBe(3000);
  });

  it('nothing known of the windows: a first 429 waits for the burst window, refused again a window later the whole steady window; an admitted answer ends it', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 1000 } }, marginMs: 0 });
    const t0 = Date.now();
    // another client used up the steady window before our first request; 429s carry no RateLimit-* headers
    expect(l.throttled(KEY, { sentAt: t0 })).toBe(1000); // may be the burst window's
    expect(l.throttled(KEY, { sentAt: t0 + 10 })).toBe(1000); // the same burst window: still may be
    await vi.advanceTimersByTimeAsync(1000);
    // another request, sent a burst window after the first refusal, refused too: the steady window is used up, and
    // with no RateLimit-Reset known its end is at most one whole window away
    expect(l.throttled(KEY, { sentAt: t0 + 1000 })).toBe(60_000);
    await vi.advanceTimersByTimeAsync(60_000);
    // admitted (sent after the first refusal): the run of refusals is over; the next 429 is a first one again
    l.admitted(KEY, t0 + 61_000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(l.throttled(KEY, { sentAt: t0 + 66_000 })).toBe(1000);
  });

  it('a key\'s first request answered 429 states no limits: the next still goes alone, after the pause', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 100 } } });
    const t0 = Date.now();
    const starts: number[] = [];
    let n = 0;
    const all = Promise.all(Array.from({ length: 3 }, () => l.schedule(KEY, async () => {
      starts.push(Date.now() - t0);
      await delay(100);
      // the first is refused: the client reports the 429 before the request's function returns
      if (n++ === 0) l.throttled(KEY, { sentAt: t0 });
    })));
    await settle(all);
    // the second waits out the 1 s pause and goes alone; the third waits for its answer. Nothing got through before
    // the refusal, so the burst allowance stays at 10.
    expect(starts).toEqual([0, 1100, 1200]);
    expect(l.pacedLimits(KEY).burst).toBe(10);
  });

  it('with a steady latency, a token comes back one window after the request was counted, not after its answer', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 1000 } }, marginMs: 2 });
    const t0 = Date.now();
    const starts: number[] = [];
    // every answer takes 250 ms: each request is counted at the same point of it
    await settle(Promise.all(Array.from({ length: 12 }, () => l.schedule(KEY, async () => {
      starts.push(Date.now() - t0);
      await delay(250);
    }))));
    // the first request alone (250 ms), then the next one; until 4 answers are in, one window after the answer
    expect(starts.slice(0, 2)).toEqual([0, 250]);
    // then two per window + 2 ms (latency spread 0): not one per window + 250 ms
    const last = starts[11]!;
    const gaps = starts.slice(6).map((s, i) => s - starts[i + 4]!);
    for (const g of gaps) expect(g).toBe(1002);
    expect(last).toBeLessThan(6 * 1250);
  });

  it('learns nothing of the burst window from a 429 right after a pause, or when the whole allowance got through', async () => {
    vi.useFakeTimers();
    const l = limiter({ tiers: { [KEY]: { burst: 4, steady: 1000 } }, marginMs: 0 });
    const sent: number[] = [];
    for (let i = 0; i < 4; i++) {
      await l.schedule(KEY, async () => void sent.push(Date.now()));
      await vi.advanceTimersByTimeAsync(10);
    }
    // four got through, then a 429 (a fault, or the server's jitter): not another client's share
    const fifth = l.schedule(KEY, async () => void sent.push(Date.now()));
    await vi.advanceTimersByTimeAsync(1000);
    await fifth;
    expect(sent[4]! - sent[0]!).toBeLessThanOrEqual(1000);
    expect(l.throttled(KEY, { sentAt: sent[4]!, retryAfterMs: 1000 })).toBe(1000);
    expect(l.pacedLimits(KEY).burst).toBe(4);
    // the first requests after the pause are refused too: the window before them was paused, nothing to learn
    const sixth = l.schedule(KEY, async () => void sent.push(Date.now()));
    await vi.advanceTimersByTimeAsync(1500);
    await sixth;
    l.throttled(KEY, { sentAt: sent[5]!, retryAfterMs: 1000 });
    expect(l.pacedLimits(KEY).burst).toBe(4);
  });

  it('gives a steady token back when the server\'s fixed window ends (RateLimit-Reset), not one window after', async () => {
    // 300 ms into a minute of the clock: a Reset of 20 s says the server's windows are not the clock's
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 2, 5, 0, 0, 300) });
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 2 } }, marginMs: 0 });
    const t0 = Date.now();
    const first = Date.now();
    await l.schedule(KEY, async () => undefined);
    // the window ends in 20 s (after first + 19 s, by first + 20 s)
    await l.observe(KEY, { limit: 2, remaining: 1, resetSeconds: 20, sentAt: first });
    const starts: number[] = [];
    await settle(Promise.all(Array.from({ length: 3 }, () => l.schedule(KEY, async () => void starts.push(Date.now() - t0)))));
    // one token left now; the second request's token is free at the window's end (20 s), the first's at 60 s
    expect(starts).toEqual([0, 20_000, 60_000]);
  });
});

describe('RateLimiter at the clock\'s windows (Klaviyo\'s fixed windows, aligned as the answers show)', () => {
  // 2026-12-02 05:00:00.300 UTC: 300 ms into a second, at the start of a minute
  const T0 = Date.UTC(2026, 11, 2, 5, 0, 0, 300);
  const nextBoundary = (t: number, w: number) => Math.floor(t / w) * w + w;

  /**
   * A server whose fixed windows start `offsetMs` after the clock's (0: the clock's, as the emulator's): it counts a
   * request `latencyMs` after its start, then answers; the limiter reads the answer's RateLimit-* headers before the
   * request ends (as the client does). Returns the start times of `n` requests, relative to T0.
   */
  async function run(l: RateLimiter, n: number, { latencyMs = 250, offsetMs = 0, steady = 150 } = {}): Promise<number[]> {
    const starts: number[] = [];
    const counted = new Map<number, number>();
    await settle(Promise.all(Array.from({ length: n }, () => l.schedule(KEY, async () => {
      const sentAt = Date.now();
      starts.push(sentAt - T0);
      await delay(latencyMs);
      const c = Date.now() - offsetMs;
      const minute = Math.floor(c / 60_000);
      counted.set(minute, (counted.get(minute) ?? 0) + 1);
      const resetSeconds = Math.ceil((nextBoundary(c, 60_000) - c) / 1000);
      void l.observe(KEY, { limit: steady, remaining: steady - counted.get(minute)!, resetSeconds, sentAt });
    }))));
    return starts;
  }

  it('sends a window\'s burst as the window opens, whatever the latency, once RateLimit-Reset shows the windows are the clock\'s', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 150 } }, trustStated: true });
    const starts = await run(l, 30);
    // the first burst at once (the allowance was stated: no first request alone); the next ones at the next whole
    // seconds + the 2 ms margin, not one window + one latency (or its spread) after the previous burst
    expect(starts).toEqual([...Array(10).fill(0), ...Array(10).fill(702), ...Array(10).fill(1702)]);
  });

  it('gives steady tokens back when the clock\'s minute ends', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 15 } }, trustStated: true });
    const starts = await run(l, 20, { steady: 15 });
    expect(starts).toEqual([...Array(10).fill(0), ...Array(5).fill(702), ...Array(5).fill(60_000 - 300 + 2)]);
  });

  it('a request still unanswered long after its start keeps its tokens until its answer (the server may count it late)', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 1, steady: 150 } }, trustStated: true });
    // a server at the clock's windows; every request answered `latencyMs` after its start
    const request = (latencyMs: number) =>
      l.schedule(KEY, async () => {
        const sentAt = Date.now();
        await delay(latencyMs);
        const c = Date.now();
        void l.observe(KEY, { limit: 150, remaining: 100, resetSeconds: Math.ceil((nextBoundary(c, 60_000) - c) / 1000), sentAt });
        return sentAt - T0;
      });
    const first = request(250);
    const slow = request(2000); // starts at 702, answered at 2,702 (03.002 of the clock)
    const next = request(250);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await first).toBe(0);
    expect(await slow).toBe(702);
    // the next whole second after the answer + margin, not one window + 250 ms after the slow request's start (1,952)
    expect(await next).toBe(3702);
  });

  it('keeps the sliding form when RateLimit-Reset shows the server\'s windows are not the clock\'s', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 150 } }, trustStated: true });
    // the server's minutes start 700 ms before the clock's: its Reset says 59 where the clock's minute says 60
    const starts = await run(l, 20, { offsetMs: -700 });
    // one window after each request was counted: 3 answers before the latency spread is known (start + 250 ms + 1 s),
    // then start + spread (0) + margin + 1 s; never at the clock's next second (702)
    expect(starts.slice(10).sort((a, b) => a - b)).toEqual([...Array(7).fill(1002), ...Array(3).fill(1250)]);
  });

  it('a 429 ends pacing at the clock\'s windows for the key (back to the sliding form)', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 2, steady: 150 } }, trustStated: true, marginMs: 0 });
    expect(await run(l, 4)).toEqual([0, 0, 700, 700]);
    // (a 429 with Retry-After for the last request: the burst window had its two, so the allowance stays)
    l.throttled(KEY, { sentAt: T0 + 700, retryAfterMs: 1 });
    expect(l.pacedLimits(KEY).burst).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    const t = Date.now() - T0;
    const later = await run(l, 4);
    // the first two at once (tokens back), the next two one window + the margin (widened to 250 ms by the 429) after
    // they were counted (start + latency spread 0), not at the clock's next second + margin (1000)
    expect(later.map((s) => s - t)).toEqual([0, 0, 1250, 1250]);
  });

  it('sends a first request alone only for an allowance not stated by the caller', async () => {
    vi.useFakeTimers({ now: T0 });
    const l = limiter({ tiers: { [KEY]: { burst: 10, steady: 150 } }, trustStated: true });
    const starts: Record<string, number[]> = { stated: [], unstated: [] };
    const three = (key: string, into: number[]) =>
      Array.from({ length: 3 }, () => l.schedule(key, async () => {
        into.push(Date.now() - T0);
        await delay(100);
      }));
    await settle(Promise.all([...three(KEY, starts.stated!), ...three('GET /api/lists', starts.unstated!)]));
    expect(starts.stated).toEqual([0, 0, 0]);
    expect(starts.unstated).toEqual([0, 100, 100]);
  });
});
