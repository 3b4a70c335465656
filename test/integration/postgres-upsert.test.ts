import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportRowItem } from '../../src/core/record.js';
import { createPostgresLoader } from '../../src/load/postgres-upsert.js';
import { recordingContext } from '../unit/load/helpers.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';

/**
 * The postgres export loader on the real server, with hand-built export rows: duplicates within a batch (the last
 * wins), rows whose values do not fit the table's column types or have no key are rejected with their column (never
 * dropped), acknowledgement only after COMMIT, `columnTypes`, and an existing table without a column refused clearly.
 */

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('etl_upsert');
});

afterAll(async () => {
  await db?.drop();
});

const COLUMNS = ['id', 'n', 'tags'];

function item(seq: number, payload: Record<string, unknown>): ExportRowItem {
  const pos = { seq, source: 'klaviyo:test' };
  return { kind: 'export-row', payload, first: pos, last: pos };
}

for (const method of ['copy', 'insert'] as const) {
  describe(`postgres loader (${method})`, () => {
    it('de-duplicates a batch by key (last wins), rejects unfit rows with their column, acks after commit', async () => {
      const table = `${db.name}.dedupe_${method}`;
      const { ctx, acked, rejects } = recordingContext();
      const loader = createPostgresLoader({ connection: { connectionString: db.url }, table, columns: COLUMNS, method, batchSize: 100, columnTypes: { n: 'bigint' } }, ctx);
      await loader.write([
        item(0, { id: 'a', n: 1, tags: ['x'] }),
        item(1, { id: 'b', n: 2, tags: null }),
        item(2, { id: 'a', n: 3, tags: { k: 'v' } }),
        item(3, { id: 'c', n: 'many', tags: [] }),
        item(4, { id: null, n: 5, tags: [] }),
      ]);
      expect(acked).toHaveLength(0); // the batch is not full: nothing written, nothing acknowledged
      await loader.close();
      expect(acked.map((a) => a.first.seq)).toEqual([0, 1, 2]);
      expect(rejects.map((r) => [r.seq, r.code, r.field])).toEqual([
        [3, 'INVALID_VALUE', 'n'],
        [4, 'MISSING_IDENTIFIER', 'id'],
      ]);
      const rows = await db.client.query(`SELECT id, n, tags FROM ${table} ORDER BY id`);
      expect(rows.rows).toEqual([
        { id: 'a', n: '3', tags: { k: 'v' } },
        { id: 'b', n: '2', tags: null },
      ]);
      const types = await db.client.query(`SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [db.name, `dedupe_${method}`]);
      expect(types.rows.map((r) => r.data_type)).toEqual(['text', 'bigint', 'jsonb']);
    });
  });
}

describe('postgres loader, existing table', () => {
  it('a table without one of the columns fails the run clearly (DESTINATION_WRITE), nothing acknowledged', async () => {
    await db.client.query(`CREATE TABLE ${db.name}.narrow (id text PRIMARY KEY, n numeric)`);
    const { ctx, acked } = recordingContext();
    const loader = createPostgresLoader({ connection: { connectionString: db.url }, table: `${db.name}.narrow`, columns: COLUMNS, batchSize: 1 }, ctx);
    await expect(loader.write([item(0, { id: 'a', n: 1, tags: [] })])).rejects.toMatchObject({ code: 'DESTINATION_WRITE', message: expect.stringMatching(/has no column tags/) });
    await loader.abort();
    expect(acked).toHaveLength(0);
  });
});
