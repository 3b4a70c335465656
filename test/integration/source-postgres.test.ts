import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSource, type PostgresSourceConfig } from '../../src/config/schema.js';
import { EtlError } from '../../src/core/errors.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { SourcePosition, SourceRecord } from '../../src/core/record.js';
import { postgresSource, type PostgresReader } from '../../src/extract/postgres.js';
import type { ExtractContext } from '../../src/extract/types.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('etl_pg_src');
});

afterAll(async () => {
  await db?.drop();
});

function config(input: Record<string, unknown>): PostgresSourceConfig {
  return PostgresSource.parse({ type: 'postgres', url: db.url, ...input });
}

function reader(input: Record<string, unknown>, ctx: Partial<ExtractContext> = {}): PostgresReader {
  return postgresSource.create(config(input), { baseDir: process.cwd(), env: {}, logger: silentLogger, ...ctx }) as PostgresReader;
}

async function collect(r: PostgresReader): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const rec of r.records()) out.push(rec);
  return out;
}

const t = (name: string) => `${db.name}.${name}`;

describe('postgres source: streaming', () => {
  it('streams 100,000 rows through a server-side cursor with flat memory', async () => {
    await db.client.query(`CREATE TABLE big (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, pad text NOT NULL)`);
    // ~150 MB of row text: holding the result set in memory would blow the +100 MB bound below.
    await db.client.query(
      `INSERT INTO big SELECT g, timestamptz '2024-01-01' + g * interval '1 second', g::text || repeat('x', 1500) FROM generate_series(1, 100000) g`,
    );
    const r = reader({ table: t('big'), cursor: ['id'], batchSize: 1000 });
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let count = 0;
    let lastId = 0;
    for await (const rec of r.records()) {
      const id = Number(rec.row.id);
      expect(id).toBe(lastId + 1);
      lastId = id;
      count++;
      if (count % 5000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    expect(count).toBe(100_000);
    expect(r.watermark()).toEqual({ cursor: { id: '100000' } });
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  });
});

describe('postgres source: keyset cursor', () => {
  beforeAll(async () => {
    // 1,000 rows over only 10 distinct updated_at values (microsecond precision), ids inserted out of order.
    await db.client.query(`CREATE TABLE ties (id int PRIMARY KEY, updated_at timestamptz NOT NULL, name text)`);
    await db.client.query(
      `INSERT INTO ties SELECT g, timestamptz '2024-05-01 00:00:00.000001+00' + (g % 10) * interval '1 microsecond', 'n' || g
       FROM (SELECT g FROM generate_series(1, 1000) g ORDER BY md5(g::text)) s`,
    );
  });

  it('pages through many rows sharing the same updated_at without losing or repeating one', async () => {
    const all = await collect(reader({ table: t('ties'), cursor: ['updated_at', 'id'], batchSize: 7 }));
    expect(all).toHaveLength(1000);
    expect(new Set(all.map((r) => r.row.id)).size).toBe(1000);
    // ordered by (updated_at, id)
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1].pos.cursor!;
      const b = all[i].pos.cursor!;
      expect(a.updated_at! < b.updated_at! || (a.updated_at === b.updated_at && Number(a.id) < Number(b.id))).toBe(true);
    }
    expect(all[0].pos).toEqual({ seq: 0, source: `postgres:${t('ties')}`, cursor: { updated_at: '2024-05-01T00:00:00.000001+00:00', id: '10' } });

    // keyset restarts in the middle of runs of equal updated_at: 7 rows per "run", resumed from the last position
    const paged: SourceRecord[] = [];
    let after: SourcePosition | undefined;
    for (;;) {
      const page = await collect(reader({ table: t('ties'), cursor: ['updated_at', 'id'], batchSize: 3 }, { limit: 7, startAfter: after }));
      if (page.length === 0) break;
      paged.push(...page);
      after = page[page.length - 1].pos;
    }
    expect(paged.map((r) => r.row.id)).toEqual(all.map((r) => r.row.id));
    expect(paged.map((r) => r.pos.seq)).toEqual(all.map((_, i) => i));
  });

  it('resumes mid-table after startAfter with the same seq numbering as a fresh run', async () => {
    const all = await collect(reader({ table: t('ties'), cursor: ['updated_at', 'id'], batchSize: 50 }));
    const resumed = await collect(reader({ table: t('ties'), cursor: ['updated_at', 'id'], batchSize: 50 }, { startAfter: all[441].pos }));
    expect(resumed).toEqual(all.slice(442));
  });

  it('a consumer that stops early closes the cursor and the connection', async () => {
    const app = `etl-test-${Date.now()}`;
    const r = reader({ table: t('ties'), cursor: ['updated_at', 'id'], batchSize: 10, applicationName: app });
    let n = 0;
    for await (const _ of r.records()) if (++n === 15) break;
    expect(n).toBe(15);
    // the backend may take a moment to exit after the socket closed: wait for it (bounded), then assert
    let open = -1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      if (i > 0) await new Promise((ok) => setTimeout(ok, 50));
      const { rows } = await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [app]);
      open = rows[0].n;
    }
    expect(open).toBe(0);
  });

  it('limit stops after N rows', async () => {
    const r = reader({ table: t('ties'), cursor: ['updated_at', 'id'] }, { limit: 5 });
    expect(await collect(r)).toHaveLength(5);
  });
});

