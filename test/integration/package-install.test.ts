/**
 * The published package as a user gets it: `npm run pack` makes the tarball (from the dist/ that `npm test` built), which
 * must carry the CLI, the example pipelines and their data, the JSON Schema and every document the README links; it
 * is installed into a scratch project outside the repository, offline, its dependencies taken from the npm cache at
 * the versions of the repository's lockfile (`npm ci` filled the cache with exactly those), and an example runs from
 * there with --emulator. No warning on a supported Node (engines) from npm or from the AWS SDK.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  [k: string]: unknown;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  bin: Record<string, string>;
  engines: Record<string, string>;
  license: string;
};

let scratch: string;
let tarball: string;
let packed: string[];
let install: Exec;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-scratch-'));
  // `npm run pack`: the tarball as published (from a staging directory, package.json without scripts)
  const pack = await run(process.execPath, [path.join(ROOT, 'scripts', 'pack.js'), scratch], ROOT);
  expect(pack.code, pack.stderr).toBe(0);
  const info = JSON.parse(pack.stdout) as { tarball: string; files: string[] };
  tarball = path.basename(info.tarball);
  packed = info.files;
  // the scratch project's lockfile: the tarball, and the repository's locked production dependencies
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const integrity = `sha512-${createHash('sha512').update(await readFile(path.join(scratch, tarball))).digest('base64')}`;
  const packages: Record<string, LockEntry> = {
    '': { name: 'scratch', dependencies: { [pkg.name]: `file:${tarball}` } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: `file:${tarball}`,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key.startsWith('node_modules/') && !entry.dev && !entry.devOptional) packages[key] = entry;
  }
  await writeFile(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, dependencies: { [pkg.name]: `file:${tarball}` } }));
  await writeFile(path.join(scratch, 'package-lock.json'), JSON.stringify({ name: 'scratch', lockfileVersion: 3, requires: true, packages }));
  install = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel', 'warn'], scratch);
}, 180_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Relative links of the README (files it points users to). */
function readmeLinks(): string[] {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...new Set([...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l)))];
}

describe('the npm package', () => {
  it('carries the CLI, the examples and their data, the JSON Schema and every file the README links', () => {
    for (const f of ['package.json', 'README.md', 'bin/klaviyo-etl.js', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'schema/pipeline.schema.json', 'docs/scheduling.md', 'Dockerfile']) {
      expect(packed, f).toContain(f);
    }
    for (const f of ['customers-csv.yaml', 'shopify-orders-backfill.yaml', 'list-members-export.seed.json']) expect(packed).toContain(`pipelines/examples/${f}`);
    for (const link of readmeLinks()) {
      expect(packed.some((f) => f === link || f.startsWith(`${link.replace(/\/$/, '')}/`)), `README links ${link}`).toBe(true);
    }
    expect(packed.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('node_modules/'))).toBe(false);
  });

  it('installs into a scratch project offline, without warnings', () => {
    expect(install.code, install.stderr).toBe(0);
    expect(install.stderr).not.toMatch(/EBADENGINE|deprecated|warn/i);
  });

  it('the published package.json has no lifecycle script (npm 11 warns about any, prepare included, at npm install -g) and no devDependencies', async () => {
    const published = JSON.parse(await readFile(path.join(scratch, 'node_modules', pkg.name, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(published.scripts).toBeUndefined();
    expect(published.devDependencies).toBeUndefined();
    expect(published.dependencies).toEqual(pkg.dependencies);
    expect(published.engines).toEqual(pkg.engines);
  });

  it('npx klaviyo-etl runs an example from the scratch folder with --emulator', async () => {
    const version = await run('npx', ['--no-install', 'klaviyo-etl', '--version'], scratch);
    expect(version.stdout.trim()).toBe(pkg.version);
    const example = path.join('node_modules', pkg.name, 'pipelines', 'examples', 'shopify-orders-backfill.yaml');
    const r = await run('npx', ['--no-install', 'klaviyo-etl', 'run', example, '--emulator', '--state-dir', path.join(scratch, 'state')], scratch);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/orders-backfill: succeeded/);
    expect(r.stdout).toMatch(/Placed Order: \d+/);
  });

  it('no AWS SDK warning on a supported Node when S3 is used', async () => {
    const file = path.join(scratch, 's3.yaml');
    await writeFile(
      file,
      'version: 1\nname: s3\nsource: { type: s3, bucket: b, endpoint: "http://127.0.0.1:1", forcePathStyle: true }\ntransform: { type: profile, profile: { email: email } }\ndestination: { type: klaviyo }\n',
    );
    const r = await run('npx', ['--no-install', 'klaviyo-etl', 'check', file, '--emulator', '--timeout', '2'], scratch, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' });
    expect(r.stdout).toMatch(/^FAIL\s+s3 source/m);
    expect(r.stderr).not.toMatch(/Warning/);
  });
});
