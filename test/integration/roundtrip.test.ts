import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { run } from '../../src/runner/index.js';
import { readAll } from '../helpers/export-seed.js';
import { client } from '../unit/emulator/client.js';

/**
 * Round trip (issue 13): the example pipeline pairs export every event and profile of one emulator account and
 * import them into another; both accounts then hold the same events and profiles, Klaviyo's ids and timestamps aside.
 * The source account is filled by two other examples (a Shopify orders backfill and a customers CSV), with data
 * not written for this test.
 */

const EXAMPLES = path.resolve(__dirname, '../../pipelines/examples');
const SOURCE_KEY = 'pk_roundtrip_source_00000000000000';
const TARGET_KEY = 'pk_roundtrip_target_00000000000000';
let emu: EmulatorHandle;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-roundtrip-'));
  emu = await startEmulator({ port: 0, limits: 'off' });
});

afterAll(async () => {
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function runExample(name: string, key: string, fullRefresh = false): Promise<Awaited<ReturnType<typeof run>>> {
  const env = { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: key, EXPORT_DIR: path.join(tmp, 'exports') };
  const report = await run({ pipelineFile: path.join(EXAMPLES, `${name}.yaml`), env, stateDir: path.join(tmp, 'state', key), fullRefresh });
  expect(report.status, `${name}: ${JSON.stringify(report.error)}`).toBe('succeeded');
  return report;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Resource = any;

/** The events of an account, keyed by metric, profile email and time: their properties. */
async function events(key: string): Promise<Map<string, unknown>> {
  const { data, included } = await readAll(client(emu.url, key), '/api/events?page[size]=1000&include=profile,metric');
  const byKey = new Map(included.map((r: Resource) => [`${r.type}:${r.id}`, r]));
  const out = new Map<string, unknown>();
  for (const e of data as Resource[]) {
    const metric = byKey.get(`metric:${e.relationships.metric.data.id}`)?.attributes.name;
    const email = byKey.get(`profile:${e.relationships.profile.data.id}`)?.attributes.email;
    out.set(`${metric}|${email}|${e.attributes.datetime}|${e.attributes.event_properties.$event_id}`, e.attributes.event_properties);
  }
  return out;
}

/** The profiles of an account by email: their attributes without Klaviyo's ids and timestamps. */
async function profiles(key: string): Promise<Map<string, unknown>> {
  const { data } = await readAll(client(emu.url, key), '/api/profiles?page[size]=100');
  return new Map(
    (data as Resource[]).map((p) => {
      const { created: _c, updated: _u, last_event_date: _l, ...attributes } = p.attributes;
      return [attributes.email ?? attributes.phone_number, attributes];
    }),
  );
}

describe('round trip: export from one account, import into another', () => {
  it('events and profiles end identical, ids aside', async () => {
    await runExample('customers-csv', SOURCE_KEY);
    await runExample('shopify-orders-backfill', SOURCE_KEY);
    const sourceEvents = await events(SOURCE_KEY);
    const sourceProfiles = await profiles(SOURCE_KEY);
    expect(sourceEvents.size).toBeGreaterThan(10);
    expect(sourceProfiles.size).toBeGreaterThan(10);

    const exportedEvents = await runExample('roundtrip-events-export', SOURCE_KEY);
    const exportedProfiles = await runExample('roundtrip-profiles-export', SOURCE_KEY);
    expect(exportedEvents.rows.loaded).toBe(sourceEvents.size);
    expect(exportedProfiles.rows.loaded).toBe(sourceProfiles.size);

    const importedProfiles = await runExample('roundtrip-profiles-import', TARGET_KEY);
    const importedEvents = await runExample('roundtrip-events-import', TARGET_KEY);
    expect(importedProfiles.rows.rejected).toBe(0);
    expect(importedEvents.rows.rejected).toBe(0);

    expect(await profiles(TARGET_KEY)).toEqual(sourceProfiles);
    expect(await events(TARGET_KEY)).toEqual(sourceEvents);

    // importing the same file again (every row re-read) changes nothing: the unique_ids dedupe the events
    const again = await runExample('roundtrip-events-import', TARGET_KEY, true);
    expect(again.rows.read).toBe(sourceEvents.size);
    expect(await events(TARGET_KEY)).toEqual(sourceEvents);
  });
});
