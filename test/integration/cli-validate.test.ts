import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { EXIT, exitCodeForError, exitCodeForStatus } from '../../src/core/exit-codes.js';
import type { CliIo } from '../../src/cli/io.js';
import { EtlError } from '../../src/core/errors.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'klaviyo-etl.js');

const VALID = `version: 1
name: customers
source: {type: csv, path: customers.csv}
transform:
  type: profile
  profile:
    email: Email
destination: {type: klaviyo}
`;

const BROKEN = `version: 1
name: orders
source:
  type: csv
  path: orders.csv
  delimitr: ";"
transform:
  type: event
  metric: Placed Order
  profile: {email: Email}
  time: {column: Created, type: datetime, format: "yyyy-MM-dd HH:mm"}
destination:
  type: klaviyo
  batch: {events: 5000}
`;

/** Run the built CLI; never throws on a non-zero exit. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let dir: string;

beforeAll(async () => {
  // The built binary is what users run. Other modules may be mid-edit, so emit even with type errors elsewhere.
  await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--noEmitOnError', 'false'], {
    cwd: ROOT,
  }).catch(() => undefined);
  if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('build did not produce dist/cli/main.js');
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-cli-'));
  await writeFile(path.join(dir, 'valid.yaml'), VALID);
  await writeFile(path.join(dir, 'broken.yaml'), BROKEN);
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('klaviyo-etl validate (built binary)', () => {
  it('exits 0 on a valid file', async () => {
    const result = await cli(['validate', path.join(dir, 'valid.yaml')]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('1 pipeline file valid\n');
    expect(result.code).toBe(0);
  });

  it('exits 2 on a broken file and prints every problem as file:line:col  CODE  message, sorted', async () => {
    const file = path.join(dir, 'broken.yaml');
    const result = await cli(['validate', path.join(dir, 'valid.yaml'), file]);
    expect(result.code).toBe(2);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split('  ').slice(0, 2).join('  '))).toEqual([
      `${file}:6:3  CONFIG_UNKNOWN_KEY`,
      `${file}:7:1  CONFIG_RULE`,
      `${file}:11:51  CONFIG_RULE`,
      `${file}:14:19  CONFIG_INVALID`,
      '4 problems in 1 of 2 pipeline files',
    ]);
  });

  it('--json prints the problems as JSON', async () => {
    const result = await cli(['validate', '--json', path.join(dir, 'broken.yaml')]);
    expect(result.code).toBe(2);
    const body = JSON.parse(result.stdout) as { valid: boolean; problems: Array<{ code: string; line: number; column: number; path: string }> };
    expect(body.valid).toBe(false);
    expect(body.problems.map((p) => p.path)).toEqual(['source.delimitr', 'transform.unique_id', 'transform.time.format', 'destination.batch.events']);
  });

  it('a missing variable is named; with the variable set the file is valid', async () => {
    await writeFile(path.join(dir, 'env.yaml'), VALID.replace('path: customers.csv', 'path: "${INPUT_FILE}"'));
    const missing = await cli(['validate', path.join(dir, 'env.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain('env.yaml:3:27  CONFIG_ENV_MISSING  source.path: environment variable INPUT_FILE is not set');
    const set = await cli(['validate', path.join(dir, 'env.yaml')], { INPUT_FILE: 'x.csv' });
    expect(set.code).toBe(0);
  });
});

/** The problems of `validate --json` as `line:col CODE path`. */
async function jsonProblems(file: string): Promise<{ code: number; problems: string[] }> {
  const result = await cli(['validate', '--json', file]);
  const body = JSON.parse(result.stdout) as { valid: boolean; problems: Array<{ file: string; code: string; line: number; column: number; path: string }> };
  expect(body.valid).toBe(false);
  for (const p of body.problems) expect(p.file).toBe(file);
  return { code: result.code, problems: body.problems.map((p) => `${p.line}:${p.column} ${p.code} ${p.path}`) };
}

