import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KlaviyoSource } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/logger.js';
import type { SourcePosition, SourceRecord } from '../../src/core/record.js';
import { newStats } from '../../src/core/stats.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createKlaviyoReader } from '../../src/extract/klaviyo.js';
import { connectKlaviyo, type KlaviyoConnection } from '../../src/klaviyo/connect.js';
import { DEFAULT_REVISION } from '../../src/klaviyo/endpoints.js';
import { prng } from '../helpers/random.js';
import { seedEvents } from '../helpers/export-seed.js';
import { client, KEY } from '../unit/emulator/client.js';

/**
 * The klaviyo source's partitioned cursors against the emulator over HTTP: events read as several ranges at once
 * come in parts whose keys sort in time order, and the parts joined in key order are exactly the one-cursor
 * output (same records, same order); a reader resumed from any record's position (as the checkpoint stores it,
 * through JSON) yields exactly the records after it, every range resuming where it stopped, and ends with the same
 * watermark as a clean run. The same over GET /api/profiles by `created`, whose filter allows only greater-than / less-than.
 */

const T0 = Date.UTC(2025, 5, 1);
let emu: EmulatorHandle;
let connection: KlaviyoConnection;

beforeAll(async () => {
  emu = await startEmulator({ port: 0, limits: 'off' });
  // 2,000 events over ~14 days, every 5th sharing the previous one's second
  await seedEvents(client(emu.url), { count: 2000, profiles: 50, start: T0, stepMs: 10 * 60_000 });
  connection = connectKlaviyo({ baseUrl: emu.url, revision: DEFAULT_REVISION, rateLimits: undefined, retries: 2, timeoutMs: 10_000 }, { apiKey: KEY, stats: newStats() });
}, 60_000);

afterAll(async () => {
  await connection?.close();
  await emu?.close();
});

interface Read {
  records: SourceRecord[];
  watermark: unknown;
}

/** Read events with `concurrency`, from `startAfter`, stopping after `stopAfter` records (then the reader is left). */
async function read(
  concurrency: number,
  options: { startAfter?: SourcePosition; stopAfter?: number; watermark?: unknown; source?: Record<string, unknown>; client?: KlaviyoConnection } = {},
): Promise<Read> {
  const config = KlaviyoSource.parse({ type: 'klaviyo', resource: 'events', pageSize: 40, concurrency, ...options.source });
  const reader = createKlaviyoReader(
    config,
    { baseDir: '.', env: {}, logger: silentLogger, startAfter: options.startAfter, watermark: options.watermark },
    { client: (options.client ?? connection).client },
  );
  const records: SourceRecord[] = [];
  for await (const r of reader.records()) {
    records.push(r);
    if (options.stopAfter !== undefined && records.length >= options.stopAfter) break;
  }
  return { records, watermark: reader.watermark() };
}

const timeOf = (r: SourceRecord): number => Date.parse(r.row.datetime as string);

/** Records grouped by part, parts in ascending key order, each in arrival order: what export destinations publish. */
function joined(records: SourceRecord[]): SourceRecord[] {
  const parts = new Map<string, SourceRecord[]>();
  for (const r of records) {
    const list = parts.get(r.part!) ?? [];
    list.push(r);
    parts.set(r.part!, list);
  }
  return [...parts.keys()].sort().flatMap((k) => parts.get(k)!);
}

