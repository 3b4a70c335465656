/**
 * The non-Klaviyo parts of `check`: the source (files match, the PostgreSQL query's plan, the S3 prefix lists),
 * where the pipeline writes (an export file's directory, an S3 object's prefix: a probe object is written and
 * deleted), the checkpoint store and state directory, and Redis.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type * as ioredis from 'ioredis';
import type * as pg from 'pg';
import type { PostgresDestinationConfig, PostgresSourceConfig, S3SourceConfig } from '../config/schema.js';
import { destinationConnection, emulatorTable } from '../destinations/postgres.js';
import { lazyModule } from '../core/lazy.js';
import { resolveFiles } from '../extract/files.js';
import { planPostgresQuery, redactConnectionUrl } from '../extract/postgres.js';
import { createS3Client, parseS3Url, s3Sdk } from '../s3/client.js';
import type { CheckContext, CheckResult } from './index.js';

const pgLib = lazyModule<typeof pg>('pg');
const ioredisLib = lazyModule<typeof ioredis>('ioredis');

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error)) || String(error);

/** Checks of the pipeline's source (a Klaviyo source is checked with Klaviyo). */
export async function checkSource(ctx: CheckContext): Promise<CheckResult[]> {
  const source = ctx.config.source as { type: string; path?: string | string[] };
  switch (source.type) {
    case 'csv':
    case 'ndjson':
      return [await checkFiles(source.path!, ctx)];
    case 'postgres':
      return checkPostgres(ctx.config.source as PostgresSourceConfig, ctx);
    case 's3': {
      const s3 = ctx.config.source as S3SourceConfig;
      return [await checkS3Prefix('source', s3, s3.bucket, s3.prefix, false, ctx)];
    }
    case 'klaviyo':
      return [];
    default:
      return [{ target: source.type, check: 'source', status: 'skip', detail: `check knows no probe for a ${source.type} source` }];
  }
}

async function checkFiles(patterns: string | string[], ctx: CheckContext): Promise<CheckResult> {
  try {
    const files = await resolveFiles(patterns, ctx.baseDir);
    for (const f of files) await access(f.path, constants.R_OK);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    return { target: 'files', check: 'source', status: 'ok', detail: `${files.length} file(s) readable, ${bytes} bytes (first: ${files[0]!.source})` };
  } catch (error) {
    return { target: 'files', check: 'source', status: 'fail', detail: message(error), fix: 'check source.path (relative to the pipeline file) and that the files are there and readable' };
  }
}