describe('hostile YAML (issue 16)', () => {
  it('an undefined alias is a problem with its position, and --json prints it (was INTERNAL, nothing printed)', async () => {
    const file = path.join(dir, 'undefined-alias.yaml');
    await writeFile(file, VALID.replace('destination: {type: klaviyo}', 'destination: *klaviyo'));
    expect(await jsonProblems(file)).toEqual({ code: 2, problems: ['8:14 CONFIG_YAML_SYNTAX '] });
    const text = await cli(['validate', file]);
    expect(text.stdout).toContain(`${file}:8:14  CONFIG_YAML_SYNTAX  undefined alias "*klaviyo"`);
    expect(text.stderr).toBe('');
  });

  it('an alias bomb stops at the alias that passes the limit, in validate and in run', async () => {
    const file = path.join(dir, 'alias-bomb.yaml');
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of [...'bcdefghi'].entries()) levels.push(`${name}: &${name} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`);
    await writeFile(file, `${VALID}description: x
bomb:
  ${levels.join('\n  ')}
`);
    // b..d expand to 11 + 111 + 1111 nodes per alias: the limit (10,000 nodes) falls inside d's list (line 14)
    const { code, problems } = await jsonProblems(file);
    expect(code).toBe(2);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^14:\d+ CONFIG_YAML_SYNTAX $/);
    const run = await cli(['run', file, '--dry-run']);
    expect(run.stderr).toMatch(/^error \[CONFIG_YAML_SYNTAX\]: /);
    expect(run.stderr).toMatch(/alias-bomb\.yaml:14:\d+  CONFIG_YAML_SYNTAX  aliases expand to more than 10000 values/);
    expect(run.code).toBe(2);
  });

  it('more than 100 aliases are refused at the 101st', async () => {
    const file = path.join(dir, 'many-aliases.yaml');
    const items = Array.from({ length: 101 }, () => '  - *n').join('\n');
    await writeFile(file, `${VALID}n: &n 1
many:
${items}
`);
    expect(await jsonProblems(file)).toEqual({ code: 2, problems: ['111:5 CONFIG_YAML_SYNTAX '] });
  });

  it('a 50 MB pipeline file is refused at once without being parsed (was 19 s and 1.8 GB)', async () => {
    const file = path.join(dir, 'huge.yaml');
    await writeFile(file, `${VALID}description: "${'x'.repeat(50 * 1024 * 1024)}"
`);
    const started = Date.now();
    const result = await cli(['validate', '--json', file]);
    const body = JSON.parse(result.stdout) as { problems: Array<{ code: string; line: number; column: number; message: string }> };
    expect(body.problems).toHaveLength(1);
    expect(body.problems[0]).toMatchObject({ code: 'CONFIG_INVALID', line: 1, column: 1 });
    expect(body.problems[0]!.message).toMatch(/at most 1048576 bytes/);
    expect(result.code).toBe(2);
    expect(Date.now() - started).toBeLessThan(15_000); // a node start on a loaded machine; parsing took 19 s
    await rm(file);
  });
});

