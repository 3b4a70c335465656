/**
 * Pacing against the real emulator (in-process, real sockets), extending loader-emulator.test.ts's burst-only check:
 * - both windows: with the emulator's clock sped up ×10 and the limiter's windows shortened to match, a run that
 *   needs a second steady window is never throttled (the emulator counts every window overrun as a 429);
 * - Retry-After: fault-injected 429 bursts (Retry-After: 1) are waited out before the next attempt;
 * - bounded in-flight requests: with slow responses, never more than `concurrency` requests are open at once
 *   (counted by a pass-through proxy in front of the emulator).
 * No upper bounds on time: the machine is shared; the lower bounds asserted are guaranteed by the pacing itself.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ItemSpan, LoadItem } from '../../src/core/record.js';
import { silentLogger } from '../../src/core/logger.js';
import { newStats } from '../../src/core/stats.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { connectKlaviyo, type KlaviyoConnection } from '../../src/klaviyo/connect.js';
import { createKlaviyoLoader, type EventPayload } from '../../src/load/index.js';
import type { LoadContext } from '../../src/load/types.js';

const API_KEY = 'pk_pacing_emulator_test_key';

const destination = (concurrency: number) => ({
  baseUrl: undefined,
  revision: '2026-07-15',
  rateLimits: undefined,
  retries: 10,
  timeoutMs: 10_000,
  concurrency,
  lists: undefined,
  batch: { events: 1, profiles: 10_000, subscriptions: 1000, maxBytes: 4_900_000 },
});

function eventItems(n: number, prefix: string): LoadItem[] {
  return Array.from({ length: n }, (_, i) => {
    const pos = { seq: i, source: 'data.csv', line: i + 2 };
    const payload: EventPayload = {
      profile: { email: `${prefix}${i}@example.com` },
      event: { metric: 'Paced', properties: { i }, unique_id: `${prefix}-${i}`, time: '2024-03-01T10:00:00Z' },
    };
    return { kind: 'event' as const, payload, first: pos, last: pos };
  });
}

function context() {
  const stats = newStats();
  const acked: ItemSpan[] = [];
  const ctx: LoadContext = { logger: silentLogger, stats, dryRun: false, onAck: (i) => acked.push(...i), onReject: () => {} };
  return { ctx, acked, stats };
}

async function state(url: string): Promise<{ events: number; requests: { total: number; throttled: number; byEndpoint: Record<string, number> } }> {
  const res = await fetch(`${url}/_emulator/state?key=${API_KEY}`);
  return (await res.json()) as never;
}

/** A pass-through HTTP proxy counting the requests open at once. */
async function countingProxy(target: string): Promise<{ url: string; maxOpen: () => number; close: () => Promise<void> }> {
  const to = new URL(target);
  let open = 0;
  let max = 0;
  const server: Server = createServer((req, res) => {
    open++;
    max = Math.max(max, open);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        open--;
      }
    };
    res.on('close', finish);
    const upstream = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    maxOpen: () => max,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let emu: EmulatorHandle | undefined;
let conn: KlaviyoConnection | undefined;
afterEach(async () => {
  await conn?.close();
  conn = undefined;
  await emu?.close();
  emu = undefined;
});

describe('pacing against the emulator', () => {
  it('never overruns the burst or the steady window, across a second steady window (clock ×10)', async () => {
    const speed = 10;
    const t0 = Date.now();
    // Emulator time runs 10× faster: its 1 s / 60 s windows last 100 ms / 6 s of real time.
    emu = await startEmulator({ port: 0, limits: 0.1, now: () => t0 + (Date.now() - t0) * speed }); // M × 0.1 → 1/s, 15/min
    const { ctx, acked, stats } = context();
    const limiter = { burstWindowMs: 1000 / speed, steadyWindowMs: 60_000 / speed, marginMs: 60 };
    conn = connectKlaviyo(destination(4), { apiKey: API_KEY, stats, defaultBaseUrl: emu.url, scale: 0.1, limiter });
    const loader = createKlaviyoLoader('event', destination(4), { ...ctx, client: conn.client });
    const started = Date.now();
    await loader.write(eventItems(20, 'steady'));
    await loader.close();
    const elapsed = Date.now() - started;

    expect(acked).toHaveLength(20);
    const s = await state(emu.url);
    expect(s.events).toBe(20);
    expect(s.requests.byEndpoint['POST /api/event-bulk-create-jobs']).toBe(20);
    expect(s.requests.throttled).toBe(0); // the emulator answers 429 to any request over a window
    expect(stats.requests).toMatchObject({ total: 20, throttled: 0, retried: 0 });
    // 20 requests > 15 per steady window: the 16th had to wait for a token given back one steady window later.
    expect(elapsed).toBeGreaterThanOrEqual(limiter.steadyWindowMs);
  });

  it('waits out Retry-After of fault-injected 429s before the next attempt', async () => {
    emu = await startEmulator({ port: 0, limits: 'off', faults: { seed: 7, rate429: 0.12 } });
    const { ctx, acked, stats } = context();
    conn = connectKlaviyo(destination(1), { apiKey: API_KEY, stats, defaultBaseUrl: emu.url });
    const loader = createKlaviyoLoader('event', destination(1), { ...ctx, client: conn.client });
    const started = Date.now();
    await loader.write(eventItems(8, 'retry'));
    await loader.close();
    const elapsed = Date.now() - started;

    expect(acked).toHaveLength(8);
    const s = await state(emu.url);
    expect(s.events).toBe(8);
    expect(stats.requests.throttled).toBeGreaterThan(0); // the faults did fire
    expect(stats.requests.throttled).toBe(s.requests.throttled);
    expect(stats.requests.total).toBe(8 + stats.requests.throttled);
    // One request at a time, and each 429 (Retry-After: 1) pauses the endpoint ≥ 1 s before anything else starts.
    expect(elapsed).toBeGreaterThanOrEqual(1000 * stats.requests.throttled);
  });

  it('keeps at most `concurrency` requests open, even when responses are slow', async () => {
    emu = await startEmulator({ port: 0, limits: 'off', faults: { seed: 1, slowRate: 1, slowMs: 250 } });
    const proxy = await countingProxy(emu.url);
    try {
      const { ctx, acked, stats } = context();
      conn = connectKlaviyo(destination(3), { apiKey: API_KEY, stats, defaultBaseUrl: proxy.url });
      const loader = createKlaviyoLoader('event', destination(3), { ...ctx, client: conn.client });
      const items = eventItems(12, 'bounded');
      let maxBatcherAhead = 0;
      // write item by item: write() returns only when the item found room, so at most concurrency + 1 batches exist
      for (const item of items) {
        await loader.write([item]);
        maxBatcherAhead = Math.max(maxBatcherAhead, item.first.seq + 1 - acked.length);
      }
      await loader.close();
      expect(acked).toHaveLength(12);
      expect((await state(emu.url)).events).toBe(12);
      expect(proxy.maxOpen()).toBeLessThanOrEqual(3);
      expect(proxy.maxOpen()).toBeGreaterThanOrEqual(2); // concurrency was actually used
      expect(maxBatcherAhead).toBeLessThanOrEqual(3 + 1); // in flight + the open batch (1 event per batch)
    } finally {
      await proxy.close();
    }
  });
});
