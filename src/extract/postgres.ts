import type * as pg from 'pg';
import type Cursor from 'pg-cursor';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { PostgresSource, type PostgresSourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { Shard } from '../core/shard.js';
import type { SourcePosition, SourceRecord } from '../core/record.js';
import type { ExtractContext, InspectContext, SourceReader, SourceSample } from './types.js';
import type { SourceDefinition } from '../components/types.js';
import { lazyModule } from '../core/lazy.js';

const pgLib = lazyModule<typeof pg>('pg');
const CursorClass = lazyModule<typeof Cursor>('pg-cursor');

/*
 * PostgreSQL source: one server-side cursor (pg-cursor) read `batchSize` rows at a time, so memory stays flat
 * whatever the size of the result. With `cursor` columns the query is ordered by them and starts after a keyset
 * position (`(a, b) > ($1, $2)`, values always bound) taken from `ctx.startAfter`, else the stored watermark
 * (minus `lookback`), and `since`/`until` bound the first cursor column for one run.
 */

/** The stored incremental state of a PostgreSQL source: the cursor values (as text) of the last row read. */
export interface PostgresWatermark {
  cursor: Record<string, string>;
}

/** A running PostgreSQL source. */
export interface PostgresReader extends SourceReader {
  /**
   * True when the run is bounded by `since`/`until`: the watermark it reports is the last row of that window,
   * which the runner should not store as the pipeline's high-water mark.
   */
  readonly boundedRun: boolean;
  watermark(): PostgresWatermark | undefined;
  /** Number of rows yielded so far. */
  rowsRead(): number;
}

// Type OIDs whose text output we parse ourselves (everything else uses pg-types' defaults, read-only).
const OID = {
  int8: 20,
  numeric: 1700,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  int8Array: 1016,
  numericArray: 1231,
  dateArray: 1182,
  timestampArray: 1115,
  timestamptzArray: 1185,
  intervalArray: 1187,
  textArray: 1009,
} as const;

const CURSOR_ALIAS = '__klaviyo_etl_cursor_';

/** Postgres ISO timestamp output (`2024-01-02 03:04:05.123456+00`) → ISO 8601 (`2024-01-02T03:04:05.123456+00:00`). */
export function pgTimestampToIso(text: string): string {
  const m = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(?::(\d\d))?(?::(\d\d))?)?$/.exec(text);
  if (!m) return text; // infinity, BC dates, unexpected styles: kept verbatim
  const [, date, time, hh, mm, ss] = m;
  if (hh === undefined) return `${date}T${time}`;
  return `${date}T${time}${hh}:${mm ?? '00'}${ss ? `:${ss}` : ''}`;
}

type Parser = (text: string) => unknown;

/**
 * Per-client type parsers (never `pg.types.setTypeParser`: no process-global mutation). numeric and int8 stay
 * strings unless `numeric: number`; timestamps become ISO strings at full precision; dates stay `YYYY-MM-DD`.
 */
export function postgresTypes(numeric: 'string' | 'number'): pg.CustomTypesConfig {
  const builtin = pgLib().types.getTypeParser as (oid: number, format: 'text' | 'binary') => Parser;
  const textArray = builtin(OID.textArray, 'text');
  const deep = (value: unknown, f: (s: string) => unknown): unknown =>
    Array.isArray(value) ? value.map((v) => deep(v, f)) : value === null ? null : f(value as string);
  const arrayOf = (f: (s: string) => unknown): Parser => (text) => deep(textArray(text), f);
  const num = numeric === 'number' ? (s: string) => Number(s) : (s: string) => s;
  const own = new Map<number, Parser>([
    [OID.int8, num],
    [OID.numeric, num],
    [OID.date, (s) => s],
    [OID.timestamp, pgTimestampToIso],
    [OID.timestamptz, pgTimestampToIso],
    [OID.interval, (s) => s],
    [OID.int8Array, arrayOf(num)],
    [OID.numericArray, arrayOf(num)],
    [OID.dateArray, arrayOf((s) => s)],
    [OID.timestampArray, arrayOf(pgTimestampToIso)],
    [OID.timestamptzArray, arrayOf(pgTimestampToIso)],
    [OID.intervalArray, arrayOf((s) => s)],
  ]);
  const getTypeParser = ((oid: number, format?: string) => {
    if ((format ?? 'text') === 'text') {
      const p = own.get(oid);
      if (p) return p;
    }
    return builtin(oid, (format ?? 'text') as 'text' | 'binary');
  }) as pg.CustomTypesConfig['getTypeParser'];
  return { getTypeParser };
}

