import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { ROOT, cli, spawnCli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';

/*
 * PostgreSQL → Klaviyo end to end through the BUILT CLI (`npm run build` first), against a standalone emulator
 * (it outlives each CLI process, so several runs, and a SIGKILL, see the same account) and the real PostgreSQL
 * server, in a schema of its own dropped afterwards.
 */

const ORDERS_EXAMPLE = path.join(ROOT, 'pipelines/examples/orders-postgres-nightly.yaml');
const CUSTOMERS_EXAMPLE = path.join(ROOT, 'pipelines/examples/customers-postgres.yaml');
const T0 = '2026-03-10T12:00:00.000Z';
const API_KEY = 'pk_pipeline_postgres_0123456789';
/** Client-side rate limits lifted for pipelines that send many small batches to an emulator with limits off. */
const NO_CLIENT_LIMITS = `  rateLimits:
    "POST /api/event-bulk-create-jobs": { burst: 100000, steady: 6000000 }
`;

interface Report {
  status: string;
  resumed: boolean;
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  items: { events: number; profiles: number };
  error?: { code: string; message: string };
}
interface EmulatorState {
  profiles: number;
  events: number;
  eventsByMetric: Record<string, number>;
  duplicateEventsIgnored: number;
}
interface EmulatorEvent {
  metric: string;
  email: string | null;
  unique_id: string | null;
  value: number | null;
  time: string;
  properties: Record<string, unknown>;
}

let db: TestSchema;
let tmp: string;

beforeAll(async () => {
  db = await createTestSchema('etl_pipe_pg');
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-pipe-pg-'));
});
afterAll(async () => {
  await db?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let runCount = 0;
/** Run the CLI on a pipeline against `emulatorUrl`; returns its exit code and JSON report. */
async function runPipeline(
  file: string,
  stateDir: string,
  emulatorUrl: string | undefined,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; report: Report; stderr: string }> {
  const reportFile = path.join(tmp, `report-${++runCount}.json`);
  const result = await cli(['run', file, '--state-dir', stateDir, '--report', reportFile, ...args], {
    env: {
      DATABASE_URL: db.url,
      PG_SCHEMA: db.name,
      ...(emulatorUrl ? { KLAVIYO_BASE_URL: emulatorUrl, KLAVIYO_API_KEY: API_KEY } : {}),
      ...env,
    },
  });
  let report: Report;
  try {
    report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  } catch {
    throw new Error(`no report (exit ${result.code}): ${result.stderr}\n${result.stdout}`);
  }
  return { code: result.code, report, stderr: result.stderr };
}

async function emulatorState(emulator: EmulatorHandle): Promise<EmulatorState> {
  const res = await fetch(`${emulator.url}/_emulator/state?key=${API_KEY}`);
  return (await res.json()) as EmulatorState;
}

async function emulatorEvents(emulator: EmulatorHandle): Promise<EmulatorEvent[]> {
  const res = await fetch(`${emulator.url}/_emulator/events?key=${API_KEY}`);
  return (await res.text())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as EmulatorEvent);
}

async function storedWatermark(stateDir: string, pipeline: string): Promise<unknown> {
  const checkpoint = JSON.parse(await readFile(path.join(stateDir, pipeline, 'checkpoint.json'), 'utf8')) as { watermark?: unknown };
  return checkpoint.watermark;
}

async function count(sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await db.client.query<{ n: string }>(`SELECT count(*)::text AS n FROM (${sql}) AS q`, values);
  return Number(rows[0]!.n);
}

const ORDERS_TABLE = `CREATE TABLE orders (
  id bigint PRIMARY KEY,
  order_number text NOT NULL,
  email text NOT NULL,
  total numeric(12, 2) NOT NULL,
  currency text NOT NULL,
  placed_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  status text NOT NULL,
  line_items jsonb NOT NULL
)`;

describe('orders-postgres-nightly example: incremental runs through the CLI', () => {
  let emulator: EmulatorHandle;
  let stateDir: string;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, host: '127.0.0.1', limits: 'off' });
    stateDir = path.join(tmp, 'state-nightly');
    await db.client.query(ORDERS_TABLE);
    // 300 orders with even ids; updated every 10 minutes up to T0, the last three tied at T0; every 50th is a
    // 'test' order the example's query filters out.
    await db.client.query(
      `INSERT INTO orders
       SELECT 2 * k, 'A' || lpad(k::text, 5, '0'), 'buyer' || k || '@example.com', (k * 1.25)::numeric(12, 2), 'USD',
              $1::timestamptz - interval '1 day' - (300 - k) * interval '10 minutes',
              $1::timestamptz - greatest(298 - k, 0) * interval '10 minutes',
              CASE WHEN k % 50 = 7 THEN 'test' ELSE 'paid' END,
              jsonb_build_array(jsonb_build_object('sku', 'SKU-' || k, 'qty', 1 + k % 3))
       FROM generate_series(1, 300) AS k`,
      [T0],
    );
  });
  afterAll(async () => {
    await emulator?.close();
  });

  const sendable = (where: string, values: unknown[] = []) => count(`SELECT 1 FROM orders WHERE status <> 'test' AND (${where})`, values);

  it('first run sends every order (not the test ones) as a Placed Order with its total, items and unique_id', async () => {
    const { code, report } = await runPipeline(ORDERS_EXAMPLE, stateDir, emulator.url);
    expect(code).toBe(0);
    const expected = await sendable('true');
    expect(expected).toBe(294);
    expect(report).toMatchObject({ status: 'succeeded', rows: { read: expected, loaded: expected, rejected: 0 } });
    const state = await emulatorState(emulator);
    expect(state.eventsByMetric['Placed Order']).toBe(expected);
    expect(state.duplicateEventsIgnored).toBe(0);
    const events = await emulatorEvents(emulator);
    const a42 = events.find((e) => e.unique_id === 'order-A00042');
    expect(a42).toMatchObject({ email: 'buyer42@example.com', value: 52.5, properties: { OrderNumber: 'A00042', Items: [{ sku: 'SKU-42', qty: 1 }] } });
    expect(events.some((e) => e.unique_id === 'order-A00007')).toBe(false); // status 'test'
    expect(await storedWatermark(stateDir, 'orders-postgres-nightly')).toEqual({ cursor: { updated_at: '2026-03-10T12:00:00+00:00', id: '600' } });
  });

  it('nightly run sends only rows updated since (lookback re-reads deduplicated by unique_id), none lost at the boundary', async () => {
    const before = await emulatorState(emulator);
    // a late commit: id allocated before the boundary row, committed with the boundary's updated_at
    await db.client.query(
      `INSERT INTO orders VALUES (151, 'LATE1', 'late@example.com', 10, 'USD', $1::timestamptz - interval '3 hours', $1, 'paid', '[]')`,
      [T0],
    );
    // new orders: five tied with the boundary row (higher ids), five an hour later
    await db.client.query(
      `INSERT INTO orders
       SELECT 600 + k, 'N' || k, 'new' || k || '@example.com', 20 + k, 'EUR', $1::timestamptz, $1::timestamptz + CASE WHEN k <= 5 THEN interval '0' ELSE interval '1 hour' END, 'paid', '[]'
       FROM generate_series(1, 10) AS k`,
      [T0],
    );
    // updates of old orders (already sent: their re-sent events are duplicates), one of them a test order
    await db.client.query(`UPDATE orders SET updated_at = $1::timestamptz + interval '30 minutes', total = total + 1 WHERE id IN (14, 20, 40)`, [T0]);

    const expectedRead = await sendable(`updated_at >= $1::timestamptz - interval '2 hours'`, [T0]);
    const { code, report } = await runPipeline(ORDERS_EXAMPLE, stateDir, emulator.url);
    expect(code).toBe(0);
    expect(report.status).toBe('succeeded');
    expect(report.rows.read).toBe(expectedRead);
    expect(expectedRead).toBeLessThan(40); // only the lookback window and the changes, not the table
    const state = await emulatorState(emulator);
    expect(state.eventsByMetric['Placed Order'] - before.eventsByMetric['Placed Order']!).toBe(11);
    expect(state.duplicateEventsIgnored - before.duplicateEventsIgnored).toBe(expectedRead - 11);
    const events = await emulatorEvents(emulator);
    const uniqueIds = events.map((e) => e.unique_id);
    expect(new Set(uniqueIds).size).toBe(uniqueIds.length);
    const { rows } = await db.client.query<{ order_number: string }>(`SELECT order_number FROM orders WHERE status <> 'test'`);
    expect(new Set(uniqueIds)).toEqual(new Set(rows.map((r) => `order-${r.order_number}`)));
    expect(events.find((e) => e.unique_id === 'order-LATE1')?.email).toBe('late@example.com');
    expect(await storedWatermark(stateDir, 'orders-postgres-nightly')).toEqual({ cursor: { updated_at: '2026-03-10T13:00:00+00:00', id: '610' } });
  });

  it('--since/--until bound one run (a backfill window) without moving the stored watermark', async () => {
    const watermark = await storedWatermark(stateDir, 'orders-postgres-nightly');
    const before = await emulatorState(emulator);
    const since = '2026-03-08T20:00:00Z';
    const until = '2026-03-09T06:00:00Z';
    const expected = await sendable(`updated_at >= $1 AND updated_at < $2`, [since, until]);
    expect(expected).toBeGreaterThan(40);
    const { code, report } = await runPipeline(ORDERS_EXAMPLE, stateDir, emulator.url, ['--since', since, '--until', until]);
    expect(code).toBe(0);
    expect(report.rows.read).toBe(expected);
    const state = await emulatorState(emulator);
    expect(state.duplicateEventsIgnored - before.duplicateEventsIgnored).toBe(expected); // all sent before
    expect(state.events).toBe(before.events);
    expect(await storedWatermark(stateDir, 'orders-postgres-nightly')).toEqual(watermark);
  });

  it('--limit N reads N rows and does not move the watermark; the next nightly run starts from the stored one', async () => {
    const watermark = await storedWatermark(stateDir, 'orders-postgres-nightly');
    const limited = await runPipeline(ORDERS_EXAMPLE, stateDir, emulator.url, ['--limit', '3']);
    expect(limited.code).toBe(0);
    expect(limited.report.rows.read).toBe(3);
    expect(await storedWatermark(stateDir, 'orders-postgres-nightly')).toEqual(watermark);

    const expected = await sendable(`updated_at >= timestamptz '2026-03-10T13:00:00Z' - interval '2 hours'`);
    const nightly = await runPipeline(ORDERS_EXAMPLE, stateDir, emulator.url);
    expect(nightly.code).toBe(0);
    expect(nightly.report.rows.read).toBe(expected);
  });
});

