import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

/**
 * Issue 16, "rejects can destroy nothing": a rejects path that is an input file (a fresh run deleted it), the
 * pipeline file (overwritten), a checkpoint state file (the rejects were lost), or a file a source glob matches (the
 * resume read its own rejects and grew them to 5.2 GB) is refused by `validate` and by `run`, with its position,
 * before anything is touched.
 */

const INPUT = 'email,first_name\nada@example.com,Ada\nnot-an-email,Bad\ngrace@example.com,Grace\n';

function pipeline(options: { source: string; rejects: string; checkpoint?: string }): string {
  return [
    'version: 1',
    'name: customers',
    `source: {type: csv, path: "${options.source}"}`,
    'transform:',
    '  type: profile',
    '  profile: {email: email, first_name: first_name}',
    'destination: {type: klaviyo}',
    `rejects: {path: "${options.rejects}"}`,
    ...(options.checkpoint ? [`checkpoint: {dir: "${options.checkpoint}"}`] : []),
    '',
  ].join('\n');
}

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-rejects-path-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh folder holding customers.csv and the pipeline file. */
async function setUp(name: string, yaml: string): Promise<{ dir: string; file: string; input: string }> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const input = path.join(dir, 'customers.csv');
  await writeFile(input, INPUT);
  const file = path.join(dir, 'pipeline.yaml');
  await writeFile(file, yaml);
  return { dir, file, input };
}

/** `validate` and `run` both refuse with CONFIG_RULE at `where` (line:col) and exit 2. */
async function expectRefused(file: string, where: string, message: RegExp, args: string[] = []): Promise<void> {
  const validate = await cli(['validate', file, ...args]);
  expect(validate.stdout).toMatch(new RegExp(`^${escape(`${file}:${where}  CONFIG_RULE  `)}`, 'm'));
  expect(validate.stdout).toMatch(message);
  expect(validate.code).toBe(2);
  const run = await cli(['run', file, '--emulator', ...args]);
  expect(run.stderr).toMatch(/^error \[CONFIG_RULE\]: /);
  expect(run.stderr).toContain(`${file}:${where}  CONFIG_RULE  `);
  expect(run.code).toBe(2);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('rejects.path destroys nothing (validate and run)', () => {
  it('is refused when it is the input file, and the input is untouched', async () => {
    const { file, input } = await setUp('input', pipeline({ source: 'customers.csv', rejects: 'customers.csv' }));
    await expectRefused(file, '8:17', /rejects\.path: the rejects file cannot be an input file of the source/);
    expect(await readFile(input, 'utf8')).toBe(INPUT);
  });

  it('is refused when it is the input file named by another spelling of its path', async () => {
    const { file, input } = await setUp('input-spelling', pipeline({ source: 'customers.csv', rejects: './sub/../customers.csv' }));
    await expectRefused(file, '8:17', /cannot be an input file/);
    expect(await readFile(input, 'utf8')).toBe(INPUT);
  });

  it('is refused when it is the pipeline file, and the pipeline file is untouched', async () => {
    const yaml = pipeline({ source: 'customers.csv', rejects: 'pipeline.yaml' });
    const { file, input } = await setUp('pipeline', yaml);
    await expectRefused(file, '8:17', /cannot be the pipeline file itself/);
    expect(await readFile(file, 'utf8')).toBe(yaml);
    expect(await readFile(input, 'utf8')).toBe(INPUT);
  });

  it('is refused when it is the checkpoint of the state directory (--state-dir)', async () => {
    const { dir, file } = await setUp('checkpoint', pipeline({ source: 'customers.csv', rejects: 'state/customers/checkpoint.json' }));
    await expectRefused(file, '8:17', /cannot be a state file of the checkpoint \(checkpoint\.json/, ['--state-dir', path.join(dir, 'state')]);
    expect(existsSync(path.join(dir, 'state', 'customers', 'checkpoint.json'))).toBe(false);
  });

  it('is refused when it is the lock file of checkpoint.dir', async () => {
    const { dir, file } = await setUp('lock', pipeline({ source: 'customers.csv', rejects: 'cp/checkpoint.lock', checkpoint: 'cp' }));
    await expectRefused(file, '8:17', /cannot be a state file of the checkpoint \(checkpoint\.lock/);
    expect(existsSync(path.join(dir, 'cp', 'checkpoint.lock'))).toBe(false);
  });

  it('is refused when the source glob matches it (*.csv and rejects.csv in one folder)', async () => {
    const { dir, file, input } = await setUp('glob', pipeline({ source: '*.csv', rejects: 'rejects.csv' }));
    await expectRefused(file, '8:17', /cannot be matched by the source glob "\*\.csv"/);
    expect(existsSync(path.join(dir, 'rejects.csv'))).toBe(false);
    expect(await readFile(input, 'utf8')).toBe(INPUT);
  });

  it('is refused when a recursive glob reaches it through a sub-folder', async () => {
    const { file } = await setUp('glob-deep', pipeline({ source: '**/*.csv', rejects: 'out/rejects.csv' }));
    await expectRefused(file, '8:17', /matched by the source glob "\*\*\/\*\.csv"/);
  });

  it('the default rejects file is refused when --state-dir puts it under a source glob (pointing at the glob)', async () => {
    const dir = path.join(tmp, 'default');
    await mkdir(path.join(dir, 'data'), { recursive: true });
    await writeFile(path.join(dir, 'data', 'a.ndjson'), '{"email":"ada@example.com"}\n');
    const file = path.join(dir, 'pipeline.yaml');
    await writeFile(file, 'version: 1\nname: customers\nsource: {type: ndjson, path: "data/**/*.ndjson"}\ntransform:\n  type: profile\n  profile: {email: email}\ndestination: {type: klaviyo}\n');
    await expectRefused(file, '3:30', /the default rejects file \(rejects\/\{date\}-\{runId\}\.ndjson in the state directory\) would be matched by the source glob/, [
      '--state-dir',
      path.join(dir, 'data', 'state'),
    ]);
    expect(existsSync(path.join(dir, 'data', 'state'))).toBe(false);
  });

  it('a rejects file beside the inputs that no glob matches is accepted, and the run writes it', async () => {
    const { dir, file, input } = await setUp('fine', pipeline({ source: '*.csv', rejects: 'rejects/customers.ndjson' }));
    expect((await cli(['validate', file])).code).toBe(0);
    const run = await cli(['run', file, '--emulator', '--state-dir', path.join(dir, 'state')]);
    expect(run.code).toBe(3);
    const rejects = (await readFile(path.join(dir, 'rejects', 'customers.ndjson'), 'utf8')).trim().split('\n');
    expect(rejects.map((l) => (JSON.parse(l) as { code: string }).code)).toEqual(['INVALID_EMAIL']);
    expect(await readFile(input, 'utf8')).toBe(INPUT);
  });
});
