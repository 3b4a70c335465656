/**
 * Nothing in the repository reads outside it: no relative path in tracked files climbs above the repository root
 * (a `shared` folder beside a checkout), no file names a sibling folder or a machine's own absolute paths. A clone on
 * a fresh machine has only itself (the Klaviyo spec the tests read is kept in test/spec/klaviyo-openapi/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SELF = relative(ROOT, fileURLToPath(import.meta.url));
const SCANNED = ['src', 'test', 'bench', 'scripts', '.ci', 'docs', 'package.json', 'README.md', 'vitest.config.ts', 'tsconfig.json', 'tsconfig.build.json'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.git', 'data']);
const TEXT = /\.(?:[cm]?[jt]s|json|md|ya?ml|sh|txt)$|(?:^|\/)\.ci\/[^/.]+$/;

/** Tracked files under the scanned roots (git), or every file there when the tree is not a git checkout. */
function scannedFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--', ...SCANNED], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\0').filter((f) => f !== '' && existsSync(join(ROOT, f))); // a tracked file deleted in the work tree is gone
  } catch {
    const walk = (rel: string): string[] =>
      readdirSync(join(ROOT, rel), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? (SKIPPED_DIRS.has(e.name) ? [] : walk(join(rel, e.name))) : [join(rel, e.name)],
      );
    return SCANNED.flatMap((s) => (s.includes('.') && !s.startsWith('.') ? [s] : walk(s))).map((f) => f.split(sep).join('/'));
  }
}

/** `../` runs (in code, strings, comments or links) that resolve above the repository root from the file's folder. */
function escapingPaths(file: string, text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?<![\w./])((?:\.\.\/)+)([\w@.{}-]+)?/g)) {
    const target = resolve(ROOT, dirname(file), m[1]! + (m[2] ?? ''));
    if (target !== ROOT && !target.startsWith(ROOT + sep)) found.push(m[0]);
  }
  return found;
}

/** Names of a sibling folder or of a machine's own directories. */
const FOREIGN = [/(?:^|[^\w-])shared\/klaviyo-openapi\b/, /(?<![\w.])\/(?:work|home|Users|root)\/[\w.-]/, /\b[A-Z]:\\Users\\/];

function problems(file: string): string[] {
  if (!TEXT.test(file) || file === SELF) return [];
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  return lines.flatMap((line, i) => [
    ...escapingPaths(file, line).map((p) => `${file}:${i + 1}: ${p} is outside the repository`),
    ...FOREIGN.filter((re) => re.test(line)).map(() => `${file}:${i + 1}: ${line.trim().slice(0, 120)}`),
  ]);
}

describe('the repository is self-contained', () => {
  it('scans the source, tests, benchmarks, scripts, CI and docs', () => {
    const files = scannedFiles();
    for (const f of ['src/index.ts', 'test/helpers/openapi.ts', 'bench/run.js', 'package.json', '.ci/run']) expect(files).toContain(f);
  });

  it('no tracked file reaches outside the repository', () => {
    expect(scannedFiles().flatMap(problems)).toEqual([]);
  });

  it('every document a source comment cites is in the repository', () => {
    const cited = scannedFiles()
      .filter((f) => f.startsWith('src/'))
      .flatMap((f) => [...readFileSync(join(ROOT, f), 'utf8').matchAll(/[\w./-]+\.md\b/g)].map((m) => ({ f, doc: m[0] })));
    expect(cited.length).toBeGreaterThan(0);
    const missing = cited.filter(({ doc }) => !existsSync(join(ROOT, doc)) && !existsSync(join(ROOT, 'docs', doc)));
    expect(missing).toEqual([]);
  });

  it('catches a sibling path, a climbing relative path and a machine path', () => {
    // the sample text is assembled so this file does not itself hold the path it tests for
    const sibling = ['..', '..', '..', 'shared'].join('/');
    expect(escapingPaths('test/helpers/openapi.ts', `new URL('${sibling}/klaviyo-openapi/stable.json', import.meta.url)`)).toEqual([
      sibling,
    ]);
    expect(escapingPaths('test/unit/load/helpers.ts', "import { x } from '../../../src/index.js'")).toEqual([]);
    expect(escapingPaths('bench/run.js', '// see ../../dist/')).toEqual(['../../dist']);
    expect(FOREIGN.some((re) => re.test('spec at shared/klaviyo-openapi/stable.json'))).toBe(true);
    expect(FOREIGN.some((re) => re.test('"file": "/work/main/bench/data/orders.csv"'))).toBe(true);
    expect(FOREIGN.some((re) => re.test("join(tmpdir(), 'x')"))).toBe(false);
  });
});
