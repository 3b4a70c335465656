import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { ROOT, cli } from '../helpers/cli.js';

/*
 * Issue 15, "Mappings people need", through the built CLI: the `where:` row filter, profiles and their consent from
 * one file, `run --dry-run --show N`, and `klaviyo-etl test <pipeline>`. Files are written the way users make them
 * (a Shopify-style orders export with refunded and test orders, a CRM export with an opt-in column).
 */

let tmp: string;
const file = (name: string) => path.join(tmp, name);

const ORDERS_CSV = [
  'Name,Email,Financial Status,Tags,Total,Created at',
  '#1001,ann@example.com,paid,,25.00,2024-03-01 10:00:00 +0000',
  '#1002,bob@example.com,refunded,,12.50,2024-03-02 11:00:00 +0000',
  '#1003,qa@example.com,paid,"test, internal",1.00,2024-03-03 12:00:00 +0000',
  '#1004,cat@example.com,Refunded,,40.00,2024-03-04 13:00:00 +0000',
  '#1005,dan@example.com,paid,vip,99.90,2024-03-05 14:00:00 +0000',
].join('\n');

const ORDERS_PIPELINE = `version: 1
name: orders-where
source: {type: csv, path: orders.csv}
transform:
  type: event
  metric: Placed Order
  unique_id: {template: "order-{{Name}}"}
  profile: {email: Email}
  value: {column: Total, type: number}
  time: {column: Created at, type: datetime, format: "yyyy-MM-dd HH:mm:ss ZZZ"}
  where:
    - {column: Financial Status, not_in: [refunded, voided], ignoreCase: true}
    - {column: Tags, not_contains: test}
destination: {type: klaviyo}
`;

const CONSENT_CSV = [
  'Email,First Name,City,Opt In,Opted In At',
  'ann@example.com,Ann,Lyon,yes,2023-05-01 09:30',
  'bob@example.com,Bob,Paris,no,',
  'cat@example.com,Cat,Nice,yes,2023-06-02 18:00',
].join('\n');

const CONSENT_PIPELINE = `version: 1
name: crm-with-consent
source: {type: csv, path: crm.csv}
transform:
  type: profile
  profile:
    email: Email
    first_name: First Name
    location: {city: City}
  subscribe:
    channels: {email: {marketing: true}}
    historical_import: true
    consented_at: {column: Opted In At, type: datetime, format: "yyyy-MM-dd HH:mm", zone: Europe/Paris}
    when: {column: Opt In, type: boolean}
destination: {type: klaviyo}
`;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-mappings-'));
  await writeFile(file('orders.csv'), ORDERS_CSV);
  await writeFile(file('orders.yaml'), ORDERS_PIPELINE);
  await writeFile(file('crm.csv'), CONSENT_CSV);
  await writeFile(file('crm.yaml'), CONSENT_PIPELINE);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('where: a row filter on the transform', () => {
  it('skips refunded and test orders, counted per condition in the report and the summary, and loads the rest', async () => {
    const reportFile = file('where-report.json');
    const result = await cli(['run', file('orders.yaml'), '--emulator', '--report', reportFile, '--state-dir', file('state-where')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.rows).toMatchObject({ read: 5, loaded: 2, rejected: 0, skipped: 3 });
    expect(report.skippedBy).toEqual({
      'where[0]: Financial Status not_in ["refunded", "voided"] (ignoring case)': 2,
      'where[1]: Tags not_contains "test"': 1,
    });
    expect(report.emulator.state.eventsByMetric['Placed Order']).toBe(2);
    expect(result.stdout).toContain('skipped   2 × where[0]: Financial Status not_in ["refunded", "voided"] (ignoring case)');
    expect(result.stdout).toContain('skipped   1 × where[1]: Tags not_contains "test"');
  });

  it('a condition with two operators, or an unknown operator, is a problem with file:line:col', async () => {
    await writeFile(
      file('bad-where.yaml'),
      ORDERS_PIPELINE.replace('{column: Tags, not_contains: test}', '{column: Tags, not_contains: test, equals: x}').replace('ignoreCase: true', 'ignorecase: true'),
    );
    const result = await cli(['validate', file('bad-where.yaml')]);
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/bad-where\.yaml:12:62 {2}CONFIG_UNKNOWN_KEY {2}transform\.where\[0\]\.ignorecase: unknown key "ignorecase" \(did you mean "ignoreCase"\?\)/);
    expect(result.stdout).toMatch(/bad-where\.yaml:13:7 {2}CONFIG_RULE {2}transform\.where\[1\]: a where condition has exactly one operator, got 2: equals, not_contains/);
  });

  it('a number condition over a value that is not a number rejects the row (never skips it silently)', async () => {
    await writeFile(file('orders-gt.csv'), ['Name,Email,Score', '#1,a@example.com,20', '#2,b@example.com,vip', '#3,c@example.com,'].join('\n'));
    const pipeline = ORDERS_PIPELINE.replace('orders.csv', 'orders-gt.csv')
      .replace(/ {2}value:.*\n {2}time:.*\n/, '')
      .replace(/ {2}where:[\s\S]*?destination/, '  where:\n    - {column: Score, gt: 10}\ndestination')
      .replace('orders-where', 'orders-gt');
    await writeFile(file('orders-gt.yaml'), pipeline);
    const reportFile = file('gt-report.json');
    const result = await cli(['run', file('orders-gt.yaml'), '--dry-run', '--report', reportFile, '--state-dir', file('state-gt')]);
    expect(result.code).toBe(3);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    // "vip" is not a number (rejected, INVALID_NUMBER); the empty score does not meet the condition (skipped)
    expect(report.rows).toMatchObject({ read: 3, loaded: 1, rejected: 1, skipped: 1 });
    const rejects = (await readFile(path.resolve(ROOT, report.rejects.file), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[3, 'INVALID_NUMBER']]);
  });
});

