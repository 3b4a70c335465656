// PostgreSQL throughput with limits off: a 1,000,000-row orders table (in a schema of its own in $DATABASE_URL,
// default postgres://postgres@127.0.0.1:5432/test, dropped afterwards) read by the postgres source (keyset cursor
// on (updated_at, id), the orders-postgres-nightly example's transform: one Placed Order per row) through the CLI
// (child process) into the emulator (another child process, `--limits off`), against bare pg-cursor over the same
// ordered query in the same run. Both numbers share the machine's noise; the ratio is what matters.
//
//   npm run build && node bench/run.js postgres      (or: node bench/cases/postgres.js [--quick])
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { machineInfo, runCli, startEmulatorProcess, UNPACED, writePipeline } from '../lib.js';

export const description = 'rows/s end to end (limits off) vs bare pg-cursor over the same 1M-row PostgreSQL orders table';

const BATCH = 5000;

function databaseUrl() {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const user = encodeURIComponent(process.env.PGUSER ?? 'postgres');
  const password = process.env.PGPASSWORD ? `:${encodeURIComponent(process.env.PGPASSWORD)}` : '';
  return `postgres://${user}${password}@${process.env.PGHOST ?? '127.0.0.1'}:${process.env.PGPORT ?? '5432'}/${encodeURIComponent(process.env.PGDATABASE ?? 'test')}`;
}

/** The orders table: 1 row = 1 order, ~100 distinct customers per 1,000 orders, a small jsonb of items. */
async function createOrders(client, schema, rows) {
  const q = pg.escapeIdentifier;
  await client.query(`CREATE SCHEMA ${q(schema)}`);
  await client.query(`CREATE TABLE ${q(schema)}.orders (
    id bigint PRIMARY KEY,
    order_number text NOT NULL,
    email text NOT NULL,
    total numeric(12, 2) NOT NULL,
    currency text NOT NULL,
    placed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    status text NOT NULL,
    line_items jsonb NOT NULL)`);
  await client.query(
    `INSERT INTO ${q(schema)}.orders
     SELECT k, 'B' || k, 'buyer' || (k % ${Math.max(1, Math.floor(rows / 10))}) || '@example.com', (k % 50000) / 100.0, 'USD',
            timestamptz '2025-01-01T00:00:00Z' + k * interval '20 seconds',
            timestamptz '2025-01-01T00:00:00Z' + (k / 3) * interval '60 seconds',
            'paid',
            jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (k % 997), 'qty', 1 + k % 3, 'price', (k % 5000) / 100.0))
     FROM generate_series(1, ${rows}) AS k`,
  );
  await client.query(`CREATE INDEX ON ${q(schema)}.orders (updated_at, id)`);
  await client.query(`VACUUM ANALYZE ${q(schema)}.orders`);
}

/** Bare pg-cursor over the ordered table, default pg type parsing: rows and seconds. */
async function bareCursor(url, schema) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    const cursor = client.query(new Cursor(`SELECT * FROM ${pg.escapeIdentifier(schema)}.orders ORDER BY updated_at, id`));
    let rows = 0;
    for (;;) {
      const batch = await cursor.read(BATCH);
      if (batch.length === 0) break;
      rows += batch.length;
      if (batch.length < BATCH) break;
    }
    await cursor.close();
    const seconds = (performance.now() - started) / 1000;
    return { rows, seconds, rowsPerSecond: Math.round(rows / seconds) };
  } finally {
    await client.end();
  }
}

function pipelineYaml(name) {
  return `version: 1
name: ${name}
source:
  type: postgres
  url: \${DATABASE_URL}
  query: |
    SELECT o.id, o.order_number, o.email, o.total, o.currency, o.placed_at, o.updated_at, o.line_items
    FROM \${PG_SCHEMA}.orders o
    WHERE o.status <> 'test'
  cursor: [updated_at, id]
  batchSize: ${BATCH}
transform:
  type: event
  metric: Placed Order
  profile:
    email: { column: email, type: email, required: true }
  unique_id: { template: "order-{{order_number}}" }
  time: { column: placed_at, type: datetime, format: iso }
  value: { column: total, type: number }
  value_currency: currency
  properties:
    OrderNumber: order_number
    Items: { column: line_items, type: json }
destination:
  type: klaviyo
${UNPACED}`;
}

