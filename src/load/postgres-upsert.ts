/**
 * The postgres export loader: export rows upserted into a table by a key column (Klaviyo's id), one transaction per
 * batch, acknowledged only after COMMIT. Within a batch rows are de-duplicated by key (the last wins). A missing table
 * is created from the batch's columns (types: postgres-types.ts) with the key as its primary key.
 *
 * Two ways to load a batch (`method`), compared by bench/cases/postgres-upsert.js:
 * - `copy`: COPY the batch into a temporary staging table (`pg-copy-streams`, text format), then one
 *   `INSERT … SELECT … ON CONFLICT (key) DO UPDATE` merges it;
 * - `insert`: multi-row `INSERT … VALUES … ON CONFLICT (key) DO UPDATE` statements (at most 65535 parameters each).
 * Either way a row whose values equal the stored row's is not written again (`WHERE … IS DISTINCT FROM …`), so a
 * re-run that changes nothing leaves the table (and its rows' versions) unchanged, and a resumed run, which upserts
 * again the rows after its checkpoint, ends with the table one clean run leaves.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type * as pg from 'pg';
import type * as pgCopyStreams from 'pg-copy-streams';
import { EtlError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { assertItemKind, type ExportRow, type ExportRowItem, type LoadItem, type Reject } from '../core/record.js';
import { copyField, inferColumnType, kindOfType, valueText, type ValueKind } from './postgres-types.js';
import type { LoadContext, Loader } from './types.js';

const pgLib = lazyModule<typeof pg>('pg');
const copyStreams = lazyModule<typeof pgCopyStreams>('pg-copy-streams');

/** Options of {@link createPostgresLoader}. */
export interface PostgresLoaderOptions {
  /** Connection settings (`connectionString`, `ssl`, `application_name`). */
  connection: pg.ClientConfig;
  /** Target table, optionally schema-qualified (`analytics.klaviyo_events`). */
  table: string;
  /** Output columns, in order. */
  columns: readonly string[];
  /** The column rows are upserted by. @default "id" */
  key?: string;
  /** SQL types of columns of a table created by the run, overriding the types chosen from values. */
  columnTypes?: Record<string, string>;
  /** Rows per transaction. @default 1000 */
  batchSize?: number;
  /** How a batch is loaded. @default "copy" */
  method?: 'copy' | 'insert';
}

/** A table's columns and what their values are sent as. */
interface TableShape {
  types: Map<string, string>;
  kinds: ValueKind[];
}

const MAX_PARAMETERS = 65_535;

/** The postgres loader: also tells the table it writes, and releases its connection without writing on abort. */
export interface PostgresLoader extends Loader {
  /** `postgres:<table>`. */
  readonly output: string;
  abort(): Promise<void>;
}

/** The postgres export loader (see the module comment). In `dryRun` nothing is written; rows are acked. */
export function createPostgresLoader(options: PostgresLoaderOptions, ctx: LoadContext): PostgresLoader {
  return new PostgresUpsertLoader(options, ctx);
}

class PostgresUpsertLoader implements PostgresLoader {
  readonly #options: PostgresLoaderOptions;
  readonly #ctx: LoadContext;
  readonly #key: string;
  readonly #batchSize: number;
  readonly #target: string;
  #client: pg.Client | undefined;
  #shape: TableShape | undefined;
  #buffer: ExportRowItem[] = [];
  #stagingReady = false;

  constructor(options: PostgresLoaderOptions, ctx: LoadContext) {
    this.#options = options;
    this.#ctx = ctx;
    this.#key = options.key ?? 'id';
    this.#batchSize = options.batchSize ?? 1000;
    this.#target = qualifiedName(options.table);
    if (!options.columns.includes(this.#key)) {
      throw new EtlError('USAGE', `the postgres destination's key column ${JSON.stringify(this.#key)} is not among the export's columns (${options.columns.join(', ')})`);
    }
  }

  get output(): string {
    return `postgres:${this.#options.table}`;
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, 'export-row');
      this.#buffer.push(item);
    }
    while (this.#buffer.length >= this.#batchSize) await this.#flush(this.#buffer.splice(0, this.#batchSize));
  }

