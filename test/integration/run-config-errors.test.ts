import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

/**
 * Issue 16, "error codes that send people the wrong way": a key with a trailing newline reported
 * KLAVIYO_UNAVAILABLE (an outage, after every retry), an unusable state directory INTERNAL (a bug). Each now has a
 * code that says what to fix, through `klaviyo-etl run`.
 */

const PIPELINE = `version: 1
name: customers
source: {type: csv, path: customers.csv}
transform:
  type: profile
  profile: {email: email}
destination: {type: klaviyo}
`;

let tmp: string;
let file: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-run-config-errors-'));
  await writeFile(path.join(tmp, 'customers.csv'), 'email\nada@example.com\n');
  file = path.join(tmp, 'customers.yaml');
  await writeFile(file, PIPELINE);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('run: codes that tell what to fix', () => {
  it('a key with a trailing newline (KLAVIYO_API_KEY=$(cat keyfile)) is API_KEY_INVALID, never an outage, and is not echoed', async () => {
    const key = 'pk_trailing_newline_0000000000000000';
    const report = path.join(tmp, 'key-report.json');
    const result = await cli(['run', file, '--emulator', '--state-dir', path.join(tmp, 'state-key'), '--json', '--report', report], {
      env: { KLAVIYO_API_KEY: `${key}\n` },
    });
    const body = JSON.parse(result.stdout) as { status: string; error?: { code: string; message: string }; requests: { total: number } };
    expect(body.status).toBe('failed');
    expect(body.error?.code).toBe('API_KEY_INVALID');
    expect(body.error?.message).toMatch(/white space/);
    expect(body.requests.total).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(key);
    expect(result.code).toBe(1);
  }, 120_000);

  it('a state directory that cannot be used (a file in the way) is STATE_DIR_UNUSABLE naming the directory, not INTERNAL', async () => {
    const blocker = path.join(tmp, 'not-a-directory');
    await writeFile(blocker, 'a file where the state directory should be\n');
    const result = await cli(['run', file, '--emulator', '--state-dir', blocker]);
    expect(result.stderr).toMatch(/^error \[STATE_DIR_UNUSABLE\]: /);
    expect(result.stderr).toContain(path.join(blocker, 'customers'));
    expect(result.stderr).toContain('ENOTDIR');
    expect(result.code).toBe(1);
  });
});
