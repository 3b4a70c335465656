// The postgres export destination's two ways of loading a batch, on the real PostgreSQL ($DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test; a schema of its own, dropped afterwards): `copy` (COPY into a temporary
// staging table, then INSERT … SELECT … ON CONFLICT DO UPDATE) against `insert` (multi-row INSERT … VALUES … ON
// CONFLICT DO UPDATE), each through the built loader (dist/load/postgres-upsert.js) with 1,000-row transactions,
// in three phases: into an empty table (inserts), every row changed (updates), nothing changed (a re-run). The
// methods alternate per phase so both see the same machine noise.
//
//   npm run build && node bench/run.js postgres-upsert      (or: node bench/cases/postgres-upsert.js [--quick])
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { machineInfo, ROOT } from '../lib.js';

export const description = 'postgres destination: COPY + merge vs multi-row INSERT … ON CONFLICT, rows/s (insert, update, unchanged)';

const COLUMNS = ['id', 'email', 'first_name', 'ltv', 'vip', 'prefs', 'joined'];
const BATCH = 1000;

function databaseUrl() {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const user = encodeURIComponent(process.env.PGUSER ?? 'postgres');
  const password = process.env.PGPASSWORD ? `:${encodeURIComponent(process.env.PGPASSWORD)}` : '';
  return `postgres://${user}${password}@${process.env.PGHOST ?? '127.0.0.1'}:${process.env.PGPORT ?? '5432'}/${encodeURIComponent(process.env.PGDATABASE ?? 'test')}`;
}

/** Export-row items as the export transform makes them (`round` changes every non-key value). */
function items(rows, round) {
  const out = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const pos = { seq: i, source: 'bench' };
    out[i] = {
      kind: 'export-row',
      first: pos,
      last: pos,
      payload: {
        id: `01HBENCH${String(i).padStart(10, '0')}`,
        email: `u${i}@example.com`,
        first_name: `First ${i} ${round}`,
        ltv: (i % 10000) / 100 + round,
        vip: (i + round) % 2 === 0,
        prefs: { color: `c${(i + round) % 5}`, tags: ['a', 'b'], n: i },
        joined: new Date(Date.UTC(2025, 0, 1) + i * 1000 + round * 60_000).toISOString(),
      },
    };
  }
  return out;
}

async function load(createPostgresLoader, url, table, method, batch) {
  let acked = 0;
  const ctx = { logger: { debug() {}, info() {}, warn() {}, error() {} }, stats: {}, dryRun: false, onAck: (i) => (acked += i.length), onReject: () => {} };
  const loader = createPostgresLoader({ connection: { connectionString: url }, table, columns: COLUMNS, method, batchSize: BATCH }, ctx);
  const started = performance.now();
  for (let i = 0; i < batch.length; i += BATCH) await loader.write(batch.slice(i, i + BATCH));
  await loader.close();
  const seconds = (performance.now() - started) / 1000;
  if (acked !== batch.length) throw new Error(`${method}: ${acked} of ${batch.length} rows acknowledged`);
  return { rows: batch.length, seconds: Number(seconds.toFixed(3)), rowsPerSecond: Math.round(batch.length / seconds) };
}

export async function run(ctx) {
  const rows = ctx.quick ? 20_000 : 200_000;
  const url = databaseUrl();
  const { createPostgresLoader } = await import(pathToFileURL(path.join(ROOT, 'dist', 'load', 'postgres-upsert.js')).href);
  const schema = `bench_upsert_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url, application_name: 'klaviyo-etl-bench' });
  await admin.connect();
  const metrics = { copy: {}, insert: {} };
  try {
    await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
    const phases = [
      ['insert', 0],
      ['update', 1],
      ['unchanged', 1],
    ];
    for (const [phase, round] of phases) {
      const batch = items(rows, round);
      const order = phase === 'update' ? ['insert', 'copy'] : ['copy', 'insert'];
      for (const method of order) {
        const r = await load(createPostgresLoader, url, `${schema}.members_${method}`, method, batch);
        metrics[method][phase] = r;
        ctx.log(`${method} ${phase}: ${r.rowsPerSecond} rows/s (${r.seconds} s)`);
      }
    }
    for (const method of ['copy', 'insert']) {
      const n = await admin.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(`members_${method}`)}`);
      if (n.rows[0].n !== rows) throw new Error(`${method}: ${n.rows[0].n} rows in the table, expected ${rows}`);
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`).catch(() => {});
    await admin.end();
  }
  const ratio = (phase) => Number((metrics.copy[phase].rowsPerSecond / metrics.insert[phase].rowsPerSecond).toFixed(2));
  const ratios = { insert: ratio('insert'), update: ratio('update'), unchanged: ratio('unchanged') };
  const faster = Object.values(ratios).filter((r) => r > 1).length >= 2 ? 'copy' : 'insert';
  return {
    config: { rows, columns: COLUMNS.length, batch: BATCH, table: `${schema}.members_<method> (dropped afterwards)`, loader: 'dist/load/postgres-upsert.js, in process' },
    metrics: { ...metrics, copyOverInsert: ratios, faster },
    targets: [{ name: 'the default method (copy) is the faster one in most phases', target: 'copy', value: faster, met: faster === 'copy' }],
    notes: ['copy: COPY (text) into a temp staging table, then INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE IS DISTINCT FROM', 'insert: multi-row INSERT … VALUES … ON CONFLICT DO UPDATE … WHERE IS DISTINCT FROM, ≤ 1000 rows a statement'],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const result = await run({ log: (m) => process.stderr.write(`${m}\n`), machine: machineInfo(), results: {}, quick });
  console.log(JSON.stringify(result, null, 2));
}