describe('postgres source: watermark', () => {
  it('a second run sends only rows updated since the watermark (boundary row neither lost nor re-sent)', async () => {
    await db.client.query(`CREATE TABLE orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, total numeric(12,2))`);
    await db.client.query(
      `INSERT INTO orders SELECT g, timestamptz '2024-06-01 10:00:00.123456+00' + g * interval '1 minute', g * 1.5 FROM generate_series(1, 50) g`,
    );
    const first = reader({ table: t('orders'), cursor: ['updated_at', 'id'], batchSize: 16 });
    const firstRows = await collect(first);
    expect(firstRows).toHaveLength(50);
    const wm = first.watermark();
    expect(wm).toEqual({ cursor: { updated_at: '2024-06-01T10:50:00.123456+00:00', id: '50' } });
    expect(first.boundedRun).toBe(false);

    // same updated_at as the boundary row but a higher id; one microsecond later; an updated old row
    await db.client.query(`INSERT INTO orders VALUES (51, '2024-06-01 10:50:00.123456+00', 1), (52, '2024-06-01 10:50:00.123457+00', 2)`);
    await db.client.query(`UPDATE orders SET updated_at = '2024-06-02 00:00:00+00' WHERE id = 3`);

    const second = reader({ table: t('orders'), cursor: ['updated_at', 'id'], batchSize: 16 }, { watermark: JSON.parse(JSON.stringify(wm)) });
    const secondRows = await collect(second);
    expect(secondRows.map((r) => r.row.id)).toEqual(['51', '52', '3']);
    expect(second.watermark()).toEqual({ cursor: { updated_at: '2024-06-02T00:00:00+00:00', id: '3' } });

    // nothing new: empty run keeps the previous watermark
    const third = reader({ table: t('orders'), cursor: ['updated_at', 'id'] }, { watermark: second.watermark() });
    expect(await collect(third)).toHaveLength(0);
    expect(third.watermark()).toEqual(second.watermark());

    // lookback re-reads the window behind the watermark
    const lb = reader({ table: t('orders'), cursor: ['updated_at', 'id'], lookback: '2h' }, { watermark: { cursor: { updated_at: '2024-06-01T10:50:00.123456+00:00', id: '50' } } });
    const lbIds = (await collect(lb)).map((r) => Number(r.row.id));
    // 08:50:00.123456 .. : rows 1..50 are 10:01..10:50, all within 2h, plus 51, 52, 3
    expect(lbIds.sort((a, b) => a - b)).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));
  });

  it('since/until bound the first cursor column for one run and mark it bounded', async () => {
    const r = reader(
      { table: t('orders'), cursor: ['updated_at', 'id'] },
      { since: '2024-06-01T10:10:00.123456Z', until: '2024-06-01T10:20:00.123456Z', watermark: { cursor: { updated_at: '2030-01-01T00:00:00Z', id: '1' } } },
    );
    const rows = await collect(r);
    expect(rows.map((x) => Number(x.row.id))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(r.boundedRun).toBe(true);
    expect(r.watermark()).toEqual({ cursor: { updated_at: '2024-06-01T10:19:00.123456+00:00', id: '19' } });
  });

  it('rejects a stored watermark that does not match the cursor columns', () => {
    expect(() => reader({ table: t('orders'), cursor: ['updated_at', 'id'] }, { watermark: { cursor: { created_at: 'x' } } })).toThrow(
      expect.objectContaining({ code: 'CHECKPOINT_MISMATCH' }),
    );
  });
});