/** PostgreSQL: connect, then EXPLAIN the query a first run would send (no row is read). */
async function checkPostgres(source: PostgresSourceConfig, ctx: CheckContext): Promise<CheckResult[]> {
  const where = redactConnectionUrl(source.url);
  const client = new (pgLib().Client)({
    connectionString: source.url,
    ssl: source.ssl === true ? true : typeof source.ssl === 'object' ? { rejectUnauthorized: source.ssl.rejectUnauthorized } : undefined,
    application_name: source.applicationName,
    connectionTimeoutMillis: ctx.timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return [{ target: 'postgres', check: 'connect', status: 'fail', detail: `${where}: ${message(error)}`, fix: pgFix(error) }];
  }
  const results: CheckResult[] = [{ target: 'postgres', check: 'connect', status: 'ok', detail: where }];
  try {
    const plan = planPostgresQuery(source, {});
    const explained = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${plan.sql}`, plan.values);
    const lines = explained.rows.map((r) => r['QUERY PLAN'].trim());
    const scan = lines.find((l) => /Scan/.test(l)) ?? lines[0] ?? '';
    const seqSorted = source.cursor && lines.some((l) => /^(->\s*)?Sort\b/.test(l)) && lines.some((l) => /Seq Scan/.test(l));
    results.push({
      target: 'postgres',
      check: 'query plan',
      status: 'ok',
      detail: `${lines[0] ?? ''}${scan !== lines[0] ? `; ${scan.replace(/^->\s*/, '')}` : ''}` +
        (seqSorted ? `; note: a sequential scan and sort: an index on (${source.cursor!.join(', ')}) lets incremental runs read only new rows` : ''),
    });
  } catch (error) {
    results.push({ target: 'postgres', check: 'query plan', status: 'fail', detail: message(error), fix: pgFix(error) });
  } finally {
    await client.end().catch(() => undefined);
  }
  return results;
}

function pgFix(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
      return 'start PostgreSQL or fix the host/port in source.url (normally ${DATABASE_URL})';
    case '28P01':
    case '28000':
      return 'fix the user/password in source.url, or the server\'s pg_hba.conf';
    case '3D000':
      return 'fix the database name in source.url';
    case '42P01':
      return 'fix source.table / source.query: the relation does not exist (schema-qualify it, or check search_path)';
    case '42703':
      return 'fix source.columns / source.cursor: a column does not exist';
    case '42501':
      return 'GRANT SELECT on the table to the user of source.url';
    default:
      return 'fix source.url or source.query; run the query in psql to see the error';
  }
}

/** S3: the prefix lists; where the pipeline writes, a probe object is written and deleted. */
async function checkS3Prefix(
  role: string,
  opts: { region?: string; endpoint?: string; forcePathStyle?: boolean },
  bucket: string,
  prefix: string,
  write: boolean,
  ctx: CheckContext,
): Promise<CheckResult> {
  const where = `s3://${bucket}/${prefix}`;
  const client = createS3Client({ region: opts.region, endpoint: opts.endpoint, forcePathStyle: opts.forcePathStyle, env: ctx.env });
  const sdk = s3Sdk();
  const signal = () => ({ abortSignal: AbortSignal.timeout(ctx.timeoutMs) });
  try {
    const listed = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }), signal());
    const first = listed.Contents?.[0]?.Key;
    let detail = first ? `listable (first object: ${first})` : 'listable (nothing under the prefix yet)';
    if (write) {
      const probe = `${prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix}.klaviyo-etl-check-${randomBytes(6).toString('hex')}`;
      await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: probe, Body: 'klaviyo-etl check\n' }), signal());
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: probe }), signal());
      detail += ', writable (a probe object was written and deleted)';
    }
    return { target: 's3', check: `${role} ${where}`, status: 'ok', detail };
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    const fix = /AccessDenied|Forbidden/.test(name)
      ? `grant s3:ListBucket${write ? ', s3:PutObject and s3:DeleteObject' : ' and s3:GetObject'} on ${where} to the credentials in use (AWS_* or the instance/pod role)`
      : /NoSuchBucket/.test(name)
        ? 'fix the bucket name (or create the bucket)'
        : 'check the bucket, region/endpoint and the AWS credentials (AWS_ACCESS_KEY_ID…, AWS_PROFILE, or the pod/instance role)';
    return { target: 's3', check: `${role} ${where}`, status: 'fail', detail: `${name ? `${name}: ` : ''}${message(error)}`, fix };
  } finally {
    client.destroy();
  }
}

/** Checks of where the pipeline writes, other than Klaviyo. */
export async function checkDestination(ctx: CheckContext): Promise<CheckResult[]> {
  const dest = ctx.config.destination as { type: string; path?: string; bucket?: string; key?: string; region?: string; endpoint?: string; forcePathStyle?: boolean };
  if (dest.type === 'csv' || dest.type === 'ndjson') return [await checkWritableDir('destination', path.dirname(path.resolve(ctx.baseDir, dest.path!)))];
  if (dest.type === 's3' && ctx.emulator) {
    return [{ target: 's3', check: `destination s3://${dest.bucket!}`, status: 'skip', detail: '--emulator runs write the object to a local file (emulator-output/ in the state directory)' }];
  }
  if (dest.type === 'postgres') return checkPostgresDestination(ctx.config.destination as PostgresDestinationConfig, ctx);
  if (dest.type === 's3') {
    const fixed = dest.key!.split('{')[0]!;
    const prefix = fixed.includes('/') ? fixed.slice(0, fixed.lastIndexOf('/') + 1) : '';
    return [await checkS3Prefix('destination', dest, dest.bucket!, prefix, true, ctx)];
  }
  return [];
}

/**
 * The postgres destination: connect, then whether the run can write its table: INSERT and UPDATE on it when it exists
 * (and a unique key for the upsert), else CREATE on its schema. Nothing is written.
 */
