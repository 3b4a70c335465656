import { describe, expect, it } from 'vitest';
import { FaultInjector } from '../../src/emulator/faults.js';
import { startEmulator } from '../../src/emulator/index.js';
import { client, profileBody, getJson } from '../unit/emulator/client.js';

/** A frozen clock in the middle of a window, so fixed windows never roll over during a test. */
const frozen = () => Date.UTC(2026, 0, 1, 12, 0, 30, 100);

describe('rate limits', () => {
  it('burst: M tier allows 10 requests per second, then 429 with Retry-After and the throttled body', async () => {
    const emu = await startEmulator({ port: 0, now: frozen });
    try {
      const call = client(emu.url);
      for (let i = 0; i < 10; i++) {
        const r = await call('GET', '/api/profile-bulk-import-jobs');
        expect(r.status).toBe(200);
        expect(r.headers.get('ratelimit-limit')).toBe('150');
        expect(r.headers.get('ratelimit-remaining')).toBe(String(150 - i - 1));
        expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      }
      const t = await call('GET', '/api/profile-bulk-import-jobs');
      expect(t.status).toBe(429);
      expect(Number(t.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number.isInteger(Number(t.headers.get('retry-after')))).toBe(true);
      expect(t.headers.get('ratelimit-limit')).toBeNull();
      expect(t.json.errors[0]).toMatchObject({ status: 429, code: 'throttled', title: 'Request was throttled.', source: { pointer: '/data' } });
      expect(t.json.errors[0].detail).toMatch(/Expected available in \d+ seconds?\./);
      // another endpoint and another account have their own windows
      expect((await call('GET', '/api/profiles')).status).toBe(200);
      expect((await client(emu.url, 'pk_second_account_1')('GET', '/api/profile-bulk-import-jobs')).status).toBe(200);
      const state = await getJson(`${emu.url}/_emulator/state`);
      expect(state.requests.throttled).toBe(1);
      expect(state.requests.total).toBe(13);
      expect(state.requests.byEndpoint['GET /api/profile-bulk-import-jobs']).toBe(12);
    } finally {
      await emu.close();
    }
  });

  it('steady: 150 per minute on M tier, Retry-After up to the end of the minute', async () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 0, 0);
    const emu = await startEmulator({ port: 0, now: () => now });
    try {
      const call = client(emu.url);
      for (let i = 0; i < 150; i++) {
        if (i % 10 === 0) now += 1000; // a new burst window every 10 requests
        expect((await call('GET', '/api/metrics')).status).toBe(200);
      }
      now += 1000; // second 16 of the minute
      const t = await call('GET', '/api/metrics');
      expect(t.status).toBe(429);
      expect(Number(t.headers.get('retry-after'))).toBe(44);
    } finally {
      await emu.close();
    }
  });

  it('a throttled write changes nothing (the 429 is decided before the body is read)', async () => {
    const emu = await startEmulator({ port: 0, now: frozen, limits: 0.01 }); // POST /api/profiles: 1 per second
    try {
      const call = client(emu.url);
      expect((await call('POST', '/api/profiles', profileBody({ email: 'first@example.com' }))).status).toBe(201);
      const t = await call('POST', '/api/profiles', profileBody({ email: 'second@example.com' }));
      expect(t.status).toBe(429);
      expect(emu.snapshot().profiles).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it('stricter extra limits: predictive_analytics (10/s, 150/m) and include=lists on one profile (1/s, 15/m) count as well', async () => {
    const emu = await startEmulator({ port: 0, now: frozen });
    try {
      const call = client(emu.url);
      for (let i = 0; i < 10; i++) {
        const r = await call('GET', '/api/profiles?additional-fields[profile]=predictive_analytics');
        expect(r.status).toBe(200);
        expect(r.headers.get('ratelimit-limit')).toBe('150'); // headers describe the stricter window
      }
      const t = await call('GET', '/api/profiles?additional-fields[profile]=predictive_analytics');
      expect(t.status).toBe(429);
      expect(t.headers.get('retry-after')).toBe('1');
      // the plain endpoint still has room (10 of its 75/s used) and reports its own window
      const plain = await call('GET', '/api/profiles');
      expect(plain.status).toBe(200);
      expect(plain.headers.get('ratelimit-limit')).toBe('750');
      expect(plain.headers.get('ratelimit-remaining')).toBe(String(750 - 11));
      const id = (await call('POST', '/api/profiles', profileBody({ email: 'inc@example.com' }))).json.data.id as string;
      expect((await call('GET', `/api/profiles/${id}?include=lists`)).status).toBe(200);
      expect((await call('GET', `/api/profiles/${id}?include=lists`)).status).toBe(429);
      expect((await call('GET', `/api/profiles/${id}?include=segments`)).status).toBe(200);
      expect((await call('GET', `/api/profiles/${id}`)).status).toBe(200);
    } finally {
      await emu.close();
    }
  });

  it('a numeric factor multiplies the allowances; off disables limits', async () => {
    const fast = await startEmulator({ port: 0, limits: 2, now: frozen });
    const off = await startEmulator({ port: 0, limits: 'off', now: frozen });
    try {
      const a = client(fast.url);
      for (let i = 0; i < 20; i++) expect((await a('GET', '/api/metrics')).status).toBe(200);
      expect((await a('GET', '/api/metrics')).status).toBe(429);
      const b = client(off.url);
      for (let i = 0; i < 40; i++) expect((await b('GET', '/api/metrics')).status).toBe(200);
      expect(off.snapshot().requests.throttled).toBe(0);
    } finally {
      await fast.close();
      await off.close();
    }
  });
});

describe('fault injection', () => {
  async function statuses(seed: number): Promise<{ codes: number[]; profiles: number; injected: Record<string, number> }> {
    const emu = await startEmulator({ port: 0, limits: 'off', faults: { seed, rate500: 0.15, rate503: 0.1, rate429: 0.1 } });
    try {
      const call = client(emu.url);
      const codes: number[] = [];
      for (let i = 0; i < 60; i++) {
        const r = await call('POST', '/api/profiles', profileBody({ email: `f${i}@example.com` }));
        codes.push(r.status);
        if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      return { codes, profiles: emu.snapshot().profiles, injected: emu.snapshot().faults };
    } finally {
      await emu.close();
    }
  }

  it('is reproducible with a seed, faulted requests change nothing, 429s come in bursts', async () => {
    const a = await statuses(42);
    const b = await statuses(42);
    const c = await statuses(7);
    expect(a.codes).toEqual(b.codes);
    expect(a.codes).not.toEqual(c.codes);
    expect(a.codes.filter((s) => s === 500).length).toBeGreaterThan(0);
    expect(a.codes.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(a.profiles).toBe(a.codes.filter((s) => s === 201).length);
    expect(a.injected['500']).toBe(a.codes.filter((s) => s === 500).length);
    // a 429 fault is followed by at least one more 429
    const first429 = a.codes.indexOf(429);
    expect(first429).toBeGreaterThanOrEqual(0);
    expect(a.codes[first429 + 1]).toBe(429);
  });

  it('noRetryAfter: every 429, injected or from the rate limits, comes without Retry-After and says "0 seconds"', async () => {
    const emu = await startEmulator({ port: 0, now: frozen, faults: { seed: 3, rate429: 0.1, noRetryAfter: 1 } });
    try {
      const call = client(emu.url);
      const throttled: Response['headers'][] = [];
      const details = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const r = await call('GET', '/api/profile-bulk-import-jobs');
        if (r.status === 429) {
          throttled.push(r.headers);
          details.add(r.json.errors[0].detail);
        }
      }
      const state = await getJson(`${emu.url}/_emulator/state`);
      // injected bursts, and the burst window of 10 (frozen clock) used up
      expect(state.faults['429']).toBeGreaterThan(0);
      expect(throttled.length).toBeGreaterThan(state.faults['429']);
      for (const h of throttled) expect(h.get('retry-after')).toBeNull();
      expect([...details]).toEqual(['Request was throttled. Expected available in 0 seconds.']);
    } finally {
      await emu.close();
    }
    expect(() => new FaultInjector({ noRetryAfter: 0.5 })).toThrow(/noRetryAfter/);
  });

  it('reset faults drop the connection without a response', async () => {
    const emu = await startEmulator({ port: 0, limits: 'off', faults: { seed: 1, resetRate: 1 } });
    try {
      await expect(client(emu.url)('GET', '/api/profiles')).rejects.toThrow();
      expect(emu.snapshot().faults.reset).toBe(1);
    } finally {
      await emu.close();
    }
  });

  it('faults apply to /api only', async () => {
    const emu = await startEmulator({ port: 0, limits: 'off', faults: { seed: 1, rate500: 1 } });
    try {
      expect((await client(emu.url)('GET', '/api/profiles')).status).toBe(500);
      expect((await fetch(`${emu.url}/_emulator/state`)).status).toBe(200);
    } finally {
      await emu.close();
    }
  });
  it('timeout faults never answer (and close() still returns); slow faults answer late but normally', async () => {
    const emu = await startEmulator({ port: 0, limits: 'off', faults: { seed: 1, timeoutRate: 1 } });
    await expect(fetch(`${emu.url}/api/profiles`, { headers: { authorization: 'Klaviyo-API-Key pk_timeout_1234', revision: '2026-07-15' }, signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(emu.snapshot().faults.timeout).toBe(1);
    await emu.close();
    const slow = await startEmulator({ port: 0, limits: 'off', faults: { seed: 1, slowRate: 1, slowMs: 50 } });
    try {
      const r = await client(slow.url)('POST', '/api/profiles', profileBody({ email: 'slow@example.com' }));
      expect(r.status).toBe(201);
      expect(slow.snapshot()).toMatchObject({ profiles: 1, faults: { slow: 1 } });
    } finally {
      await slow.close();
    }
  });
});