describe('postgres source: hostile values', () => {
  it('quotes and SQL in strings, cursor values and table names change nothing', async () => {
    const hostile = `'; DROP TABLE victim; --`;
    const table = `we"ird'; DROP TABLE victim; --`;
    await db.client.query(`CREATE TABLE victim (x int)`);
    await db.client.query(`CREATE TABLE "we""ird'; DROP TABLE victim; --" (name text NOT NULL, id int NOT NULL, note text)`);
    await db.client.query(`INSERT INTO "we""ird'; DROP TABLE victim; --" VALUES ($1, 1, $2), ($3, 2, 'a"b''c'), ('zz', 3, null)`, [
      hostile,
      `O'Brien "quoted" \\ back`,
      `${hostile}2`,
    ]);
    const qualified = `${db.name}."we""ird'; DROP TABLE victim; --"`;
    const first = reader({ table: qualified, columns: ['name', 'id', 'note'], cursor: ['name', 'id'], batchSize: 1 });
    const rows = await collect(first);
    expect(rows.map((r) => r.row)).toEqual([
      { name: hostile, id: 1, note: `O'Brien "quoted" \\ back` },
      { name: `${hostile}2`, id: 2, note: `a"b'c` },
      { name: 'zz', id: 3, note: null },
    ]);
    expect(rows[0].pos.source).toBe(`postgres:${qualified}`);
    // a hostile cursor value round-trips through the watermark and resume position as a bound parameter
    const wm = { cursor: { name: hostile, id: '1' } };
    const second = await collect(reader({ table: qualified, cursor: ['name', 'id'] }, { watermark: wm }));
    expect(second.map((r) => r.row.id)).toEqual([2, 3]);
    const resumed = await collect(reader({ table: qualified, cursor: ['name', 'id'] }, { startAfter: { seq: 0, source: 'x', cursor: { name: `${hostile}2`, id: '2' } } }));
    expect(resumed.map((r) => [r.pos.seq, r.row.id])).toEqual([[1, 3]]);
    // since with a hostile value is bound too
    await collect(reader({ table: qualified, cursor: ['name', 'id'] }, { since: hostile, until: `'); DROP TABLE victim; --` }));
    const { rows: still } = await db.client.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'victim'`, [db.name]);
    expect(still[0].n).toBe(1);
  });
});

describe('postgres source: type mapping', () => {
  beforeAll(async () => {
    await db.client.query(`CREATE TABLE typed (
      id int PRIMARY KEY, n numeric, b bigint, ts timestamptz, tsl timestamp, d date, j jsonb, tags text[], ns numeric[], flag boolean, nothing text)`);
    await db.client.query(`INSERT INTO typed VALUES (1, 12345678901234567890.123, 9223372036854775807, '2024-03-01 12:34:56.789012+02',
      '2024-03-01 12:34:56.000001', '2024-02-29', '{"a": [1, "x"], "b": {"c": null}}', ARRAY['plain', 'with,comma', 'with "quote"', NULL],
      ARRAY[12345678901234567890.123, 1.5], true, NULL)`);
  });

  it('keeps numeric/bigint precision, timestamps at microseconds, dates unshifted, jsonb parsed, arrays as arrays', async () => {
    const [rec] = await collect(reader({ table: t('typed') }));
    const row = rec.row;
    expect(row.id).toBe(1);
    expect(row.n).toBe('12345678901234567890.123');
    expect(row.b).toBe('9223372036854775807');
    expect(row.ts).toMatch(/^2024-03-01T\d\d:\d4:56\.789012[+-]\d\d:\d\d$/);
    const { rows: same } = await db.client.query(`SELECT $1::timestamptz = '2024-03-01 12:34:56.789012+02' AS eq`, [row.ts]);
    expect(same[0].eq).toBe(true);
    expect(row.tsl).toBe('2024-03-01T12:34:56.000001');
    expect(row.d).toBe('2024-02-29');
    expect(row.j).toEqual({ a: [1, 'x'], b: { c: null } });
    expect(row.tags).toEqual(['plain', 'with,comma', 'with "quote"', null]);
    expect(row.ns).toEqual(['12345678901234567890.123', '1.5']);
    expect(row.flag).toBe(true);
    expect(row.nothing).toBeNull();
    expect(rec.pos).toEqual({ seq: 0, source: `postgres:${t('typed')}` });
  });

  it('numeric: number converts numeric and bigint to numbers', async () => {
    const [rec] = await collect(reader({ table: t('typed'), columns: ['n', 'b', 'ns'], numeric: 'number' }));
    expect(rec.row).toEqual({ n: 12345678901234567890.123, b: 9223372036854775807, ns: [12345678901234567890.123, 1.5] });
  });

  it('reads a query wrapped as a subquery, with the cursor taken from its columns', async () => {
    const r = reader({ query: `SELECT id, ts AS changed_at, n FROM ${t('typed')} WHERE id > 0;`, cursor: ['changed_at'] });
    const rows = await collect(r);
    expect(rows).toHaveLength(1);
    expect(rows[0].pos.source).toBe('postgres:query');
    expect(Object.keys(rows[0].row)).toEqual(['id', 'changed_at', 'n']);
    expect(r.watermark()!.cursor.changed_at).toBe(rows[0].row.changed_at);
  });
});

describe('postgres source: failures', () => {
  it('an unreachable server is a SOURCE_READ error that never shows the password', async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m, f) => lines.push(m + JSON.stringify(f)),
      info: (m, f) => lines.push(m + JSON.stringify(f)),
      warn: (m, f) => lines.push(m + JSON.stringify(f)),
      error: (m, f) => lines.push(m + JSON.stringify(f)),
    };
    const r = postgresSource.create(PostgresSource.parse({ type: 'postgres', url: 'postgres://postgres:s3cret-pw@127.0.0.1:1/test', table: 'x' }), {
      baseDir: '.',
      env: {},
      logger,
    });
    const err = await collect(r as PostgresReader).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).code).toBe('SOURCE_READ');
    expect(JSON.stringify({ m: (err as EtlError).message, c: (err as EtlError).context })).not.toContain('s3cret-pw');
    expect((err as EtlError).message).toContain('postgres:***@127.0.0.1:1');
    expect(lines.join('\n')).not.toContain('s3cret-pw');
  });

  it('a NULL cursor value fails the run with SOURCE_READ', async () => {
    await db.client.query(`CREATE TABLE nullable (id int, updated_at timestamptz)`);
    await db.client.query(`INSERT INTO nullable VALUES (1, now()), (2, NULL)`);
    const err = await collect(reader({ table: t('nullable'), cursor: ['updated_at'] })).catch((e: unknown) => e);
    expect((err as EtlError).code).toBe('SOURCE_READ');
  });
});