  async close(): Promise<void> {
    try {
      if (this.#buffer.length > 0) await this.#flush(this.#buffer.splice(0));
    } finally {
      await this.#end();
    }
  }

  /** Release the connection without writing what is buffered (after a failure). */
  async abort(): Promise<void> {
    this.#buffer = [];
    await this.#end();
  }

  async #end(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #flush(items: ExportRowItem[]): Promise<void> {
    if (this.#ctx.dryRun) {
      this.#ctx.onAck(items);
      return;
    }
    const client = await this.#connect();
    const shape = this.#shape ?? (this.#shape = await this.#ensureTable(client, items));
    const { rows, rejects } = this.#prepare(items, shape);
    if (rows.length > 0) {
      try {
        await client.query('BEGIN');
        if (this.#options.method === 'insert') await this.#insert(client, rows, shape);
        else await this.#copyMerge(client, rows);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw writeError(`upserting ${rows.length} rows into ${this.#options.table} failed`, error);
      }
    }
    if (rejects.length > 0) this.#ctx.onReject(rejects);
    const rejected = new Set(rejects.map((r) => r.seq));
    this.#ctx.onAck(items.filter((i) => !rejected.has(i.first.seq)));
  }

  async #connect(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new (pgLib().Client)(this.#options.connection);
    client.on('error', () => {}); // a dropped connection surfaces at the next query
    try {
      await client.connect();
    } catch (error) {
      throw writeError(`connecting to the destination database failed`, error);
    }
    this.#client = client;
    return client;
  }