export async function run(ctx) {
  const rows = ctx.quick ? 100_000 : 1_000_000;
  const url = databaseUrl();
  const schema = `bench_pg_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url, application_name: 'klaviyo-etl-bench' });
  await admin.connect();
  try {
    ctx.log(`creating ${schema}.orders (${rows} rows)`);
    const t0 = performance.now();
    await createOrders(admin, schema, rows);
    ctx.log(`table ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    ctx.log('bare pg-cursor (warm-up pass, then measured)');
    await bareCursor(url, schema);
    const bare = await bareCursor(url, schema);
    ctx.log(`bare pg-cursor: ${bare.rowsPerSecond} rows/s`);

    const pipeline = await writePipeline('bench-postgres', pipelineYaml('bench-postgres'));
    const env = { DATABASE_URL: url, PG_SCHEMA: schema };

    // Where the gap goes: the same CLI with --dry-run reads, transforms, batches and serializes, sends nothing.
    ctx.log('klaviyo-etl run --dry-run (no HTTP, no emulator)');
    const dry = await runCli(pipeline, { env, args: ['--dry-run'] });
    const dryRowsPerSecond = Math.round((dry.report.rows.read * 1000) / dry.wallMs);
    ctx.log(`dry run: ${dryRowsPerSecond} rows/s`);
    const emu = await startEmulatorProcess({ limits: 'off', maxOldSpaceMb: 8192 });
    let cli;
    let state;
    try {
      ctx.log(`klaviyo-etl run (${rows} rows) → ${emu.url}`);
      cli = await runCli(pipeline, { env: { ...env, KLAVIYO_BASE_URL: emu.url } });
      state = await emu.state();
    } finally {
      await emu.close();
    }
    const r = cli.report;
    const e2e = Math.round((r.rows.read * 1000) / cli.wallMs);
    const ratio = e2e / bare.rowsPerSecond;
    ctx.log(`end to end: ${e2e} rows/s, ${r.items.events} events, peak RSS ${cli.peakRssMb} MB, ratio ${ratio.toFixed(3)}`);
    return {
      config: {
        rows,
        table: `${schema}.orders (dropped afterwards)`,
        source: `postgres, query + cursor [updated_at, id], batchSize ${BATCH}`,
        transform: 'event: Placed Order per row (the orders-postgres-nightly example)',
        emulator: 'child process, --limits off',
        cli: 'child process',
        pacing: 'lifted (destination.rateLimits)',
        bare: `pg-cursor, SELECT * … ORDER BY updated_at, id, ${BATCH} rows per read, default type parsing`,
      },
      metrics: {
        barePgCursor: bare,
        endToEnd: {
          status: r.status,
          exitCode: cli.exitCode,
          wallMs: Math.round(cli.wallMs),
          runDurationMs: r.durationMs,
          rowsPerSecond: e2e,
          rows: r.rows,
          events: r.items.events,
          requests: r.requests.total,
          peakRssMb: cli.peakRssMb,
        },
        dryRun: { status: dry.report.status, wallMs: Math.round(dry.wallMs), rowsPerSecond: dryRowsPerSecond, peakRssMb: dry.peakRssMb },
        dryRunRatio: Number((dryRowsPerSecond / bare.rowsPerSecond).toFixed(3)),
        emulatorEvents: state.events,
        ratio: Number(ratio.toFixed(3)),
      },
      targets: [
        { name: 'end to end ≥ 50% of bare pg-cursor rows/s (same bar as the CSV case)', target: '≥ 0.50', value: Number(ratio.toFixed(3)), met: ratio >= 0.5 },
        { name: 'every row arrived as an event', target: `${rows}`, value: state.events, met: state.events === rows && r.status === 'succeeded' },
      ],
      notes: [
        `wall time of the CLI process includes Node start-up and pipeline loading; ${ctx.machine.nproc} cores shared by PostgreSQL, the CLI and the emulator`,
        'bare pg-cursor is measured after one warm-up pass, so both read a cached table',
        'dryRun: the same CLI run with --dry-run (source + transform + batching, no HTTP): the gap between it and endToEnd is the HTTP path and the emulator ingesting events on the same 2 cores',
      ],
    };
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`).catch(() => {});
    await admin.end();
  }
}

// `node bench/cases/postgres.js [--quick]`: run this case alone and print its result.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const log = (m) => process.stderr.write(`[bench postgres] ${m}\n`);
  const result = await run({ log, machine: machineInfo(), results: {}, quick: process.argv.includes('--quick') });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}
