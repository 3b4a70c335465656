/**
 * `klaviyo-etl check <pipeline>` through the CLI: one line per check, a fix on every failure, exit 1 on any failure.
 * Against the emulator (a wrong key, a key without a scope, a missing list, a closed port), real PostgreSQL (query
 * plan, a missing table, a closed port), s3rver (listable, writable, a missing bucket) and Redis (PING, a closed port).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, ROOT } from '../helpers/cli.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../helpers/postgres.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

const GOOD = 'pk_check_good_key_0001';
const LIMITED = 'pk_check_limited_key_0002';
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let dir: string;
let emulator: EmulatorHandle;
let closedPort: number;

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function pipeline(name: string, body: string): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, `version: 1\nname: ${name}\n${body}`);
  return file;
}

const PROFILES = (extra = '') => `source:
  type: csv
  path: ${path.join(ROOT, 'fixtures/customers.csv')}
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
${extra}`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-check-'));
  const seed = path.join(dir, 'seed.json');
  await writeFile(seed, JSON.stringify({ lists: [{ id: 'Known1', name: 'Known list', members: [] }] }));
  emulator = await startEmulator({ apiKeys: [GOOD, LIMITED], keyScopes: { [LIMITED]: ['profiles:read', 'profiles:write', 'lists:read', 'events:write'] }, seedFile: seed, limits: 'off' });
  closedPort = await freePort();
});
afterAll(async () => {
  await emulator.close();
  await rm(dir, { recursive: true, force: true });
});

const env = (key: string, base = emulator.url) => ({ KLAVIYO_API_KEY: key, KLAVIYO_BASE_URL: base });

describe('check: Klaviyo', () => {
  it('passes with a valid key: one ok line per check, exit 0', async () => {
    const file = await pipeline('profiles-ok', PROFILES('  lists: [Known1]\n'));
    const r = await cli(['check', file], { env: { ...env(GOOD), KLAVIYO_ETL_STATE_DIR: dir } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const line of ['files source', 'klaviyo key', 'klaviyo scope lists:write', 'klaviyo scope profiles:write', 'klaviyo scope profiles:read', 'klaviyo scope lists:read', 'klaviyo list Known1', 'state checkpoint']) {
      expect(r.stdout).toMatch(new RegExp(`^ok\\s+${line}`, 'm'));
    }
    expect(r.stdout).toMatch(/every check passed/);
    expect(r.stdout).not.toContain(GOOD);
  });

  it('a wrong key fails the key check with a fix, exit 1, and the key is never printed', async () => {
    const file = await pipeline('profiles-wrong-key', PROFILES());
    const r = await cli(['check', file], { env: env('pk_check_wrong_key_9999') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+klaviyo key\s+.*refused \(401\).*→ fix: check the key in KLAVIYO_API_KEY/m);
    expect(r.stdout).not.toContain('pk_check_wrong_key_9999');
  });

  it('a missing key and a malformed key fail before any request', async () => {
    const file = await pipeline('profiles-no-key', PROFILES());
    const none = await cli(['check', file], { env: { KLAVIYO_BASE_URL: emulator.url } });
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/^FAIL\s+klaviyo key\s+KLAVIYO_API_KEY is not set → fix: export KLAVIYO_API_KEY=pk_/m);
    const bad = await cli(['check', file], { env: env('Abc123') });
    expect(bad.stdout).toMatch(/^FAIL\s+klaviyo key\s+.*public key/m);
  });

  it('a key without a scope the endpoints need fails that scope, naming the endpoint', async () => {
    const file = await pipeline('profiles-limited', PROFILES());
    const r = await cli(['check', file], { env: env(LIMITED) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ok\s+klaviyo key/m);
    expect(r.stdout).toMatch(/^ok\s+klaviyo scope profiles:write/m);
    expect(r.stdout).toMatch(/^FAIL\s+klaviyo scope lists:write\s+missing: POST \/api\/profile-bulk-import-jobs will answer 403 → fix: give the key lists:write/m);
  });

  it('an event pipeline needs only events:write, which the limited key has', async () => {
    const file = await pipeline(
      'events-limited',
      `source:\n  type: csv\n  path: ${path.join(ROOT, 'fixtures/orders/shopify-orders.csv')}\ntransform:\n  type: event\n  metric: Placed Order\n  unique_id: { template: "o-{{Name}}-{{Lineitem sku}}" }\n  profile:\n    email: { column: Email, type: email }\ndestination:\n  type: klaviyo\n`,
    );
    const r = await cli(['check', file], { env: { ...env(LIMITED), KLAVIYO_ETL_STATE_DIR: dir } });
    expect(r.stdout).toMatch(/^ok\s+klaviyo scope events:write\s+granted \(needed by POST \/api\/event-bulk-create-jobs\)/m);
    expect(r.code).toBe(0);
  });

  it('a list the pipeline names that does not exist fails with where to find the id', async () => {
    const file = await pipeline('profiles-missing-list', PROFILES('  lists: [Known1, NoSuch9]\n'));
    const r = await cli(['check', file], { env: env(GOOD) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ok\s+klaviyo list Known1\s+exists \("Known list"\)/m);
    expect(r.stdout).toMatch(/^FAIL\s+klaviyo list NoSuch9\s+no list with this id in the key's account → fix: copy the list id from Klaviyo/m);
  });

  it('an export of a list checks the list (with --emulator and a seed)', async () => {
    const r = await cli(['check', 'pipelines/examples/list-members-export.yaml', '--emulator', '--emulator-seed', 'pipelines/examples/list-members-export.seed.json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok\s+klaviyo list Newsl1\s+exists/m);
    expect(r.stdout).toMatch(/^ok\s+klaviyo scope lists:read/m);
    expect(r.stdout).toMatch(/^skip\s+state checkpoint\s+--emulator runs checkpoint into a temporary directory, not the pipeline's store/m);
  });

  it('Klaviyo on a closed port: the key check fails as unreachable', async () => {
    const file = await pipeline('profiles-closed', PROFILES());
    const r = await cli(['check', file, '--timeout', '3'], { env: env(GOOD, `http://127.0.0.1:${closedPort}`) });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+klaviyo key\s+.*ECONNREFUSED.*→ fix: check KLAVIYO_BASE_URL/m);
  });

  it('--json prints the checks; an invalid pipeline file is exit 2', async () => {
    const file = await pipeline('profiles-json', PROFILES());
    const r = await cli(['check', file, '--json'], { env: { ...env(GOOD), KLAVIYO_ETL_STATE_DIR: dir } });
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: { target: string; status: string }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.filter((c) => c.target === 'klaviyo').length).toBeGreaterThan(3);
    const invalid = await pipeline('invalid', 'source: {type: csv}\n');
    expect((await cli(['check', invalid])).code).toBe(2);
  });
});

describe('check: PostgreSQL, S3, Redis', () => {
  let schema: TestSchema;
  let s3: TestS3;
  beforeAll(async () => {
    schema = await createTestSchema('etl_check');
    await schema.client.query('CREATE TABLE orders (id int PRIMARY KEY, email text, updated_at timestamptz)');
    s3 = await startS3rver(['exports', 'state']);
  });
  afterAll(async () => {
    await s3?.close();
    await schema?.drop();
  });

  const pg = (url: string, table: string) => `source:
  type: postgres
  url: ${url}
  table: ${table}
  cursor: [updated_at, id]
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
`;

  it('connects and EXPLAINs the query a run would send', async () => {
    const file = await pipeline('pg-ok', pg(testDatabaseUrl(), `${schema.name}.orders`));
    const r = await cli(['check', file, '--emulator'], { env: { KLAVIYO_ETL_STATE_DIR: dir } });
    expect(r.stdout).toMatch(/^ok\s+postgres connect/m);
    expect(r.stdout).toMatch(/^ok\s+postgres query plan\s+.*(Sort|Index Scan|Seq Scan)/m);
    expect(r.code).toBe(0);
  });

  it('a missing table fails the plan with a fix; a closed port fails the connection', async () => {
    const missing = await pipeline('pg-missing', pg(testDatabaseUrl(), `${schema.name}.no_such_table`));
    const r = await cli(['check', missing, '--emulator']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+postgres query plan\s+.*does not exist → fix: fix source.table/m);
    const closed = await pipeline('pg-closed', pg(`postgres://postgres@127.0.0.1:${closedPort}/test`, 'orders'));
    const c = await cli(['check', closed, '--emulator']);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/^FAIL\s+postgres connect\s+.*ECONNREFUSED.*→ fix: start PostgreSQL/m);
  });

  const s3Pipeline = (bucket: string) => `source:
  type: s3
  bucket: ${bucket}
  prefix: daily/
  endpoint: ${s3.endpoint}
  forcePathStyle: true
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
checkpoint:
  store: s3
  url: s3://state/checkpoints/x
  endpoint: ${s3.endpoint}
  forcePathStyle: true
`;

  it('S3: the source prefix lists, the checkpoint prefix lists and takes a probe object', async () => {
    const file = await pipeline('s3-ok', s3Pipeline('exports'));
    const r = await cli(['check', file], { env: { ...s3.env, ...env(GOOD) } });
    expect(r.stdout).toMatch(/^ok\s+s3 source s3:\/\/exports\/daily\/\s+listable/m);
    expect(r.stdout).toMatch(/^ok\s+s3 checkpoint s3:\/\/state\/checkpoints\/x\s+listable .*writable/m);
    expect(r.code).toBe(0);
  });

  it('S3: a missing bucket fails with a fix', async () => {
    const file = await pipeline('s3-missing', s3Pipeline('no-such-bucket'));
    const r = await cli(['check', file], { env: { ...s3.env, ...env(GOOD) } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+s3 source s3:\/\/no-such-bucket\/daily\/\s+NoSuchBucket.*→ fix: fix the bucket name/m);
  });

  it('Redis: PING when --redis-url is given; a closed port fails', async () => {
    const file = await pipeline('redis', PROFILES());
    const ok = await cli(['check', file, '--emulator', '--redis-url', REDIS], { env: { KLAVIYO_ETL_STATE_DIR: dir } });
    expect(ok.stdout).toMatch(/^ok\s+redis ping\s+.*PONG/m);
    expect(ok.code).toBe(0);
    const closed = await cli(['check', file, '--emulator', '--timeout', '3'], { env: { KLAVIYO_ETL_STATE_DIR: dir, KLAVIYO_ETL_REDIS_URL: `redis://127.0.0.1:${closedPort}` } });
    expect(closed.code).toBe(1);
    expect(closed.stdout).toMatch(/^FAIL\s+redis ping\s+.*→ fix: start Redis/m);
  });
});