describe('profiles and their consent from one file', () => {
  let emulator: EmulatorHandle;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, limits: 'off', subscriptionDelayMs: 0 }); // consent applied at once, to read it back
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('imports every profile with its attributes, then subscribes the rows that opted in, with their consent time', async () => {
    const apiKey = 'pk_mappings_consent_0123456789';
    const reportFile = file('consent-report.json');
    const result = await cli(['run', file('crm.yaml'), '--report', reportFile, '--state-dir', file('state-consent')], {
      env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: apiKey },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8'));
    expect(report.rows).toMatchObject({ read: 3, loaded: 3, rejected: 0, skipped: 0 });
    expect(report.items).toMatchObject({ profiles: 3, subscriptions: 2 });
    expect(report.requests.byEndpoint).toMatchObject({ 'POST /api/profile-bulk-import-jobs': 1, 'POST /api/profile-subscription-bulk-create-jobs': 1 });
    // read back through Klaviyo's API, with consent (additional-fields[profile]=subscriptions)
    const res = await fetch(`${emulator.url}/api/profiles?additional-fields[profile]=subscriptions&page[size]=100`, {
      headers: { authorization: `Klaviyo-API-Key ${apiKey}`, revision: '2026-07-15', accept: 'application/vnd.api+json' },
    });
    expect(res.status).toBe(200);
    type Attrs = { email: string; first_name?: string; location?: { city?: string }; subscriptions?: { email?: { marketing?: { consent?: string; consent_timestamp?: string } } } };
    const body = (await res.json()) as { data: { attributes: Attrs }[] };
    const byEmail = new Map(body.data.map((p) => [p.attributes.email, p.attributes]));
    expect(byEmail.get('ann@example.com')).toMatchObject({ first_name: 'Ann', location: { city: 'Lyon' }, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } });
    expect(byEmail.get('ann@example.com')?.subscriptions?.email?.marketing?.consent_timestamp).toMatch(/^2023-05-01T07:30:00/);
    expect(byEmail.get('cat@example.com')).toMatchObject({ first_name: 'Cat', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } });
    expect(byEmail.get('bob@example.com')).toMatchObject({ first_name: 'Bob' });
    expect(byEmail.get('bob@example.com')?.subscriptions?.email?.marketing?.consent).not.toBe('SUBSCRIBED');
  });

  it('--dry-run --show prints the profile import before the subscription job, exactly as sent, the key redacted', async () => {
    const result = await cli(['run', file('crm.yaml'), '--dry-run', '--show', '5', '--state-dir', file('state-consent-dry')], {
      env: { KLAVIYO_API_KEY: 'pk_secret_never_shown_0123456789' },
    });
    expect(result.code).toBe(0);
    const profileAt = result.stdout.indexOf('POST https://a.klaviyo.com/api/profile-bulk-import-jobs');
    const subscribeAt = result.stdout.indexOf('POST https://a.klaviyo.com/api/profile-subscription-bulk-create-jobs');
    expect(profileAt).toBeGreaterThanOrEqual(0);
    expect(subscribeAt).toBeGreaterThan(profileAt);
    expect(result.stdout).toContain('── request 1 of 2 ──');
    expect(result.stdout).toContain('authorization: Klaviyo-API-Key <KLAVIYO_API_KEY: redacted>');
    expect(result.stdout).toContain('"historical_import": true');
    expect(result.stdout).toContain('"consented_at": "2023-05-01T07:30:00Z"');
    expect(result.stdout).not.toContain('pk_secret_never_shown');
  });
});

