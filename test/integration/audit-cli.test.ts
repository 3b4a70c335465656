import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

/**
 * Audit of the `run` command's options: a bad option value is a usage error (exit 2), never a run that quietly
 * reads nothing (or everything) and reports success.
 */

let tmp: string;
let pipeline: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-audit-cli-'));
  await writeFile(path.join(tmp, 'people.csv'), 'email\nana@example.com\nbob@example.com\n');
  pipeline = path.join(tmp, 'people.yaml');
  await writeFile(
    pipeline,
    'version: 1\nname: people\nsource: { type: csv, path: people.csv }\ntransform:\n  type: profile\n  profile: { email: email }\ndestination: { type: klaviyo }\n',
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('audit: run option values', () => {
  it.each([['-3'], ['0'], ['abc'], ['1.5']])('--limit %s is a usage error (exit 2), not a run', async (value) => {
    const report = path.join(tmp, `report-limit-${value}.json`);
    const result = await cli(['run', pipeline, '--dry-run', '--limit', value, '--report', report]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error \[USAGE\]: .*--limit/);
    await expect(readFile(report, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('--limit 1 still samples one row', async () => {
    const result = await cli(['run', pipeline, '--dry-run', '--limit', '1', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).rows.read).toBe(1);
  });

  it('a bad --emulator-limits is a usage error (exit 2)', async () => {
    const result = await cli(['run', pipeline, '--emulator', '--emulator-limits', 'fast']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error \[USAGE\]: .*--emulator-limits/);
  });

  it('--since/--until on a CSV source is a usage error (exit 2), not a run that ignores them', async () => {
    const result = await cli(['run', pipeline, '--dry-run', '--since', '2024-01-01']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error \[USAGE\]: --since\/--until .*csv source/);
  });

  it('--emulator-seed naming a missing file, or without --emulator, is a usage error (exit 2)', async () => {
    const missing = await cli(['run', pipeline, '--emulator', '--emulator-seed', path.join(tmp, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error \[USAGE\]: --emulator-seed: no such file/);
    const seed = path.join(tmp, 'seed.json');
    await writeFile(seed, '{}');
    const alone = await cli(['run', pipeline, '--dry-run', '--emulator-seed', seed]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/--emulator-seed seeds the embedded emulator/);
  });
});
