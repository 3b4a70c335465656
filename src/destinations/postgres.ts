import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as pg from 'pg';
import { PostgresDestination, type PostgresDestinationConfig } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { EtlError } from '../core/errors.js';
import { createPostgresLoader } from '../load/postgres-upsert.js';
import { EXPORT_ROW } from './export-file.js';

/** The table an `--emulator` run writes instead of the configured one: never the real table. */
export function emulatorTable(table: string): string {
  return `${table}_emulator`;
}

/** The connection settings of a postgres destination. */
export function destinationConnection(dest: Pick<PostgresDestinationConfig, 'url' | 'ssl' | 'applicationName'>, baseDir: string): pg.ClientConfig {
  let ssl: pg.ClientConfig['ssl'];
  if (dest.ssl === true) ssl = true;
  else if (typeof dest.ssl === 'object') {
    ssl = { rejectUnauthorized: dest.ssl.rejectUnauthorized };
    if (dest.ssl.ca) ssl.ca = readFileSync(path.resolve(baseDir, dest.ssl.ca), 'utf8');
  }
  return { connectionString: dest.url, ...(ssl !== undefined ? { ssl } : {}), application_name: dest.applicationName };
}

/**
 * The `postgres` destination: export rows upserted into a table by Klaviyo id, one transaction per batch, so a
 * nightly incremental export keeps a warehouse table current (src/load/postgres-upsert.ts).
 */
export const postgresDestination: DestinationDefinition<typeof PostgresDestination> = {
  type: 'postgres',
  summary: 'Upsert export rows into a PostgreSQL table by Klaviyo id (created from the columns when missing), one transaction per batch.',
  config: PostgresDestination,
  capabilities: { accepts: [EXPORT_ROW] },
  create(dest, ctx) {
    const columns = ctx.items.columns;
    if (!columns) throw new EtlError('USAGE', `the postgres destination needs a transform with output columns (got items of kind ${ctx.items.kind})`);
    let table = dest.table;
    if (ctx.run.emulatorOutputDir) {
      table = emulatorTable(dest.table);
      ctx.logger.warn('--emulator run: the export is upserted into a table of its own, never the configured one', { table });
    }
    const loader = createPostgresLoader(
      { connection: destinationConnection(dest, ctx.baseDir), table, columns, key: dest.key, columnTypes: dest.columnTypes, batchSize: dest.batchSize, method: dest.method },
      { logger: ctx.logger, stats: ctx.stats, signal: ctx.signal, dryRun: ctx.dryRun, onAck: ctx.onAck, onReject: ctx.onReject },
    );
    let closed = false;
    return {
      write: (items) => loader.write(items),
      close: async () => {
        await loader.close();
        closed = true;
      },
      abort: () => loader.abort(),
      pendingJobs: () => [],
      output: () => (closed && !ctx.dryRun ? loader.output : undefined),
    };
  },
};