describe('run --dry-run --show N', () => {
  it('prints the first N requests (URL, headers, body) and says how many more a real run would send', async () => {
    const result = await cli(['run', file('orders.yaml'), '--dry-run', '--show', '1', '--state-dir', file('state-show')]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('── request 1 of 1 ──\nPOST https://a.klaviyo.com/api/event-bulk-create-jobs\nauthorization: Klaviyo-API-Key <KLAVIYO_API_KEY: redacted>\nrevision: 2026-07-15');
    expect(result.stdout).toContain('"unique_id": "order-#1001"');
    expect(result.stdout).not.toContain('order-#1002'); // skipped by where:
  });

  it('--json puts the requests beside the report, bodies as JSON', async () => {
    const result = await cli(['run', file('orders.yaml'), '--dry-run', '--show', '3', '--json', '--state-dir', file('state-show-json')]);
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out.status).toBe('succeeded');
    expect(out.preview).toHaveLength(1);
    expect(out.preview[0].body.data.type).toBe('event-bulk-create-job');
  });

  it('--show without --dry-run, or not a positive integer, is a usage error (exit 2)', async () => {
    expect((await cli(['run', file('orders.yaml'), '--show', '1'])).code).toBe(2);
    expect((await cli(['run', file('orders.yaml'), '--dry-run', '--show', '0'])).code).toBe(2);
  });
});

describe('klaviyo-etl test <pipeline>', () => {
  const TESTS = `tests:
  - name: a paid order becomes a Placed Order
    rows:
      - {Name: "#1", Email: Ann@Example.com, Financial Status: paid, Tags: "", Total: 25, Created at: "2024-03-01 10:00:00 +0000"}
    expect:
      items:
        - profile: {email: ann@example.com}
          event: {metric: Placed Order, unique_id: "order-#1", value: 25, time: "2024-03-01T10:00:00Z", properties: {}}
  - name: refunded and test orders are skipped, a bad email rejected
    rows:
      - {Name: "#2", Email: b@example.com, Financial Status: REFUNDED}
      - {Name: "#3", Email: q@example.com, Financial Status: paid, Tags: test}
      - {Name: "#4", Email: not-an-email, Financial Status: paid}
    expect:
      items: []
      skipped: 2
      rejects: [{row: 3, code: INVALID_EMAIL}]
`;

  it('passes with exit 0 when every test matches', async () => {
    await writeFile(file('tested.yaml'), ORDERS_PIPELINE + TESTS);
    const result = await cli(['test', file('tested.yaml')]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('ok    a paid order becomes a Placed Order');
    expect(result.stdout).toContain('orders-where: 2 test(s), all passed');
    expect(result.code).toBe(0);
  });

  it('fails with exit 1 and a readable diff on a mismatch, naming the test and its line', async () => {
    await writeFile(file('tested-bad.yaml'), ORDERS_PIPELINE + TESTS.replace('value: 25,', 'value: 26,').replace('skipped: 2', 'skipped: 1'));
    const result = await cli(['test', file('tested-bad.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL {2}a paid order becomes a Placed Order {2}\(.*tested-bad\.yaml:16\)/);
    expect(result.stdout).toContain('items differ (- expected, + actual):');
    expect(result.stdout).toMatch(/- +"value": 26/);
    expect(result.stdout).toMatch(/\+ +"value": 25/);
    expect(result.stdout).toContain('- expected 1 skipped row(s)');
    expect(result.stdout).toContain('orders-where: 2 test(s), 2 failed');
  });

  it('needs no database or API key: a postgres pipeline is tested without DATABASE_URL', async () => {
    const pg = `version: 1
name: pg-tested
source: {type: postgres, url: "\${DATABASE_URL}", table: customers}
transform:
  type: profile
  profile: {email: email, properties: {Orders: {column: orders, type: integer}}}
destination: {type: klaviyo}
tests:
  - name: typed values pass through
    rows: [{email: a@example.com, orders: 3}]
    expect: {items: [{email: a@example.com, properties: {Orders: 3}}]}
`;
    await writeFile(file('pg-tested.yaml'), pg);
    const result = await cli(['test', file('pg-tested.yaml'), '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)[0]).toMatchObject({ pipeline: 'pg-tested', passed: true });
  });

  it('a pipeline without tests is a usage error (exit 2)', async () => {
    const result = await cli(['test', file('orders.yaml')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('has no tests');
  });
});
