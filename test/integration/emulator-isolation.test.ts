import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../src/s3/client.js';
import { cli } from '../helpers/cli.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

/**
 * Issue 14, "Locks and isolation": `--emulator` never touches the pipeline's real checkpoint store (an S3 store or
 * a `checkpoint.dir`) nor its real S3 destination: the checkpoint goes to --state-dir or a temporary directory, and
 * an S3 export becomes a local file under the state directory's `emulator-output/`.
 */

const REAL_STATE = 'real-state';
const REAL_EXPORTS = 'real-exports';
let tmp: string;
let s3: TestS3;
let client: S3Client;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-emu-iso-'));
  s3 = await startS3rver([REAL_STATE, REAL_EXPORTS]);
  client = createS3Client({ endpoint: s3.endpoint, forcePathStyle: true, env: s3.env });
  await writeFile(path.join(tmp, 'customers.csv'), 'Email,First\nada@example.com,Ada\ngrace@example.com,Grace\n');
});

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ ...s3.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', S3_ENDPOINT: s3.endpoint });
const keys = async (bucket: string): Promise<string[]> =>
  ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

describe('--emulator isolation (CLI, built binary)', () => {
  it('an S3 checkpoint store and a checkpoint.dir are left alone; the run checkpoints under --state-dir', async () => {
    const profiles = (name: string, checkpoint: string): string => `version: 1
name: ${name}
source: { type: csv, path: customers.csv }
transform:
  type: profile
  profile:
    email: { column: Email, type: email }
    first_name: First
destination: { type: klaviyo }
${checkpoint}`;
    const s3File = path.join(tmp, 's3-ckpt.yaml');
    await writeFile(
      s3File,
      profiles('s3-ckpt', `checkpoint:\n  store: s3\n  url: s3://${REAL_STATE}/klaviyo-etl/\n  endpoint: \${S3_ENDPOINT}\n  forcePathStyle: true\n`),
    );
    const stateDir = path.join(tmp, 'emulator-state');
    const first = await cli(['run', s3File, '--emulator', '--state-dir', stateDir, '--json'], { env: env() });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).rows.loaded).toBe(2);
    expect(await keys(REAL_STATE)).toEqual([]);
    expect(JSON.parse(await readFile(path.join(stateDir, 's3-ckpt', 'checkpoint.json'), 'utf8')).status).toBe('succeeded');

    const dirFile = path.join(tmp, 'dir-ckpt.yaml');
    await writeFile(dirFile, profiles('dir-ckpt', 'checkpoint: { dir: production-state }\n'));
    const second = await cli(['run', dirFile, '--emulator'], { env: env() });
    expect(second.code).toBe(0);
    expect(await exists(path.join(tmp, 'production-state'))).toBe(false);
  });

  it('an S3 export is written to a local file under emulator-output/, never to the bucket', async () => {
    const file = path.join(tmp, 'export-s3.yaml');
    await writeFile(
      file,
      `version: 1
name: export-s3
source: { type: klaviyo, list: Newsl1 }
transform:
  type: export
  columns: { email: email }
destination:
  type: s3
  bucket: ${REAL_EXPORTS}
  key: members/{date}.csv.gz
  endpoint: \${S3_ENDPOINT}
  forcePathStyle: true
`,
    );
    const seed = path.join(tmp, 'seed.json');
    await writeFile(seed, JSON.stringify({ lists: [{ id: 'Newsl1', name: 'News', members: ['ada@example.com', 'grace@example.com'] }] }));
    const r = await cli(['run', file, '--emulator', '--emulator-seed', seed], { env: env() });
    expect(r.code).toBe(0);
    expect(await keys(REAL_EXPORTS)).toEqual([]);
    const dir = path.join(tmp, '.klaviyo-etl', 'export-s3', 'emulator-output', 's3', REAL_EXPORTS, 'members');
    const [name] = await readdir(dir);
    expect(name).toMatch(/^\d{4}-\d{2}-\d{2}\.csv\.gz$/);
    const csv = gunzipSync(await readFile(path.join(dir, name!))).toString('utf8');
    expect(csv.trim().split(/\r?\n/).sort()).toEqual(['ada@example.com', 'email', 'grace@example.com']);
  });
});