describe('values validate accepted and the run cannot honour (issue 16)', () => {
  const KLAVIYO = 'destination: {type: klaviyo}';

  it('timeoutMs above 2^31-1, an unknown rateLimits key, an impossible revision date, an ftp:// base URL: each with its position', async () => {
    const file = path.join(dir, 'destination-values.yaml');
    await writeFile(
      file,
      VALID.replace(
        KLAVIYO,
        [
          'destination:',
          '  type: klaviyo',
          '  baseUrl: ftp://a.klaviyo.com',
          '  revision: 2024-02-30',
          '  timeoutMs: 2147483648',
          '  rateLimits:',
          '    "POST /api/event-bulk-create-job": {burst: 10, steady: 150}',
          '    "POST /api/events": {burst: 10, steady: 150}',
        ].join('\n'),
      ),
    );
    const result = await cli(['validate', file]);
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      `${file}:10:12  CONFIG_INVALID  destination.baseUrl: expected an http:// or https:// URL, got ftp://…`,
      `${file}:11:13  CONFIG_INVALID  destination.revision: revision "2024-02-30" is not a date that exists (YYYY-MM-DD)`,
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:12:14  CONFIG_INVALID  destination\\.timeoutMs: .*2147483647`)),
      `${file}:14:5  CONFIG_UNKNOWN_KEY  destination.rateLimits.POST /api/event-bulk-create-job: unknown endpoint key "POST /api/event-bulk-create-job" (did you mean "POST /api/event-bulk-create-jobs"?)`,
      '4 problems in 1 of 1 pipeline file',
    ]);
    expect(result.code).toBe(2);
    const run = await cli(['run', file, '--dry-run']);
    expect(run.stderr).toMatch(/^error \[CONFIG_INVALID\]: .*4 problems/);
    expect(run.code).toBe(2);
  });

  it('the largest timer Node keeps (2^31-1 ms) and known rateLimits keys are accepted', async () => {
    const file = path.join(dir, 'destination-fine.yaml');
    await writeFile(file, VALID.replace(KLAVIYO, 'destination:\n  type: klaviyo\n  baseUrl: http://127.0.0.1:1\n  revision: 2024-02-29\n  timeoutMs: 2147483647\n  rateLimits: {"POST /api/profile-bulk-import-jobs": {burst: 5, steady: 100}}'));
    const result = await cli(['validate', file]);
    expect(result.stdout).toBe('1 pipeline file valid\n');
    expect(result.code).toBe(0);
  });

  it('a newline delimiter, an emoji delimiter, a quote equal to the delimiter: each with its position', async () => {
    const cases: Array<[string, string, string]> = [
      ['delimiter: "\\n"', '3:53 CONFIG_INVALID source.delimiter', 'line break'],
      ['delimiter: "\u{1F600}"', '3:53 CONFIG_INVALID source.delimiter', 'emoji'],
      ['delimiter: ";", quote: ";"', '3:65 CONFIG_INVALID source.quote', 'cannot be (part of) the delimiter'],
      ['escape: ","', '3:50 CONFIG_INVALID source.escape', 'cannot be (part of) the delimiter'],
    ];
    for (const [i, [option, where, message]] of cases.entries()) {
      const file = path.join(dir, `csv-characters-${i}.yaml`);
      await writeFile(file, VALID.replace('path: customers.csv}', `path: customers.csv, ${option}}`));
      const result = await cli(['validate', '--json', file]);
      const body = JSON.parse(result.stdout) as { problems: Array<{ code: string; line: number; column: number; path: string; message: string }> };
      expect(body.problems.map((p) => `${p.line}:${p.column} ${p.code} ${p.path}`), option).toEqual([where]);
      expect(body.problems[0]!.message).toContain(message);
      expect(result.code).toBe(2);
    }
  });
});

describe('klaviyo-etl shell (built binary)', () => {
  it('usage errors exit 2 with error [USAGE] and no stack trace', async () => {
    for (const args of [['validate'], ['validate', 'x.yaml', '--no-such-flag'], ['no-such-command'], []]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^error \[USAGE\]: /);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('--version prints the package version; --help lists validate and schema', async () => {
    const version = await cli(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('validate <files..>');
    expect(help.stdout).toContain('schema');
  });

  it('schema prints the JSON Schema', async () => {
    const result = await cli(['schema']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' });
  });
});

describe('main() error handling', () => {
  function capture(): CliIo & { out: string; err: string; exitCode: number } {
    const io = {
      out: '',
      err: '',
      exitCode: 0,
      stdout: (t: string) => void (io.out += t),
      stderr: (t: string) => void (io.err += t),
      setExitCode: (c: number) => void (io.exitCode = Math.max(io.exitCode, c)),
    };
    return io;
  }

  it('sets exit code 2 through the io object for an invalid file (the process is untouched)', async () => {
    const io = capture();
    await main(['validate', path.join(dir, 'broken.yaml')], io);
    expect(io.exitCode).toBe(2);
    expect(io.out).toContain('CONFIG_UNKNOWN_KEY');
  });

  it('maps a usage error to 2 and prints error [CODE]: message; --debug adds the stack', async () => {
    const io = capture();
    await main(['validate', 'x', '--frobnicate'], io);
    expect(io.exitCode).toBe(2);
    expect(io.err).toMatch(/^error \[USAGE\]: Unknown argument: frobnicate/);
    expect(io.err).not.toContain('    at ');
    const debug = capture();
    await main(['validate', 'x', '--frobnicate', '--debug'], debug);
    expect(debug.err).toContain('    at ');
  });
});

describe('exit codes', () => {
  it('map error codes and run statuses to the documented exit codes', () => {
    expect(exitCodeForError(new EtlError('CONFIG_RULE', 'x'))).toBe(EXIT.INVALID);
    expect(exitCodeForError(new EtlError('USAGE', 'x'))).toBe(2);
    expect(exitCodeForError(new EtlError('KLAVIYO_AUTH', 'x'))).toBe(1);
    expect(exitCodeForError(new Error('boom'))).toBe(1);
    expect(exitCodeForError(new EtlError('INTERRUPTED', 'x', { context: { signal: 'SIGINT' } }))).toBe(130);
    expect(exitCodeForError(new EtlError('INTERRUPTED', 'x', { context: { signal: 'SIGTERM' } }))).toBe(143);
    expect(exitCodeForStatus('succeeded')).toBe(0);
    expect(exitCodeForStatus('failed')).toBe(1);
    expect(exitCodeForStatus('completed_with_rejects')).toBe(3);
    expect(exitCodeForStatus('interrupted', 'SIGTERM')).toBe(143);
  });
});
