/**
 * `klaviyo-etl init` through the CLI: a starter pipeline from a CSV header (or a PostgreSQL table) maps the columns
 * it recognises (email, phone, names, dates with the format the sample rows show, order ids), leaves the others
 * commented, and the written file validates and dry-runs. Files as Excel writes them (Windows-1252, UTF-16LE with a
 * BOM) are read in their encoding, which the pipeline then names, so the first run loads every row intact.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { cli, ROOT } from '../helpers/cli.js';
import { client } from '../unit/emulator/client.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../helpers/postgres.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-init-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function validatesAndDryRuns(file: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const v = await cli(['validate', file], { env });
  expect(v.stdout + v.stderr).not.toMatch(/CONFIG_/);
  expect(v.code).toBe(0);
  const d = await cli(['run', file, '--dry-run', '--state-dir', dir], { env });
  expect(d.code, d.stdout + d.stderr).toBe(0);
}

describe('init from a CSV file', () => {
  it('customers: profile fields mapped, the date with its format, the rest commented; it validates and dry-runs', async () => {
    const out = path.join(dir, 'customers.yaml');
    const r = await cli(['init', path.join(ROOT, 'fixtures/customers.csv'), '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*customers\.yaml: a profile pipeline/);
    const text = await readFile(out, 'utf8');
    expect(text).toContain('email: { column: email, type: email }');
    expect(text).toMatch(/phone_number: \{ column: phone, type: phone, region: US, regionColumn: country \}/);
    expect(text).toContain('first_name: first_name');
    expect(text).toContain('last_name: last_name');
    expect(text).toContain('organization: company');
    expect(text).toMatch(/country: country/);
    expect(text).toMatch(/signup_date: \{ column: signup_date, type: date, format: MM\/dd\/yyyy \}/);
    expect(text).toMatch(/# loyalty_tier: loyalty_tier/);
    await validatesAndDryRuns(out);
    const again = await cli(['init', path.join(ROOT, 'fixtures/customers.csv'), '-o', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists: choose another --output, or --force/);
  });

  it('a Shopify orders export becomes Placed Order events grouped by order, with the datetime format and its offset', async () => {
    const out = path.join(dir, 'orders.yaml');
    const r = await cli(['init', path.join(ROOT, 'fixtures/orders/shopify-orders.csv'), '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(out, 'utf8');
    expect(text).toContain('type: event');
    expect(text).toContain('metric: Placed Order');
    expect(text).toContain('unique_id: { template: "order-{{Name}}" }');
    expect(text).toContain('time: { column: Created at, type: datetime, format: "yyyy-MM-dd HH:mm:ss ZZZ" }');
    expect(text).toContain('value: { column: Total, type: number }');
    expect(text).toContain('value_currency: Currency');
    expect(text).toMatch(/group:.*\n\s+by: Name/);
    await validatesAndDryRuns(out);
  });

  it('a file it has never seen: semicolons, day-first dates, an ambiguous date left commented with both readings', async () => {
    const csv = path.join(dir, 'Newsletter Export.csv');
    await writeFile(
      csv,
      'E-Mail;Vorname;Surname;Mobile;Geburtstag;Angemeldet;Kundennummer;Notiz\n' +
        'a@example.com;Anna;Berg;+49 151 23456789;24.12.1990;03/04/2021;C-1;hi\n' +
        'b@example.com;Ben;Cole;+49 160 9876543;01.02.1985;05/06/2022;C-2;\n',
    );
    const out = path.join(dir, 'newsletter.yaml');
    const r = await cli(['init', csv, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(out, 'utf8');
    expect(text).toContain('name: newsletter-export');
    expect(text).toContain('delimiter: ";"');
    expect(text).toContain('email: { column: E-Mail, type: email }');
    expect(text).toContain('last_name: Surname');
    expect(text).toContain('# Kundennummer: Kundennummer');
    expect(text).toMatch(/Geburtstag: \{ column: Geburtstag, type: date, format: dd\.MM\.yyyy \}/);
    expect(text).toMatch(/# Angemeldet: \{ column: Angemeldet, type: date, format: MM\/dd\/yyyy \}\s+# the samples also fit format dd\/MM\/yyyy/);
    expect(text).toMatch(/# Notiz: Notiz/);
    await validatesAndDryRuns(out);
  });

  it('- prints the pipeline; a missing file is an error', async () => {
    const r = await cli(['init', path.join(ROOT, 'fixtures/customers.csv'), '-o', '-']);
    expect(r.stdout).toMatch(/^# Starter pipeline/);
    expect((await cli(['init', path.join(dir, 'nope.csv'), '-o', '-'])).code).toBe(1);
    expect((await cli(['init'])).code).toBe(2);
  });
});

describe('init reads the files Excel writes', () => {
  const KEY = 'pk_init_encodings_000000000000000000';
  type Attributes = { first_name?: string; last_name?: string; location?: { city?: string }; properties?: Record<string, unknown> };

  /**
   * init, then `run --emulator` (every row loaded, none rejected), then the same run against an emulator whose
   * profiles are read back over its API: the attributes of each email.
   */
  async function initAndLoad(name: string, bytes: Buffer, emails: string[]): Promise<{ text: string; profiles: Record<string, Attributes> }> {
    const csv = path.join(dir, `${name}.csv`);
    await writeFile(csv, bytes);
    const out = path.join(dir, `${name}.yaml`);
    const r = await cli(['init', csv, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(out, 'utf8');
    const reportFile = path.join(dir, `${name}-report.json`);
    const run = await cli(['run', out, '--emulator', '--state-dir', path.join(dir, `state-${name}`), '--report', reportFile]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(JSON.parse(await readFile(reportFile, 'utf8')).rows).toEqual({ read: emails.length, loaded: emails.length, rejected: 0, skipped: 0 });
    const emulator = await startEmulator({ port: 0, limits: 'off' });
    try {
      const real = await cli(['run', out, '--state-dir', path.join(dir, `state-${name}-api`)], { env: { KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY } });
      expect(real.code, real.stdout + real.stderr).toBe(0);
      const call = client(emulator.url, KEY);
      const profiles: Record<string, Attributes> = {};
      for (const email of emails) {
        profiles[email] = (await call('GET', `/api/profiles?filter=${encodeURIComponent(`equals(email,"${email}")`)}`)).json.data[0]?.attributes;
      }
      return { text, profiles };
    } finally {
      await emulator.close();
    }
  }

  it('a Windows-1252 semicolon file from Excel: accented headers and values decoded, `encoding: windows-1252` written with how it was guessed', async () => {
    const csv = ['E-Mail;First Name;Last Name;City;Créé le;Société', 'zoe@example.com;Zoë;Müller;Köln;24.12.2021;Bäckerei', 'rene@example.com;René;Façade;Orléans;01.02.2022;Crème & Brûlée', 'asa@example.com;Åsa;Ståhl;Malmö;15.03.2022;'].join('\r\n') + '\r\n';
    const { text, profiles } = await initAndLoad('excel-1252', iconv.encode(csv, 'windows-1252'), ['zoe@example.com', 'rene@example.com', 'asa@example.com']);
    expect(text).toMatch(/# encoding guessed: the file is not UTF-8, so it is taken for Windows-1252/);
    expect(text).toMatch(/^  encoding: windows-1252$/m);
    expect(text).toContain('delimiter: ";"');
    expect(text).toContain('"Créé le": { column: "Créé le", type: date, format: dd.MM.yyyy }');
    expect(text).toContain('# "Société": "Société"');
    expect(text).not.toContain('\ufffd');
    expect(profiles['zoe@example.com']).toMatchObject({ first_name: 'Zoë', last_name: 'Müller', location: { city: 'Köln' } });
    expect(profiles['rene@example.com']).toMatchObject({ first_name: 'René', last_name: 'Façade', location: { city: 'Orléans' } });
    expect(profiles['asa@example.com']).toMatchObject({ first_name: 'Åsa', last_name: 'Ståhl', location: { city: 'Malmö' } });
    expect(Object.keys(profiles['zoe@example.com']!.properties ?? {})).toContain('Créé le');
  }, 60_000);

  it('a UTF-16LE tab-separated file with a BOM (Excel\'s "Unicode text"): `encoding: utf-16le` and a tab delimiter', async () => {
    const tsv = ['Email\tFirst Name\tLast Name\tCity\tDernière commande', 'jose@example.com\tJosé\tNúñez\tSão Paulo\t2024-03-01', 'lukasz@example.com\tŁukasz\tWójcik\tGdańsk\t2024-02-29'].join('\r\n') + '\r\n';
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(tsv, 'utf-16le')]);
    const { text, profiles } = await initAndLoad('excel-unicode', bytes, ['jose@example.com', 'lukasz@example.com']);
    expect(text).toMatch(/^  encoding: utf-16le   # the file starts with a UTF-16LE byte order mark$/m);
    expect(text).toContain('delimiter: "\\t"');
    expect(text).toContain('email: { column: Email, type: email }');
    expect(text).toContain('"Dernière commande": { column: "Dernière commande", type: date, format: yyyy-MM-dd }');
    expect(profiles['jose@example.com']).toMatchObject({ first_name: 'José', last_name: 'Núñez', location: { city: 'São Paulo' } });
    expect(profiles['lukasz@example.com']).toMatchObject({ first_name: 'Łukasz', last_name: 'Wójcik', location: { city: 'Gdańsk' } });
    expect(profiles['lukasz@example.com']!.properties).toHaveProperty(['Dernière commande']);
  }, 60_000);

  it('a UTF-8 file gets no encoding line', async () => {
    const r = await cli(['init', path.join(ROOT, 'fixtures/customers.csv'), '-o', '-']);
    expect(r.stdout).not.toMatch(/encoding/);
  });
});

describe('init from a PostgreSQL table', () => {
  let schema: TestSchema;
  beforeAll(async () => {
    schema = await createTestSchema('etl_init');
    await schema.client.query(
      'CREATE TABLE customers (id bigint PRIMARY KEY, email text, phone_number text, first_name text, updated_at timestamptz, birthday date, notes text)',
    );
    await schema.client.query("INSERT INTO customers VALUES (1, 'a@example.com', '+14155550100', 'Ann', now(), '1990-12-24', 'x')");
  });
  afterAll(async () => {
    await schema?.drop();
  });

  it('maps the columns, sets an incremental cursor, and the file validates with ${DATABASE_URL}', async () => {
    const out = path.join(dir, 'pg-customers.yaml');
    const env = { DATABASE_URL: testDatabaseUrl() };
    const r = await cli(['init', '--table', `${schema.name}.customers`, '-o', out], { env });
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(out, 'utf8');
    expect(text).toContain('url: ${DATABASE_URL}');
    expect(text).not.toContain(testDatabaseUrl());
    expect(text).toContain('cursor: [updated_at, id]');
    expect(text).toContain('email: { column: email, type: email }');
    expect(text).toMatch(/updated_at: \{ column: updated_at, type: datetime, format: iso \}/);
    expect(text).toMatch(/birthday: \{ column: birthday, type: date, format: yyyy-MM-dd \}/);
    expect(text).toContain('# notes: notes');
    await validatesAndDryRuns(out, env);
  });
});
