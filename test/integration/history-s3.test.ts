import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import type { RunReport } from '../../src/runner/report.js';
import { cli } from '../helpers/cli.js';
import { startS3rver, type TestS3 } from '../helpers/s3rver.js';

/**
 * Issue 14: with `checkpoint.store: s3`, the run history lives beside the checkpoint in S3 (one object per run
 * under <prefix>/<name>/history/), and `history` / `status` read it from there.
 */

const KEY = 'pk_history_s3_00000000000000000000';
let tmp: string;
let s3: TestS3;
let emulator: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-history-s3-'));
  s3 = await startS3rver(['state']);
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  await writeFile(path.join(tmp, 'people.csv'), 'email\na@example.com\nb@example.com\n');
  await writeFile(
    path.join(tmp, 'remote.yaml'),
    `version: 1
name: remote
source: { type: csv, path: people.csv }
transform:
  type: profile
  profile:
    email: { column: email, type: email }
destination:
  type: klaviyo
checkpoint:
  store: s3
  url: s3://state/klaviyo-etl
  endpoint: ${s3.endpoint}
  forcePathStyle: true
`,
  );
});

afterAll(async () => {
  await emulator?.close();
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('run history in the S3 checkpoint store (CLI, built binary, s3rver)', () => {
  it('records a failed and a succeeded run as objects beside the checkpoint; history and status read them', async () => {
    const pipeline = path.join(tmp, 'remote.yaml');
    // a local --state-dir is not where an S3 store's history is
    const args = ['--state-dir', path.join(tmp, 'local-state')];
    const failed = await cli(['run', pipeline, ...args], { env: { ...s3.env, KLAVIYO_BASE_URL: emulator.url } });
    expect(failed.code).toBe(1);
    const status = await cli(['status', pipeline, ...args], { env: s3.env });
    expect(status.stdout).toMatch(/last run {4}failed at \S+ \(\S+\): \[MISSING_API_KEY\]/);
    const ok = await cli(['run', pipeline, ...args], { env: { ...s3.env, KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: KEY } });
    expect(ok.code, ok.stderr).toBe(0);

    const history = await cli(['history', pipeline, ...args, '--json'], { env: s3.env });
    expect(history.code, history.stderr).toBe(0);
    const runs = JSON.parse(history.stdout) as RunReport[];
    expect(runs.map((r) => [r.status, r.error?.code ?? null])).toEqual([
      ['failed', 'MISSING_API_KEY'],
      ['succeeded', null],
    ]);
    expect(history.stdout).not.toContain(KEY);

    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'state', Prefix: 'klaviyo-etl/remote/' }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
      expect(keys.filter((k) => k.startsWith('klaviyo-etl/remote/history/'))).toHaveLength(2);
      expect(keys).toContain('klaviyo-etl/remote/checkpoint.json');
    } finally {
      client.destroy();
    }
    const table = await cli(['history', pipeline, ...args], { env: s3.env });
    expect(table.stdout).toContain('(history: s3://state/klaviyo-etl/remote/history/)');
  }, 180_000);
});