describe('hostile values', () => {
  let emulator: EmulatorHandle;
  const HOSTILE = [
    `a'; DROP TABLE hostile; --`,
    `b"quoted" 'single' \`back\``,
    `c\\'; DELETE FROM hostile WHERE true; --`,
    `d$1 $$dollar$$ %s %%`,
    `e'); TRUNCATE hostile; --`,
  ];
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, host: '127.0.0.1', limits: 'off' });
    await db.client.query(`CREATE TABLE hostile (ref text PRIMARY KEY, email text NOT NULL, note text)`);
    for (const [i, ref] of HOSTILE.entries()) {
      await db.client.query(`INSERT INTO hostile VALUES ($1, $2, $3)`, [ref, `h${i}@example.com`, `${ref} -- note`]);
    }
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('quotes and SQL in values and in the stored text cursor change nothing and arrive verbatim', async () => {
    const file = path.join(tmp, 'hostile.yaml');
    await writeFile(
      file,
      `version: 1
name: hostile
source:
  type: postgres
  url: \${DATABASE_URL}
  table: \${PG_SCHEMA}.hostile
  cursor: [ref]
transform:
  type: event
  metric: Hostile
  profile:
    email: { column: email, type: email }
  unique_id: { template: "h-{{ref}}" }
  properties:
    Ref: ref
    Note: note
destination:
  type: klaviyo
`,
    );
    const stateDir = path.join(tmp, 'state-hostile');
    const first = await runPipeline(file, stateDir, emulator.url);
    expect(first.code).toBe(0);
    expect(first.report.rows.read).toBe(HOSTILE.length);
    const events = await emulatorEvents(emulator);
    expect(events.map((e) => e.properties.Ref).sort()).toEqual([...HOSTILE].sort());
    for (const e of events) expect(e.properties.Note).toBe(`${String(e.properties.Ref)} -- note`);
    expect(await storedWatermark(stateDir, 'hostile')).toEqual({ cursor: { ref: `e'); TRUNCATE hostile; --` } });

    // the hostile watermark is bound as a value in the next run's keyset condition
    const next = `f'); DROP SCHEMA ${db.name} CASCADE; --`;
    await db.client.query(`INSERT INTO hostile VALUES ($1, 'h9@example.com', NULL)`, [next]);
    const second = await runPipeline(file, stateDir, emulator.url);
    expect(second.code).toBe(0);
    expect(second.report.rows.read).toBe(1);
    expect(await count(`SELECT 1 FROM hostile`)).toBe(HOSTILE.length + 1);
    const after = await emulatorEvents(emulator);
    expect(after.map((e) => e.properties.Ref)).toContain(next);
    expect(after).toHaveLength(HOSTILE.length + 1);
  });
});

