import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenProfile, instantKey } from '../../src/extract/klaviyo.js';
import { run } from '../../src/runner/index.js';
import { ROOT } from '../helpers/cli.js';

/** The example export pipeline and segment exports, run against the embedded emulator (run --emulator). */

const EXAMPLE = path.join(ROOT, 'pipelines', 'examples', 'list-members-export.yaml');
const SEED = path.join(ROOT, 'pipelines', 'examples', 'list-members-export.seed.json');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-example-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('pipelines/examples/list-members-export.yaml', () => {
  it('exports the seeded list through the embedded emulator to one gzip CSV', async () => {
    const out = path.join(tmp, 'example');
    const report = await run({ pipelineFile: EXAMPLE, env: { EXPORT_DIR: out }, emulator: { seedFile: SEED, limits: 'off' } });
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 5, loaded: 5, rejected: 0 });
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^list-members-\d{4}-\d\d-\d\d-[0-9a-f-]{36}\.csv\.gz$/);
    const rows = parse(gunzipSync(await readFile(path.join(out, files[0]!))).toString('utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.email).sort()).toEqual(['ada@example.com', 'alan@example.com', 'edsger@example.com', 'grace@example.com', 'katherine@example.com']);
    expect(rows.find((r) => r.email === 'ada@example.com')).toMatchObject({
      first_name: 'Ada',
      city: 'London',
      country: 'United Kingdom',
      tier: 'gold',
      email_consent: 'NEVER_SUBSCRIBED',
      profile_id: expect.stringMatching(/^[0-9A-Z]{26}$/),
    });
    expect(rows.find((r) => r.email === 'katherine@example.com')!.tier).toBe('');
  });

  it('--dry-run reads and maps every member and writes no file', async () => {
    const out = path.join(tmp, 'dry');
    const report = await run({ pipelineFile: EXAMPLE, env: { EXPORT_DIR: out }, emulator: { seedFile: SEED, limits: 'off' }, dryRun: true });
    expect(report.status).toBe('succeeded');
    expect(report.rows.read).toBe(5);
    await expect(readdir(out)).rejects.toThrow();
  });
});

describe('segment export', () => {
  it('exports the members of a segment (GET /api/segments/{id}/profiles)', async () => {
    const file = path.join(tmp, 'segment.yaml');
    await writeFile(
      file,
      `version: 1
name: segment-export
source: {type: klaviyo, segment: VipSeg, pageSize: 1}
transform: {type: export, columns: {email: email, tier: properties.tier}}
destination: {type: csv, path: out/vip.csv, delimiter: ";"}
`,
    );
    const report = await run({ pipelineFile: file, env: {}, emulator: { seedFile: SEED, limits: 'off' } });
    expect(report.status).toBe('succeeded');
    // two planning requests (the first and the last joined_group_at, one sorted page of size 1 each), then two pages
    // of size 1: no empty third page
    expect(report.requests.byEndpoint['GET /api/segments/{id}/profiles']).toBe(4);
    // exported members are rows of the file, not profiles loaded into Klaviyo
    expect(report.items).toMatchObject({ profiles: 0, exportRows: 2 });
    expect(report.rows.loaded).toBe(2);
    expect(await readFile(path.join(tmp, 'out', 'vip.csv'), 'utf8')).toBe('email;tier\nada@example.com;gold\nalan@example.com;gold\n');
  });
});

describe('export failures', () => {
  it('an unknown list fails the run with SOURCE_NOT_FOUND and publishes nothing', async () => {
    const file = path.join(tmp, 'unknown.yaml');
    await writeFile(
      file,
      `version: 1
name: unknown-export
source: {type: klaviyo, list: Nope00}
transform: {type: export, columns: {email: email}}
destination: {type: csv, path: out/unknown.csv}
`,
    );
    const report = await run({ pipelineFile: file, env: {}, emulator: { seedFile: SEED, limits: 'off' } });
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('SOURCE_NOT_FOUND');
    await expect(readFile(path.join(tmp, 'out', 'unknown.csv'))).rejects.toThrow();
  });

  it('without an API key (and no emulator) the run fails with MISSING_API_KEY', async () => {
    const file = path.join(tmp, 'nokey.yaml');
    await writeFile(file, `version: 1\nname: nokey-export\nsource: {type: klaviyo, list: Newsl1}\ntransform: {type: export, columns: {email: email}}\ndestination: {type: csv, path: out/nokey.csv}\n`);
    const report = await run({ pipelineFile: file, env: {}, stateDir: path.join(tmp, 'state') });
    expect(report.status).toBe('failed');
    expect(report.error?.code).toBe('MISSING_API_KEY');
  });
});

describe('flattening and instants', () => {
  it('flattens nested attributes into dotted keys, keeping arrays as values', () => {
    expect(
      flattenProfile({
        id: 'P1',
        attributes: { email: 'a@x.io', location: { city: 'Oslo' }, properties: { tags: ['a', 'b'] }, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
      }),
    ).toEqual({ id: 'P1', email: 'a@x.io', 'location.city': 'Oslo', 'properties.tags': ['a', 'b'], 'subscriptions.email.marketing.consent': 'SUBSCRIBED' });
  });

  it('orders joined_group_at at microsecond precision and across offsets', () => {
    const a = instantKey('2026-03-01T09:00:00.000001+00:00')!;
    const b = instantKey('2026-03-01T09:00:00.000002Z')!;
    expect(a).toBeLessThan(b);
    expect(instantKey('2026-03-01T10:00:00+01:00')).toBe(instantKey('2026-03-01T09:00:00Z'));
    expect(instantKey('2026-03-01')).toBeUndefined();
  });
});