  /** The batch's rows as text per column, de-duplicated by key (last wins); rows that cannot be sent are rejects. */
  #prepare(items: ExportRowItem[], shape: TableShape): { rows: (string | null)[][]; rejects: Reject[] } {
    const columns = this.#options.columns;
    const keyIndex = columns.indexOf(this.#key);
    const byKey = new Map<string, (string | null)[]>();
    const rejects: Reject[] = [];
    for (const item of items) {
      const texts: (string | null)[] = [];
      let failed: string | undefined;
      for (let c = 0; c < columns.length; c++) {
        const text = valueText(item.payload[columns[c]!], shape.kinds[c]!);
        if (text === undefined) {
          failed = columns[c];
          break;
        }
        texts.push(text);
      }
      const key = failed === undefined ? texts[keyIndex] : undefined;
      if (failed !== undefined) {
        rejects.push(rowReject(item, 'INVALID_VALUE', `${failed}: ${JSON.stringify(item.payload[failed!])} does not fit the column's type ${shape.types.get(failed!)}`, failed));
      } else if (key === null || key === undefined || key === '') {
        rejects.push(rowReject(item, 'MISSING_IDENTIFIER', `the key column ${this.#key} has no value`, this.#key));
      } else {
        byKey.delete(key); // the last row of a key wins, in its position
        byKey.set(key, texts);
      }
    }
    return { rows: [...byKey.values()], rejects };
  }

  /** The table's columns; creates the table from the first batch's values when it does not exist. */
  async #ensureTable(client: pg.Client, items: ExportRowItem[]): Promise<TableShape> {
    try {
      let types = await tableColumns(client, this.#target);
      if (types === undefined) {
        await client.query(this.#createTableSql(items));
        this.#ctx.logger.info('created the destination table', { table: this.#options.table });
        types = (await tableColumns(client, this.#target))!;
      }
      const missing = this.#options.columns.filter((c) => !types!.has(c));
      if (missing.length > 0) {
        throw new EtlError('DESTINATION_WRITE', `the table ${this.#options.table} has no column ${missing.join(', ')}: add them (ALTER TABLE … ADD COLUMN) or drop the table to have it created`);
      }
      if (!(await hasUniqueKey(client, this.#target, this.#key))) {
        throw new EtlError('DESTINATION_WRITE', `the table ${this.#options.table} has no primary key or unique index on ${this.#key} alone, which an upsert needs: add one (CREATE UNIQUE INDEX … (${this.#key}))`);
      }
      return { types, kinds: this.#options.columns.map((c) => kindOfType(types!.get(c)!)) };
    } catch (error) {
      throw error instanceof EtlError ? error : writeError(`preparing the table ${this.#options.table} failed`, error);
    }
  }

  #createTableSql(items: ExportRowItem[]): string {
    const ident = pgLib().escapeIdentifier;
    const defs = this.#options.columns.map((c) => {
      const type = this.#options.columnTypes?.[c] ?? inferColumnType(items.map((i) => i.payload[c]));
      return `${ident(c)} ${type}${c === this.#key ? ' NOT NULL' : ''}`;
    });
    return `CREATE TABLE IF NOT EXISTS ${this.#target} (${defs.join(', ')}, PRIMARY KEY (${ident(this.#key)}))`;
  }

  /** `ON CONFLICT (key) DO UPDATE SET … WHERE (stored) IS DISTINCT FROM (new)`, or DO NOTHING for a key-only table. */
  #onConflict(shape: TableShape): string {
    const ident = pgLib().escapeIdentifier;
    const others = this.#options.columns.filter((c) => c !== this.#key);
    if (others.length === 0) return `ON CONFLICT (${ident(this.#key)}) DO NOTHING`;
    // json has no equality operator: compared as text
    const cmp = (prefix: string, c: string) => `${prefix}.${ident(c)}${shape.types.get(c) === 'json' ? '::text' : ''}`;
    return `ON CONFLICT (${ident(this.#key)}) DO UPDATE SET ${others.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}
      WHERE (${others.map((c) => cmp('t', c)).join(', ')}) IS DISTINCT FROM (${others.map((c) => cmp('EXCLUDED', c)).join(', ')})`;
  }

  async #copyMerge(client: pg.Client, rows: (string | null)[][]): Promise<void> {
    const ident = pgLib().escapeIdentifier;
    const cols = this.#options.columns.map((c) => ident(c)).join(', ');
    if (!this.#stagingReady) {
      await client.query(`CREATE TEMP TABLE IF NOT EXISTS klaviyo_etl_stage (LIKE ${this.#target}) ON COMMIT DELETE ROWS`);
      this.#stagingReady = true;
    }
    const text = rows.map((r) => r.map(copyField).join('\t') + '\n').join('');
    await pipeline(Readable.from([text]), client.query(copyStreams().from(`COPY klaviyo_etl_stage (${cols}) FROM STDIN`)));
    await client.query(`INSERT INTO ${this.#target} AS t (${cols}) SELECT ${cols} FROM klaviyo_etl_stage ${this.#onConflict(this.#shape!)}`);
  }

  async #insert(client: pg.Client, rows: (string | null)[][], shape: TableShape): Promise<void> {
    const ident = pgLib().escapeIdentifier;
    const columns = this.#options.columns;
    const cols = columns.map((c) => ident(c)).join(', ');
    const casts = columns.map((c) => `::${shape.types.get(c)!}`);
    const perStatement = Math.max(1, Math.min(1000, Math.floor(MAX_PARAMETERS / columns.length)));
    const onConflict = this.#onConflict(shape);
    for (let start = 0; start < rows.length; start += perStatement) {
      const chunk = rows.slice(start, start + perStatement);
      const values = chunk.map((_, r) => `(${columns.map((_c, c) => `$${r * columns.length + c + 1}${casts[c]}`).join(', ')})`);
      await client.query(`INSERT INTO ${this.#target} AS t (${cols}) VALUES ${values.join(', ')} ${onConflict}`, chunk.flat());
    }
  }

  pendingJobs(): string[] {
    return [];
  }
}

/** `schema.table` (or `table`) as a quoted SQL name. */
function qualifiedName(table: string): string {
  return table
    .split('.')
    .map((part) => pgLib().escapeIdentifier(part))
    .join('.');
}

/** The table's column → SQL type, or undefined when there is no such table. */
async function tableColumns(client: pg.Client, target: string): Promise<Map<string, string> | undefined> {
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [target]);
  const oid = exists.rows[0]?.oid;
  if (!oid) return undefined;
  const r = await client.query<{ name: string; type: string }>(
    'SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
    [oid],
  );
  return new Map(r.rows.map((row) => [row.name, row.type]));
}

/** Whether `column` alone has a primary key or unique index (what ON CONFLICT (column) needs). */
async function hasUniqueKey(client: pg.Client, target: string, column: string): Promise<boolean> {
  const r = await client.query(
    `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND a.attname = $2`,
    [target, column],
  );
  return r.rowCount !== null && r.rowCount > 0;
}

function rowReject(item: ExportRowItem, code: string, message: string, field: string): Reject {
  const { first } = item;
  const reject: Reject = { stage: 'load', code, message, source: first.source, seq: first.seq, field, row: item.payload as ExportRow };
  if (first.line !== undefined) reject.line = first.line;
  return reject;
}

function writeError(what: string, error: unknown): EtlError {
  const message = error instanceof Error ? error.message : String(error);
  return new EtlError('DESTINATION_WRITE', `${what}: ${message}`, { cause: error, context: { component: 'destination' } });
}
