import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';

/**
 * Issue 15, "Catch mistakes before the first request", for a PostgreSQL source: the columns of the table or query
 * (`LIMIT 0`, no row read) against the mapping, through `validate --with-data` and a run. Fails (never skips)
 * without PostgreSQL.
 */

let db: TestSchema;
let tmp: string;

beforeAll(async () => {
  db = await createTestSchema('etl_files_pg');
  await db.client.query(`CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, first_name text, data jsonb)`);
  await db.client.query(`INSERT INTO customers VALUES (1, 'a@example.com', 'Ann', '{"tier": "gold"}')`);
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-files-pg-'));
});

afterAll(async () => {
  await db?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function pipeline(name: string, profile: string): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1\nname: ${name}\nsource:\n  type: postgres\n  url: \${DATABASE_URL}\n  table: \${PG_SCHEMA}.customers\ntransform:\n  type: profile\n  profile:\n${profile}\ndestination:\n  type: klaviyo\n`,
  );
  return file;
}

describe('pre-flight of a postgres source (through the CLI)', () => {
  it('a misspelt column is SOURCE_COLUMN_MISSING with a did-you-mean from the table; a path into a jsonb column is fine; the run stops before any request', async () => {
    const env = { DATABASE_URL: db.url, PG_SCHEMA: db.name };
    const file = await pipeline('pg-misspelt', '    email: email\n    first_name: firstname\n    properties:\n      Tier: data.tier');
    const validated = await cli(['validate', file, '--with-data'], { env });
    expect(validated.code).toBe(2);
    expect(validated.stdout).toMatch(
      /pg-misspelt\.yaml:11:17 {2}SOURCE_COLUMN_MISSING {2}transform\.profile\.first_name: column "firstname" is not among the columns of postgres:\S+customers \(did you mean "first_name"\?\); they are "id", "email", "first_name", "data"/,
    );
    expect(validated.stdout).not.toContain('data.tier');
    const reportFile = path.join(tmp, 'report.json');
    const run = await cli(['run', file, '--dry-run', '--report', reportFile, '--state-dir', path.join(tmp, 'state')], { env });
    expect(run.code).toBe(1);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as { error?: { code: string }; rows: { read: number } };
    expect(report.error?.code).toBe('SOURCE_COLUMN_MISSING');
    expect(report.rows.read).toBe(0);

    const fixed = await pipeline('pg-fixed', '    email: email\n    first_name: first_name\n    properties:\n      Tier: data.tier');
    expect((await cli(['validate', fixed, '--with-data'], { env })).code).toBe(0);
  }, 60_000);
});