describe('customers-postgres example: profiles', () => {
  let emulator: EmulatorHandle;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, host: '127.0.0.1', limits: 'off' });
    await db.client.query(`CREATE TABLE customers (
      id bigint PRIMARY KEY, email text, phone text, first_name text, last_name text, city text, country text,
      loyalty_tier text, lifetime_value numeric(12, 2), updated_at timestamptz NOT NULL)`);
    await db.client.query(
      `INSERT INTO customers
       SELECT k, 'customer' || k || '@example.com', CASE WHEN k = 10 THEN '(212) 736-5000' END, 'First' || k, 'O''Last' || k,
              'Springfield', 'US', CASE WHEN k % 2 = 0 THEN 'gold' ELSE 'silver' END, k * 10.5, timestamptz '2026-01-01T00:00:00Z' + k * interval '1 minute'
       FROM generate_series(1, 250) AS k`,
    );
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('upserts every customer as a profile with its properties and adds them to the list', async () => {
    const created = await fetch(`${emulator.url}/api/lists`, {
      method: 'POST',
      headers: { authorization: `Klaviyo-API-Key ${API_KEY}`, revision: '2026-07-15', 'content-type': 'application/vnd.api+json' },
      body: JSON.stringify({ data: { type: 'list', attributes: { name: 'Customers' } } }),
    });
    expect(created.status).toBe(201);
    const listId = ((await created.json()) as { data: { id: string } }).data.id;
    const stateDir = path.join(tmp, 'state-customers');
    const { code, report } = await runPipeline(CUSTOMERS_EXAMPLE, stateDir, emulator.url, [], { KLAVIYO_LIST_ID: listId });
    expect(report.error).toBeUndefined();
    expect(code).toBe(0);
    expect(report.rows).toMatchObject({ read: 250, loaded: 250, rejected: 0 });
    const res = await fetch(`${emulator.url}/_emulator/profiles?key=${API_KEY}`);
    const profiles = (await res.text())
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown> & { lists: { id: string }[] });
    expect(profiles).toHaveLength(250);
    const p10 = profiles.find((p) => p.email === 'customer10@example.com')!;
    expect(p10).toMatchObject({ external_id: '10', first_name: 'First10', last_name: "O'Last10", phone_number: '+12127365000' });
    expect(p10.properties).toMatchObject({ loyalty_tier: 'gold', lifetime_value: 105 });
    expect(profiles.every((p) => p.lists.some((l) => l.id === listId))).toBe(true);
    expect(await storedWatermark(stateDir, 'customers-postgres')).toEqual({ cursor: { updated_at: '2026-01-01T04:10:00+00:00', id: '250' } });
  });
});