describe('partitioned cursors', () => {
  let single: Read;

  it('one cursor reads every event in time order, in one part', async () => {
    single = await read(1);
    expect(single.records).toHaveLength(2000);
    expect(new Set(single.records.map((r) => r.part)).size).toBe(1);
    const times = single.records.map(timeOf);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('8 ranges at once: parts sort in time order and, joined, are exactly the one-cursor output', async () => {
    const many = await read(8);
    const parts = [...new Set(many.records.map((r) => r.part!))].sort();
    expect(parts.length).toBeGreaterThanOrEqual(8);
    // every record of a part is earlier than every record of the next part
    for (let i = 1; i < parts.length; i++) {
      const prev = many.records.filter((r) => r.part === parts[i - 1]).map(timeOf);
      const next = many.records.filter((r) => r.part === parts[i]).map(timeOf);
      expect(Math.max(...prev)).toBeLessThan(Math.min(...next));
      expect(Date.parse(parts[i]!)).toBeLessThanOrEqual(Math.min(...next));
    }
    expect(joined(many.records).map((r) => r.row.id)).toEqual(single.records.map((r) => r.row.id));
    // seq numbers the stream as it was yielded
    expect(many.records.map((r) => r.pos.seq)).toEqual(many.records.map((_, i) => i));
    expect(many.watermark).toEqual(single.watermark);
  });

  it('resumed from any record (its position through JSON): the rest exactly once, every range where it stopped', async () => {
    const clean = single.records.map((r) => r.row.id);
    const random = prng(13);
    for (const cut of Array.from({ length: 6 }, () => 1 + random.int(1990))) {
      const head = await read(6, { stopAfter: cut });
      const at = JSON.parse(JSON.stringify(head.records.at(-1)!.pos)) as SourcePosition;
      const tail = await read(6, { startAfter: at });
      expect(tail.records[0]?.pos.seq).toBe(cut);
      const all = [...head.records, ...tail.records];
      expect(all.map((r) => r.row.id).sort()).toEqual([...clean].sort());
      expect(joined(all).map((r) => r.row.id)).toEqual(clean);
      expect(tail.watermark).toEqual(single.watermark);
    }
  }, 60_000);

  it('a resume of a resume: cut twice, still exactly once', async () => {
    const first = await read(5, { stopAfter: 500 });
    const second = await read(5, { startAfter: JSON.parse(JSON.stringify(first.records.at(-1)!.pos)), stopAfter: 700 });
    const third = await read(5, { startAfter: JSON.parse(JSON.stringify(second.records.at(-1)!.pos)) });
    const all = [...first.records, ...second.records, ...third.records];
    expect(all).toHaveLength(2000);
    expect(joined(all).map((r) => r.row.id)).toEqual(single.records.map((r) => r.row.id));
  }, 60_000);
});

describe('partitioned cursors over GET /api/profiles (greater-than / less-than only)', () => {
  let emu2: EmulatorHandle;
  let conn2: KlaviyoConnection;
  const source = { resource: 'profiles', by: 'created', pageSize: 25 };

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-partitions-'));
    const seedFile = path.join(dir, 'seed.json');
    await writeFile(seedFile, JSON.stringify({ generate: { profiles: 1200, events: 0, seed: 3, end: '2026-01-01T00:00:00Z' } }));
    emu2 = await startEmulator({ port: 0, limits: 'off', seedFile });
    conn2 = connectKlaviyo({ baseUrl: emu2.url, revision: DEFAULT_REVISION, rateLimits: undefined, retries: 2, timeoutMs: 10_000 }, { apiKey: KEY, stats: newStats() });
  }, 30_000);

  afterAll(async () => {
    await conn2?.close();
    await emu2?.close();
  });

  it('6 ranges joined equal one cursor; resumed from random records, exactly once', async () => {
    const single = await read(1, { source, client: conn2 });
    expect(single.records).toHaveLength(1200);
    const created = single.records.map((r) => Date.parse(r.row.created as string));
    expect(created).toEqual([...created].sort((a, b) => a - b));
    const many = await read(6, { source, client: conn2 });
    expect(new Set(many.records.map((r) => r.part)).size).toBeGreaterThanOrEqual(6);
    expect(joined(many.records).map((r) => r.row.id)).toEqual(single.records.map((r) => r.row.id));
    const random = prng(5);
    for (const cut of Array.from({ length: 3 }, () => 1 + random.int(1190))) {
      const head = await read(6, { source, client: conn2, stopAfter: cut });
      const tail = await read(6, { source, client: conn2, startAfter: JSON.parse(JSON.stringify(head.records.at(-1)!.pos)) });
      expect(joined([...head.records, ...tail.records]).map((r) => r.row.id)).toEqual(single.records.map((r) => r.row.id));
      expect(tail.watermark).toEqual(single.watermark);
    }
  }, 60_000);
});