/** Quote a possibly schema-qualified name (`schema.table`, `"My Schema"."T"`) with pg's escapeIdentifier. */
export function quoteQualifiedName(name: string): string {
  const parts: string[] = [];
  let i = 0;
  while (i <= name.length) {
    if (name[i] === '"') {
      let part = '';
      i++;
      for (;;) {
        if (i >= name.length) throw new EtlError('CONFIG_INVALID', `Expected a closing quote in table name ${JSON.stringify(name)}`);
        if (name[i] === '"') {
          if (name[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += name[i++];
      }
      parts.push(part);
    } else {
      const dot = name.indexOf('.', i);
      const end = dot === -1 ? name.length : dot;
      parts.push(name.slice(i, end));
      i = end;
    }
    if (i >= name.length) break;
    if (name[i] !== '.') throw new EtlError('CONFIG_INVALID', `Expected "." after a quoted part in table name ${JSON.stringify(name)}`);
    i++;
  }
  if (parts.length === 0 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new EtlError('CONFIG_INVALID', `Expected a table name like \`table\` or \`schema.table\`, got ${JSON.stringify(name)}`);
  }
  return parts.map((p) => pgLib().escapeIdentifier(p)).join('.');
}

/** A connection URL with its password replaced by `***` (for logs and errors). */
export function redactConnectionUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password=)[^\s&]*/gi, '$1***');
  }
}

/** Duration like `2h`, `30 m`, `500ms` → a PostgreSQL interval literal in seconds/ms (bound as a parameter). */
export function lookbackToInterval(lookback: string): string {
  const m = /^(\d+)\s*(ms|s|m|h|d)$/.exec(lookback);
  if (!m) throw new EtlError('CONFIG_INVALID', `Expected \`lookback\` like "2h", got ${JSON.stringify(lookback)}`);
  const unit = { ms: 'milliseconds', s: 'seconds', m: 'minutes', h: 'hours', d: 'days' }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return `${m[1]} ${unit}`;
}

function parseWatermark(value: unknown, columns: readonly string[]): PostgresWatermark | undefined {
  if (value === undefined || value === null) return undefined;
  const cursor = (value as { cursor?: unknown }).cursor;
  if (typeof cursor !== 'object' || cursor === null) {
    throw new EtlError('CHECKPOINT_CORRUPT', 'Expected the PostgreSQL watermark to be `{cursor: {column: value}}`');
  }
  const out: Record<string, string> = {};
  for (const c of columns) {
    const v = (cursor as Record<string, unknown>)[c];
    if (typeof v !== 'string') {
      throw new EtlError(
        'CHECKPOINT_MISMATCH',
        `The stored watermark has no value for cursor column ${JSON.stringify(c)} (was \`cursor\` changed?); stored columns: ${Object.keys(cursor).join(', ')}`,
      );
    }
    out[c] = v;
  }
  return { cursor: out };
}

/** The SQL text and bound values of one read. Exposed for tests. */
export interface PostgresPlan {
  sql: string;
  values: unknown[];
  source: string;
  /** seq of the first row yielded. */
  firstSeq: number;
  boundedRun: boolean;
}

/**
 * `--shard i/n`: the rows whose key column hashes to this shard (PostgreSQL's `hashtext` of the value as text, so
 * any column type works and every shard process computes the same split).
 */
