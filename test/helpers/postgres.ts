import pg from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * The PostgreSQL server integration tests use: `DATABASE_URL`, else the PG* variables, else
 * `postgres://postgres@127.0.0.1:5432/test`. A test that cannot reach it fails (never skips).
 */
export function testDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const user = encodeURIComponent(env.PGUSER ?? 'postgres');
  const password = env.PGPASSWORD ? `:${encodeURIComponent(env.PGPASSWORD)}` : '';
  const host = env.PGHOST ?? '127.0.0.1';
  const port = env.PGPORT ?? '5432';
  const database = encodeURIComponent(env.PGDATABASE ?? 'test');
  return `postgres://${user}${password}@${host}:${port}/${database}`;
}

/** A schema created for one test file (unique name), dropped with everything in it by `drop()`. */
export interface TestSchema {
  url: string;
  /** Unquoted schema name (safe identifier: lower-case letters, digits, underscore). */
  name: string;
  /** An admin client for setting up tables (search_path is the schema). */
  client: pg.Client;
  drop(): Promise<void>;
}

export async function createTestSchema(prefix = 'etl_test'): Promise<TestSchema> {
  const url = testDatabaseUrl();
  const client = new pg.Client({ connectionString: url, application_name: 'klaviyo-etl-tests' });
  await client.connect();
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await client.query(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  await client.query(`SET search_path TO ${pg.escapeIdentifier(name)}`);
  return {
    url,
    name,
    client,
    async drop() {
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