async function checkPostgresDestination(dest: PostgresDestinationConfig, ctx: CheckContext): Promise<CheckResult[]> {
  const where = redactConnectionUrl(dest.url);
  const table = ctx.emulator ? emulatorTable(dest.table) : dest.table;
  const client = new (pgLib().Client)({ ...destinationConnection(dest, ctx.baseDir), connectionTimeoutMillis: ctx.timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const name = table.split('.').map((p) => pgLib().escapeIdentifier(p)).join('.');
    const r = await client.query<{ exists: boolean; writable: boolean | null; creatable: boolean; keyed: boolean | null }>(
      `SELECT to_regclass($1) IS NOT NULL AS exists,
              CASE WHEN to_regclass($1) IS NOT NULL THEN has_table_privilege(to_regclass($1), 'INSERT, UPDATE') END AS writable,
              has_schema_privilege(coalesce($2, current_schema()), 'CREATE') AS creatable,
              CASE WHEN to_regclass($1) IS NOT NULL THEN EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 AND a.attname = $3) END AS keyed`,
      [name, table.includes('.') ? table.split('.')[0] : null, dest.key],
    );
    const s = r.rows[0]!;
    const check = `destination ${where} ${table}`;
    if (s.exists && !s.writable) return [{ target: 'postgres', check, status: 'fail', detail: `no INSERT/UPDATE privilege on ${table}`, fix: `GRANT INSERT, UPDATE ON ${table} TO <the run's user>` }];
    if (s.exists && !s.keyed) return [{ target: 'postgres', check, status: 'fail', detail: `${table} has no primary key or unique index on ${dest.key} alone (the upsert needs one)`, fix: `CREATE UNIQUE INDEX ON ${table} (${dest.key})` }];
    if (!s.exists && !s.creatable) return [{ target: 'postgres', check, status: 'fail', detail: `${table} does not exist and the user may not create it`, fix: `create the table, or GRANT CREATE ON SCHEMA to the run's user` }];
    return [{ target: 'postgres', check, status: 'ok', detail: s.exists ? `${table} exists, writable, keyed by ${dest.key}` : `${table} will be created on the first batch` }];
  } catch (error) {
    return [{ target: 'postgres', check: `destination ${where}`, status: 'fail', detail: message(error), fix: 'check the URL (host, port, database, user, password) and that the server is reachable' }];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The checkpoint store (S3 prefix, or local directory) and the rejects file's directory. */
export async function checkState(ctx: CheckContext): Promise<CheckResult[]> {
  const { checkpoint, rejects, name } = ctx.config;
  const results: CheckResult[] = [];
  const defaultDir = ctx.stateDir ? path.resolve(ctx.stateDir, name) : path.join(ctx.baseDir, '.klaviyo-etl', name);
  if (ctx.emulator) {
    // an --emulator run never touches the pipeline's own checkpoint store (docs/delivery.md)
    const where = ctx.stateDir ? `${path.resolve(ctx.stateDir, name)}` : 'a temporary directory';
    results.push({ target: 'state', check: 'checkpoint', status: 'skip', detail: `--emulator runs checkpoint into ${where}, not the pipeline's store` });
    if (ctx.stateDir) results.push(await checkWritableDir('state dir', defaultDir));
  } else if (checkpoint.store === 's3' && checkpoint.url) {
    const { bucket, prefix } = parseS3Url(checkpoint.url);
    results.push(await checkS3Prefix('checkpoint', checkpoint, bucket, prefix, true, ctx));
  } else {
    results.push(await checkWritableDir('checkpoint', checkpoint.dir ? path.resolve(ctx.baseDir, checkpoint.dir) : defaultDir));
  }
  if (rejects.path) results.push(await checkWritableDir('rejects', path.dirname(path.resolve(ctx.baseDir, rejects.path))));
  else if (checkpoint.store === 's3' || checkpoint.dir) results.push(await checkWritableDir('rejects', defaultDir));
  return results;
}

/** A directory the run would write into: it is writable, or its nearest existing parent is (the run creates it). */
async function checkWritableDir(role: string, dir: string): Promise<CheckResult> {
  let probe = dir;
  for (;;) {
    const st = await stat(probe).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) return { target: 'state', check: role, status: 'fail', detail: `${probe} is not a directory`, fix: `move the file away or point ${role} elsewhere` };
      break;
    }
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  try {
    await access(probe, constants.W_OK);
    return { target: 'state', check: role, status: 'ok', detail: probe === dir ? `${dir} writable` : `${dir} can be created (${probe} writable)` };
  } catch (error) {
    return { target: 'state', check: role, status: 'fail', detail: `${probe}: ${message(error)}`, fix: `make ${probe} writable for this user, or use --state-dir / KLAVIYO_ETL_STATE_DIR` };
  }
}

/** Redis (shared rate limits): PING, when a URL is given. */
export async function checkRedis(ctx: CheckContext, url: string | undefined): Promise<CheckResult[]> {
  if (!url) return [];
  const where = redactConnectionUrl(url);
  const { Redis } = ioredisLib();
  const client = new Redis(url, { lazyConnect: true, connectTimeout: ctx.timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const pong = await client.ping();
    return [{ target: 'redis', check: 'ping', status: 'ok', detail: `${where} answered ${pong}` }];
  } catch (error) {
    return [{ target: 'redis', check: 'ping', status: 'fail', detail: `${where}: ${message(error)}`, fix: 'start Redis or fix --redis-url / KLAVIYO_ETL_REDIS_URL (runs sharing one Klaviyo account share their limits there)' }];
  } finally {
    client.disconnect();
  }
}