function shardCondition(config: PostgresSourceConfig, shard: Shard, q: (name: string) => string, param: (v: unknown) => string): string {
  const key = config.shardKey ?? config.cursor?.at(-1);
  if (key === undefined) {
    throw new EtlError('USAGE', '--shard needs a key column to split the rows: set source.shardKey (or a cursor; its last column is the default)');
  }
  return `mod(abs(hashtext(_src.${q(key)}::text)::bigint), ${param(shard.count)}) = ${param(shard.index - 1)}`;
}

/** The SELECT a config reads (`table` + `columns`, or `query`), before the cursor and bounds are added. */
function innerQuery(config: PostgresSourceConfig): string {
  if (config.table === undefined) return config.query!.trim().replace(/;\s*$/, '');
  const cols = config.columns ? config.columns.map(pgLib().escapeIdentifier).join(', ') : '*';
  return `SELECT ${cols} FROM ${quoteQualifiedName(config.table)}`;
}

/** The pre-flight sample of a postgres source: the columns its query gives (`LIMIT 0`: no row is read). */
async function inspectPostgres(config: PostgresSourceConfig, ctx: InspectContext): Promise<SourceSample[]> {
  const source = `postgres:${config.table ?? 'query'}`;
  const url = redactConnectionUrl(config.url);
  const client = new (pgLib().Client)(clientConfig(config, ctx.baseDir));
  client.on('error', () => undefined); // a failure surfaces from connect/query
  const fail = (message: string, error: unknown): EtlError => {
    const detail = (error instanceof Error ? error.message : String(error)).split(config.url).join(url);
    return new EtlError('SOURCE_READ', `${message}: ${detail}`, { cause: error, context: { component: 'postgres', source, url } });
  };
  try {
    await client.connect().catch((error: unknown) => {
      throw fail(`Could not connect to PostgreSQL at ${url}`, error);
    });
    const result = await client.query(`SELECT * FROM (${innerQuery(config)}\n) AS _probe LIMIT 0`).catch((error: unknown) => {
      throw fail(`PostgreSQL query on ${source} failed`, error);
    });
    return [{ source, columns: result.fields.map((f) => f.name), certainty: 'header', rows: true, paths: true }];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Build the query for a config and context: identifiers quoted, every value a bound parameter. */
export function planPostgresQuery(config: PostgresSourceConfig, ctx: Pick<ExtractContext, 'startAfter' | 'watermark' | 'since' | 'until' | 'limit' | 'shard'>): PostgresPlan {
  if ((config.table === undefined) === (config.query === undefined)) {
    throw new EtlError('CONFIG_INVALID', 'Expected exactly one of `table` or `query` in a postgres source');
  }
  if (config.columns && !config.table) throw new EtlError('CONFIG_INVALID', '`columns` applies only with `table`');
  const q = pgLib().escapeIdentifier;
  const inner = innerQuery(config);
  const source = `postgres:${config.table ?? 'query'}`;
  const cursor = config.cursor ?? [];
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const where: string[] = [];
  const boundedRun = ctx.since !== undefined || ctx.until !== undefined;
  let firstSeq = 0;

  if (cursor.length > 0) {
    const tuple = (cs: readonly string[]) => (cs.length === 1 ? `_src.${q(cs[0])}` : `(${cs.map((c) => `_src.${q(c)}`).join(', ')})`);
    const keyset = (vals: Record<string, string>) => {
      const ps = cursor.map((c) => param(vals[c]));
      return `${tuple(cursor)} > ${ps.length === 1 ? ps[0] : `(${ps.join(', ')})`}`;
    };
    const first = `_src.${q(cursor[0])}`;
    if (ctx.since !== undefined) where.push(`${first} >= ${param(ctx.since)}`);
    if (ctx.until !== undefined) where.push(`${first} < ${param(ctx.until)}`);
    if (ctx.startAfter) {
      const c = ctx.startAfter.cursor;
      const vals: Record<string, string> = {};
      for (const col of cursor) {
        const v = c?.[col];
        if (typeof v !== 'string') {
          throw new EtlError('CHECKPOINT_MISMATCH', `The resume position has no value for cursor column ${JSON.stringify(col)}`);
        }
        vals[col] = v;
      }
      where.push(keyset(vals));
      firstSeq = ctx.startAfter.seq + 1;
    } else if (!boundedRun) {
      const wm = parseWatermark(ctx.watermark, cursor);
      if (wm) {
        if (config.lookback) {
          where.push(`${first} >= (${param(wm.cursor[cursor[0]])}::timestamptz - ${param(lookbackToInterval(config.lookback))}::interval)`);
        } else {
          where.push(keyset(wm.cursor));
        }
      }
    }
  } else if (ctx.startAfter) {
    // No cursor: resume by position. Only deterministic when the query's order is (give `cursor` for that).
    firstSeq = ctx.startAfter.seq + 1;
  } else if (boundedRun) {
    throw new EtlError('USAGE', '--since/--until need a `cursor` on the postgres source (they bound its first column)');
  }

  if (ctx.shard && ctx.shard.count > 1) where.push(shardCondition(config, ctx.shard, q, param));
  const cursorSelect = cursor.map((c, i) => `, _src.${q(c)}::text AS ${q(CURSOR_ALIAS + i)}`).join('');
  let sql = `SELECT _src.*${cursorSelect} FROM (${inner}\n) AS _src`;
  if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
  if (cursor.length) sql += ` ORDER BY ${cursor.map((c) => `_src.${q(c)}`).join(', ')}`;
  if (ctx.limit !== undefined) sql += ` LIMIT ${param(ctx.limit)}`;
  if (cursor.length === 0 && firstSeq > 0) sql += ` OFFSET ${param(firstSeq)}`;
  return { sql, values, source, firstSeq, boundedRun };
}

class PostgresSourceReader implements PostgresReader {
  readonly boundedRun: boolean;
  #config: PostgresSourceConfig;
  #ctx: ExtractContext;
  #plan: PostgresPlan;
  #last: Record<string, string> | undefined;
  #previous: PostgresWatermark | undefined;
  #rows = 0;
  #client: pg.Client | undefined;
  #cursor: Cursor | undefined;

  constructor(config: PostgresSourceConfig, ctx: ExtractContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.#plan = planPostgresQuery(config, ctx);
    this.boundedRun = this.#plan.boundedRun;
    this.#previous = config.cursor ? parseWatermark(ctx.watermark, config.cursor) : undefined;
  }

  watermark(): PostgresWatermark | undefined {
    if (!this.#config.cursor) return undefined;
    return this.#last ? { cursor: { ...this.#last } } : this.#previous;
  }

  rowsRead(): number {
    return this.#rows;
  }

  #fail(message: string, cause: unknown): EtlError {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return new EtlError('SOURCE_READ', `${message}: ${detail.split(this.#config.url).join(redactConnectionUrl(this.#config.url))}`, {
      cause,
      context: { component: 'postgres', source: this.#plan.source, url: redactConnectionUrl(this.#config.url) },
    });
  }

  async *records(): AsyncGenerator<SourceRecord> {
    const { logger, signal } = this.#ctx;
    const cursorCols = this.#config.cursor ?? [];
    const client = new (pgLib().Client)(clientConfig(this.#config, this.#ctx.baseDir));
    this.#client = client;
    client.on('error', (err) => logger.warn('postgres connection error', { error: err.message }));
    try {
      await client.connect();
    } catch (err) {
      throw this.#fail(`Could not connect to PostgreSQL at ${redactConnectionUrl(this.#config.url)}`, err);
    }
    logger.info('postgres source reading', {
      url: redactConnectionUrl(this.#config.url),
      source: this.#plan.source,
      cursor: cursorCols,
      startAfter: this.#ctx.startAfter?.cursor,
      boundedRun: this.boundedRun,
    });
    const cursor = client.query(new (CursorClass())(this.#plan.sql, this.#plan.values, { types: postgresTypes(this.#config.numeric) }));
    this.#cursor = cursor;
    let seq = this.#plan.firstSeq;
    let timestampCursor: boolean[] | undefined;
    try {
      for (;;) {
        if (signal?.aborted) throw new EtlError('INTERRUPTED', 'PostgreSQL read interrupted');
        let rows: Record<string, unknown>[];
        let fields: { name: string; dataTypeID: number }[];
        try {
          ({ rows, fields } = await new Promise<{ rows: Record<string, unknown>[]; fields: { name: string; dataTypeID: number }[] }>((ok, ko) => {
            cursor.read(this.#config.batchSize, (err, r, result) => (err ? ko(err) : ok({ rows: r, fields: result.fields })));
          }));
        } catch (err) {
          throw this.#fail(`PostgreSQL query on ${this.#plan.source} failed`, err);
        }
        if (rows.length === 0) break;
        if (timestampCursor === undefined) {
          const byName = new Map(fields.map((f) => [f.name, f.dataTypeID]));
          timestampCursor = cursorCols.map((c) => {
            const t = byName.get(c);
            return t === OID.timestamptz || t === OID.timestamp;
          });
        }
        for (const row of rows) {
          let pos: SourcePosition;
          if (cursorCols.length) {
            const values: Record<string, string> = {};
            for (let i = 0; i < cursorCols.length; i++) {
              const key = CURSOR_ALIAS + i;
              const text = row[key];
              delete row[key];
              if (text === null || text === undefined) {
                throw new EtlError(
                  'SOURCE_READ',
                  `Cursor column ${JSON.stringify(cursorCols[i])} is NULL in a row of ${this.#plan.source} (row ${seq}); cursor columns must be NOT NULL`,
                  { context: { component: 'postgres', source: this.#plan.source, seq } },
                );
              }
              values[cursorCols[i]] = timestampCursor[i] ? pgTimestampToIso(String(text)) : String(text);
            }
            pos = { seq, source: this.#plan.source, cursor: values };
            this.#last = values;
          } else {
            pos = { seq, source: this.#plan.source };
          }
          seq++;
          this.#rows++;
          yield { pos, row };
        }
        if (rows.length < this.#config.batchSize) break;
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    const cursor = this.#cursor;
    const client = this.#client;
    this.#cursor = undefined;
    this.#client = undefined;
    if (cursor) await cursor.close().catch(() => undefined);
    if (client) await client.end().catch(() => undefined);
  }
}

/** The connection settings of a postgres source. */
function clientConfig(c: PostgresSourceConfig, baseDir: string): pg.ClientConfig {
  let ssl: pg.ClientConfig['ssl'];
  if (c.ssl === true) ssl = true;
  else if (typeof c.ssl === 'object') {
    ssl = { rejectUnauthorized: c.ssl.rejectUnauthorized };
    if (c.ssl.ca) ssl.ca = readFileSync(resolvePath(baseDir, c.ssl.ca), 'utf8');
  }
  return {
    connectionString: c.url,
    ...(ssl !== undefined ? { ssl } : {}),
    application_name: c.applicationName,
    ...(c.statementTimeout !== undefined ? { statement_timeout: c.statementTimeout } : {}),
    options: '-c DateStyle=ISO',
    types: postgresTypes(c.numeric),
  };
}

/** The `postgres` source. */
export const postgresSource: SourceDefinition<typeof PostgresSource> = {
  type: 'postgres',
  summary: 'A PostgreSQL table or query, streamed with a server-side cursor (keyset-incremental with `cursor`).',
  config: PostgresSource,
  capabilities: { yields: 'rows', cursorBounds: true, shards: 'rows' },
  create(config: PostgresSourceConfig, ctx: ExtractContext): PostgresReader {
    return new PostgresSourceReader(config, ctx);
  },
  inspect: inspectPostgres,
};
