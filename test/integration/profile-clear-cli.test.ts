/**
 * Issue 12, "Clearing a field": a profile mapping field marked `clear: true` whose value is empty in the row is cleared
 * in Klaviyo through PATCH /api/profiles/{id} (the bulk import ignores empty values). Through the CLI against an
 * emulator in this process: what Klaviyo holds afterwards, the requests made (one lookup per 100 rows, one PATCH per
 * profile that holds a value to clear, nothing for the others), the report's `clears`, exit codes, and the rule.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { client } from '../unit/emulator/client.js';

const KEY = 'pk_profile_clear_00000000000000000';

interface HeldProfile {
  email: string | null;
  external_id: string | null;
  phone_number: string | null;
  first_name: string | null;
  location: { city: string | null };
  properties: Record<string, unknown>;
}

let tmp: string;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-clear-'));
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  const api = client(emulator.url, KEY);
  const upsert = async (attributes: Record<string, unknown>) =>
    expect((await api('POST', '/api/profile-import', { data: { type: 'profile', attributes } })).status).toBe(201);
  await upsert({ email: 'moved@example.com', phone_number: '+14155552671', location: { city: 'Oslo' }, properties: { tier: 'gold', source: 'crm' } });
  await upsert({ email: 'kept@example.com', phone_number: '+14155552672', properties: { tier: 'silver' } });
  await upsert({ email: 'nothing-held@example.com', first_name: 'N' });
});

afterAll(async () => {
  await emulator?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** What the emulator holds, by `by` (email unless told). */
async function held(by: 'email' | 'external_id' = 'email'): Promise<Map<string, HeldProfile>> {
  const text = await (await fetch(`${emulator.url}/_emulator/profiles?key=${KEY}`)).text();
  const all = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as HeldProfile);
  return new Map(all.flatMap((p) => (p[by] === null ? [] : [[p[by]!, p] as const])));
}

const ROWS = 'email,phone,city,tier\nmoved@example.com,,,\nkept@example.com,+14155552672,,silver\nnothing-held@example.com,,,\nnew@example.com,,,bronze\n';

async function run(name: string, mapping: string, csv = ROWS) {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'rows.csv'), csv);
  await writeFile(path.join(dir, 'pipeline.yaml'), `version: 1\nname: ${name}\nsource: { type: csv, path: rows.csv }\ntransform:\n  type: profile\n  profile:\n${mapping}\ndestination: { type: klaviyo }\n`);
  const reportFile = path.join(dir, 'report.json');
  const result = await cli(['run', path.join(dir, 'pipeline.yaml'), '--report', reportFile, '--state-dir', path.join(dir, 'state')], {
    env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY },
  });
  return { result, reportFile };
}

describe('clear: true (PATCH /api/profiles/{id})', () => {
  it('clears the empty fields a profile holds (null attribute, unset property), patches nothing else, and counts it', async () => {
    const { result, reportFile } = await run(
      'clear',
      `    email: email
    phone_number: { column: phone, clear: true }
    location:
      city: { column: city, clear: true }
    properties:
      tier: { column: tier, clear: true }`,
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.rows).toMatchObject({ read: 4, loaded: 4, rejected: 0 });
    // moved: phone, city and tier held → one PATCH clearing 3 fields; kept: city empty but none held; nothing-held and
    // new (not in Klaviyo yet): nothing to clear
    expect(report.clears).toEqual({ profiles: 1, fields: 3, unchanged: 3 });
    expect(report.requests.byEndpoint).toMatchObject({ 'GET /api/profiles': 1, 'PATCH /api/profiles/{id}': 1, 'POST /api/profile-bulk-import-jobs': 1 });
    expect(result.stdout).toContain('cleared   3 fields in 1 profiles');
    const now = await held();
    const moved = now.get('moved@example.com')!;
    expect(moved.phone_number).toBeNull();
    expect(moved.location.city).toBeNull();
    expect(moved.properties).toEqual({ source: 'crm' });
    expect(now.get('kept@example.com')).toMatchObject({ phone_number: '+14155552672', properties: { tier: 'silver' } });
    expect(now.get('new@example.com')).toMatchObject({ phone_number: null, properties: { tier: 'bronze' } });
  });

  it('finds a profile known only by external_id (any(external_id,[…])) and clears its fields', async () => {
    const api = client(emulator.url, KEY);
    const upsert = async (attributes: Record<string, unknown>) =>
      expect((await api('POST', '/api/profile-import', { data: { type: 'profile', attributes } })).status).toBe(201);
    await upsert({ external_id: 'crm-9', phone_number: '+14155552679', properties: { tier: 'gold', source: 'crm' } });
    await upsert({ external_id: 'crm-10', properties: { tier: 'silver' } });
    const { result, reportFile } = await run(
      'clear-external-id',
      `    external_id: id
    phone_number: { column: phone, clear: true }
    properties:
      tier: { column: tier, clear: true }`,
      'id,phone,tier\ncrm-9,,\ncrm-10,,silver\ncrm-new,,\n',
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.rows).toMatchObject({ read: 3, loaded: 3, rejected: 0 });
    // crm-9: phone and tier held → one PATCH clearing 2 fields; crm-10 holds no phone (its tier is kept);
    // crm-new is not in Klaviyo yet
    expect(report.clears).toEqual({ profiles: 1, fields: 2, unchanged: 2 });
    expect(report.requests.byEndpoint).toMatchObject({ 'GET /api/profiles': 1, 'PATCH /api/profiles/{id}': 1 });
    const now = await held('external_id');
    expect(now.get('crm-9')).toMatchObject({ email: null, phone_number: null, properties: { source: 'crm' } });
    expect(now.get('crm-10')!.properties).toEqual({ tier: 'silver' });
    expect(now.get('crm-new')).toBeDefined();
  });

  it('without clear, an empty value leaves what Klaviyo holds (the bulk import ignores it): no lookup, no PATCH', async () => {
    const api = client(emulator.url, KEY);
    await api('POST', '/api/profile-import', { data: { type: 'profile', attributes: { email: 'moved@example.com', phone_number: '+14155552671' } } });
    const { result, reportFile } = await run('no-clear', '    email: email\n    phone_number: phone');
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.clears).toBeUndefined();
    expect(report.requests.byEndpoint['PATCH /api/profiles/{id}']).toBeUndefined();
    expect(report.requests.byEndpoint['GET /api/profiles']).toBeUndefined();
    expect((await held()).get('moved@example.com')!.phone_number).toBe('+14155552671');
  });

  it('clear: true outside a profile mapping, or with required, is refused before any request (exit 2)', async () => {
    const dir = path.join(tmp, 'bad');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'rows.csv'), 'email\na@example.com\n');
    await writeFile(
      path.join(dir, 'pipeline.yaml'),
      'version: 1\nname: bad\nsource: { type: csv, path: rows.csv }\ntransform:\n  type: profile\n  profile:\n    email: { column: email, required: true, clear: true }\ndestination: { type: klaviyo }\n',
    );
    const result = await cli(['validate', path.join(dir, 'pipeline.yaml')]);
    expect(result.code).toBe(2);
    expect(result.stdout + result.stderr).toMatch(/CONFIG_RULE .*clear: true cannot be used with required/);
  });
});
