import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ItemSpan, LoadItem, Reject } from '../../src/core/record.js';
import { silentLogger } from '../../src/core/logger.js';
import { newStats } from '../../src/core/stats.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { connectKlaviyo, type KlaviyoConnection } from '../../src/klaviyo/connect.js';
import { createKlaviyoLoader, type EventPayload } from '../../src/load/index.js';
import type { LoadContext } from '../../src/load/types.js';

const API_KEY = 'pk_loader_emulator_test_key';

const destination = (overrides: { events?: number; profiles?: number; concurrency?: number; lists?: string[] } = {}) => ({
  baseUrl: undefined,
  revision: '2026-07-15',
  rateLimits: undefined,
  retries: 4,
  timeoutMs: 10_000,
  concurrency: overrides.concurrency ?? 3,
  lists: overrides.lists,
  batch: { events: overrides.events ?? 1000, profiles: overrides.profiles ?? 10_000, subscriptions: 1000, maxBytes: 4_900_000 },
});

function items(kind: LoadItem['kind'], payloads: unknown[]): LoadItem[] {
  return payloads.map((payload, i) => {
    const pos = { seq: i, source: 'data.csv', line: i + 2 };
    return { kind, payload, first: pos, last: pos } as LoadItem;
  });
}

function context(stats = newStats()) {
  const acked: ItemSpan[] = [];
  const rejects: Reject[] = [];
  const done: string[] = [];
  const ctx: LoadContext = {
    logger: silentLogger,
    stats,
    dryRun: false,
    onAck: (i) => acked.push(...i),
    onReject: (r) => rejects.push(...r),
    onJobDone: (id) => done.push(id),
  };
  return { ctx, acked, rejects, done, stats };
}

async function state(emu: EmulatorHandle): Promise<Record<string, unknown>> {
  const res = await fetch(`${emu.url}/_emulator/state?key=${API_KEY}`);
  return (await res.json()) as Record<string, unknown>;
}

let emu: EmulatorHandle | undefined;
let conn: KlaviyoConnection | undefined;
afterEach(async () => {
  await conn?.close();
  conn = undefined;
  await emu?.close();
  emu = undefined;
});

function event(email: string, uniqueId: string, metric = 'Placed Order'): EventPayload {
  return { profile: { email }, event: { metric, properties: { OrderId: uniqueId }, value: 10, unique_id: uniqueId, time: '2024-03-01T10:00:00Z' } };
}

describe('loader → emulator', () => {
  it('loads events: in-input duplicates go to a later request and are ignored; invalid rows are rejected by pointer', async () => {
    emu = await startEmulator({ port: 0, limits: 'klaviyo' });
    const { ctx, acked, rejects, stats } = context();
    conn = connectKlaviyo(destination({ events: 10 }), { apiKey: API_KEY, stats, defaultBaseUrl: emu.url });
    const payloads = [
      ...Array.from({ length: 25 }, (_, i) => event(`buyer${i}@example.com`, `order-${i}`)),
      event('buyer3@example.com', 'order-3'), // real duplicate in the input
      event('not-an-email', 'order-x'),
    ];
    const loader = createKlaviyoLoader('event', destination({ events: 10 }), { ...ctx, client: conn.client });
    await loader.write(items('event', payloads));
    await loader.close();

    expect(rejects).toMatchObject([{ seq: 26, line: 28, code: 'KLAVIYO_REJECTED' }]);
    expect(rejects[0]!.field).toContain('email');
    expect(acked).toHaveLength(26);
    const s = await state(emu);
    expect(s).toMatchObject({ events: 25, eventsByMetric: { 'Placed Order': 25 }, profiles: 25, duplicateEventsIgnored: 1 });
    expect((s.requests as { throttled: number }).throttled).toBe(0);
    expect(stats.requests.throttled).toBe(0);
  });

  it('loads profiles through bulk import jobs into a list; import-errors come back joined to lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-emu-'));
    const seedFile = join(dir, 'seed.json');
    writeFileSync(seedFile, JSON.stringify({ lists: [{ id: 'LiSt01', name: 'Imported' }] }));
    emu = await startEmulator({ port: 0, limits: 'klaviyo', seedFile });
    const { ctx, acked, rejects, done, stats } = context();
    const config = destination({ profiles: 4, lists: ['LiSt01'] });
    conn = connectKlaviyo(config, { apiKey: API_KEY, stats, defaultBaseUrl: emu.url });
    const payloads = Array.from({ length: 10 }, (_, i) =>
      i === 6 ? { email: 'broken@', first_name: 'Bad' } : { email: `person${i}@example.com`, first_name: `P${i}`, properties: { n: i } },
    );
    const loader = createKlaviyoLoader('profile', config, { ...ctx, client: conn.client, poll: { intervalMs: 50, maxIntervalMs: 200 } });
    await loader.write(items('profile', payloads));
    await loader.close();

    expect(acked).toHaveLength(10);
    expect(done).toHaveLength(3);
    expect(loader.pendingJobs?.()).toEqual([]);
    expect(rejects).toMatchObject([{ seq: 6, line: 8, source: 'data.csv', code: 'KLAVIYO_IMPORT_ERROR' }]);
    const s = await state(emu);
    expect(s).toMatchObject({ profiles: 9, jobs: { total: 3, complete: 3, importErrors: 1 } });
    expect(s.lists).toEqual([{ id: 'LiSt01', name: 'Imported', members: 9 }]);
    expect(stats.jobs).toEqual({ submitted: 3, completed: 3, importErrors: 1, forgotten: 0 });
  });

  it('paces requests under scaled limits so the emulator throttles nothing', async () => {
    emu = await startEmulator({ port: 0, limits: 0.3 }); // M tier → 3/s burst, 45/min steady
    const { ctx, acked, stats } = context();
    conn = connectKlaviyo(destination({ events: 1, concurrency: 4 }), { apiKey: API_KEY, stats, defaultBaseUrl: emu.url, scale: 0.3 });
    const loader = createKlaviyoLoader('event', destination({ events: 1, concurrency: 4 }), { ...ctx, client: conn.client });
    await loader.write(items('event', Array.from({ length: 9 }, (_, i) => event(`paced${i}@example.com`, `p-${i}`))));
    await loader.close();
    expect(acked).toHaveLength(9);
    const s = await state(emu);
    expect(s).toMatchObject({ events: 9, requests: { total: 9, throttled: 0 } });
    expect(stats.requests).toMatchObject({ total: 9, throttled: 0, retried: 0 });
  });
});