describe('crash (SIGKILL mid-table) and resume', () => {
  let emulator: EmulatorHandle;
  const ROWS = 100_000;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, host: '127.0.0.1', limits: 'off' });
    await db.client.query(`CREATE TABLE big_orders (id bigint PRIMARY KEY, email text NOT NULL, total numeric(12, 2) NOT NULL, updated_at timestamptz NOT NULL)`);
    // updated_at ties in runs of 7 so the keyset resume has to use the id as well
    await db.client.query(
      `INSERT INTO big_orders SELECT k, 'big' || (k % 5000) || '@example.com', k % 1000, timestamptz '2026-02-01T00:00:00Z' + (k / 7) * interval '1 second'
       FROM generate_series(1, ${ROWS}) AS k`,
    );
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('a run killed with SIGKILL resumes from its checkpoint and ends with every row exactly once', { timeout: 240_000 }, async () => {
    const file = path.join(tmp, 'big.yaml');
    await writeFile(
      file,
      `version: 1
name: big-orders
source:
  type: postgres
  url: \${DATABASE_URL}
  table: \${PG_SCHEMA}.big_orders
  cursor: [updated_at, id]
  batchSize: 2000
transform:
  type: event
  metric: Placed Order
  profile:
    email: { column: email, type: email }
  unique_id: { template: "big-{{id}}" }
  value: { column: total, type: number }
  properties:
    OrderId: id
destination:
  type: klaviyo
  batch:
    events: 100
${NO_CLIENT_LIMITS}`,
    );
    const stateDir = path.join(tmp, 'state-big');
    const child = spawnCli(['run', file, '--state-dir', stateDir], {
      env: { DATABASE_URL: db.url, PG_SCHEMA: db.name, KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: API_KEY },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let killedAt = -1;
    for (;;) {
      const state = await emulatorState(emulator);
      if (state.events >= 15_000) {
        child.kill('SIGKILL');
        killedAt = state.events;
        break;
      }
      if (child.exitCode !== null) throw new Error(`the run ended before it could be killed (exit ${child.exitCode}): ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await exited;
    const afterKill = await emulatorState(emulator);
    expect(killedAt).toBeGreaterThan(0);
    expect(afterKill.events).toBeLessThan(ROWS); // really mid-table

    const checkpoint = JSON.parse(await readFile(path.join(stateDir, 'big-orders', 'checkpoint.json'), 'utf8')) as {
      status: string;
      position?: { seq: number };
      counters?: { items: { events: number } };
    };
    expect(checkpoint.status).toBe('running');
    expect(checkpoint.position!.seq).toBeGreaterThan(0);

    const resumed = await runPipeline(file, stateDir, emulator.url);
    expect(resumed.code).toBe(0);
    expect(resumed.report).toMatchObject({ status: 'succeeded', resumed: true });
    expect(resumed.report.rows.read).toBe(ROWS);
    // the resumed run sent only what the checkpoint had not acknowledged (items count over every attempt, so the
    // killed attempt's items, carried over from its checkpoint, come first)
    const killedItems = checkpoint.counters?.items.events ?? 0;
    expect(resumed.report.items.events - killedItems).toBe(ROWS - checkpoint.position!.seq - 1);

    const events = await emulatorEvents(emulator);
    expect(events).toHaveLength(ROWS);
    const ids = new Set(events.map((e) => e.properties.OrderId));
    expect(ids.size).toBe(ROWS);
    expect(ids.has('1')).toBe(true);
    expect(ids.has(String(ROWS))).toBe(true);
    const state = await emulatorState(emulator);
    expect(state.eventsByMetric['Placed Order']).toBe(ROWS);
    expect(await storedWatermark(stateDir, 'big-orders')).toEqual({ cursor: { updated_at: '2026-02-01T03:58:05+00:00', id: String(ROWS) } });
  });
});

describe('the postgres and S3 examples', () => {
  let scratch: TestSchema;
  beforeAll(async () => {
    scratch = await createTestSchema('etl_examples');
    await scratch.client.query(ORDERS_TABLE);
    await scratch.client.query(
      `INSERT INTO orders VALUES
        (1, '1001', 'ann@example.com', 25.50, 'USD', '2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z', 'paid', '[{"sku":"X","qty":1}]'),
        (2, '1002', 'bob@example.com', 10, 'USD', '2026-03-01T11:00:00Z', '2026-03-01T11:00:00Z', 'test', '[]'),
        (3, '1003', 'cy@example.com', 7.25, 'EUR', '2026-03-01T12:00:00Z', '2026-03-02T09:00:00Z', 'paid', '[]')`,
    );
    await scratch.client.query(`CREATE TABLE customers (
      id bigint PRIMARY KEY, email text, phone text, first_name text, last_name text, city text, country text,
      loyalty_tier text, lifetime_value numeric(12, 2), updated_at timestamptz NOT NULL)`);
    await scratch.client.query(
      `INSERT INTO customers VALUES (1, 'ann@example.com', '(212) 736-5000', 'Ann', 'Lee', 'Boston', 'US', 'gold', 120.5, now()),
                                    (2, 'bob@example.com', NULL, 'Bob', 'Ray', 'Austin', 'US', NULL, NULL, now())`,
    );
  });
  afterAll(async () => {
    await scratch?.drop();
  });

  it('validate accepts every postgres example and the S3 example', async () => {
    const files = ['pipelines/examples/orders-postgres-nightly.yaml', 'pipelines/examples/customers-postgres.yaml', 'pipelines/examples/profiles-s3-daily.yaml'];
    const result = await cli(['validate', ...files], { env: { DATABASE_URL: scratch.url } });
    expect(result.stdout).toContain('3 pipeline files valid');
    expect(result.code).toBe(0);
  });

  it.each([
    ['orders-postgres-nightly.yaml', 2, 'events'],
    ['customers-postgres.yaml', 2, 'profiles'],
  ] as const)('%s dry-runs against a scratch schema holding the tables it queries', async (name, rows, kind) => {
    const reportFile = path.join(tmp, `dry-${name}.json`);
    const result = await cli(['run', `pipelines/examples/${name}`, '--dry-run', '--report', reportFile, '--state-dir', path.join(tmp, 'state-dry')], {
      env: { DATABASE_URL: scratch.url, PG_SCHEMA: scratch.name },
    });
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report & { dryRun: boolean };
    expect(report).toMatchObject({ status: 'succeeded', dryRun: true, rows: { read: rows, rejected: 0 } });
    expect(report.items[kind]).toBe(rows);
  });
});

describe('the postgres examples run with --emulator after their .sql files', () => {
  let scratch: TestSchema;
  beforeAll(async () => {
    scratch = await createTestSchema('etl_sql');
    // the files create crm.customers and public.orders; here both go into a scratch schema (PG_SCHEMA)
    for (const [file, schema] of [['customers-postgres.sql', 'crm'], ['orders-postgres-nightly.sql', 'public']] as const) {
      const sql = await readFile(path.join(ROOT, 'pipelines/examples', file), 'utf8');
      await scratch.client.query(sql.replace(new RegExp(`\\b${schema}\\b`, 'g'), scratch.name));
    }
  });
  afterAll(async () => {
    await scratch?.drop();
  });

  it.each([
    ['customers-postgres.yaml', ['--emulator-seed', 'pipelines/examples/customers-postgres.seed.json'], 3, 'profiles'],
    ['orders-postgres-nightly.yaml', [], 2, 'events'],
  ] as const)('%s', async (name, extra, rows, kind) => {
    const reportFile = path.join(tmp, `sql-${name}.json`);
    const result = await cli(['run', `pipelines/examples/${name}`, '--emulator', ...extra, '--report', reportFile, '--state-dir', path.join(tmp, `state-sql-${name}`)], {
      env: { DATABASE_URL: scratch.url, PG_SCHEMA: scratch.name },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report & { emulator: { state: { lists: { id: string; members: number }[] } } };
    expect(report).toMatchObject({ status: 'succeeded', rows: { read: rows, loaded: rows, rejected: 0 } });
    expect(report.items[kind]).toBe(rows);
    if (name === 'customers-postgres.yaml') expect(report.emulator.state.lists.find((l) => l.id === 'XyZ123')?.members).toBe(rows);
  });
});
