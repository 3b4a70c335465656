import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtlError } from '../../../src/core/errors.js';
import { resolveFiles } from '../../../src/extract/files.js';
import { s3KeyMatcher } from '../../../src/extract/s3-objects.js';

describe('s3KeyMatcher', () => {
  it.each([
    ['*.csv.gz', 'a.csv.gz', true],
    ['*.csv.gz', 'x/a.csv.gz', false],
    ['**/*.csv.gz', 'x/y/a.csv.gz', true],
    ['**/*.csv.gz', 'a.csv.gz', true],
    ['day-0?.csv', 'day-01.csv', true],
    ['day-0?.csv', 'day-012.csv', false],
    ['*.{csv,ndjson}', 'a.ndjson', true],
    ['*.{csv,ndjson}', 'a.json', false],
    ['part-[!0]*', 'part-1', true],
    ['part-[!0]*', 'part-0', false],
    ['a+b(c).csv', 'a+b(c).csv', true],
  ])('%s matches %s: %s', (glob, key, expected) => {
    expect(s3KeyMatcher(glob)(key)).toBe(expected);
  });
});

/** Keys that tell glob dialects apart: segments, dots, brackets, braces, parentheses, case. */
const KEYS = [
  'a.csv',
  'a.csv.gz',
  'A.CSV',
  'b.ndjson',
  'b.json',
  '.hidden.csv',
  'x/a.csv.gz',
  'x/y/a.csv.gz',
  'x/.d/a.csv.gz',
  '.d/a.csv',
  'day-01.csv',
  'day-012.csv',
  'part-0',
  'part-1',
  'part-a',
  'a+b(c).csv',
  'a+bc.csv',
  'q[1].csv',
];

const PATTERNS = [
  '*.csv',
  '*.csv.gz',
  '**/*.csv.gz',
  '**/*.csv',
  '**',
  'x/**',
  'x/*/a.csv.gz',
  'day-0?.csv',
  '*.{csv,ndjson}',
  '{a,b}.*',
  'part-[!0]*',
  'part-[^0]*',
  'part-[0-9]',
  'a+b(c).csv',
  '*.@(csv|json)',
  '!(a).csv',
  '.*.csv',
  'q[[]1].csv',
  'q*.csv',
];

describe('S3 globs and file globs are one dialect', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'klaviyo-etl-glob-'));
    for (const key of KEYS) {
      await mkdir(join(dir, dirname(key)), { recursive: true });
      await writeFile(join(dir, key), '');
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(PATTERNS)('%s selects the same keys as files', async (pattern) => {
    const files = await resolveFiles(pattern, dir).catch((error: unknown) => {
      if (error instanceof EtlError && error.code === 'SOURCE_NOT_FOUND') return [];
      throw error;
    });
    const fromFiles = files.map((f) => relative(dir, f.path).split(sep).join('/')).sort();
    const fromS3 = KEYS.filter(s3KeyMatcher(pattern)).sort();
    expect(fromS3).toEqual(fromFiles);
  });

  it('tells the keys apart (the comparison above is not vacuous)', () => {
    const select = (pattern: string) => KEYS.filter((key) => s3KeyMatcher(pattern)(key));
    expect(new Set(PATTERNS.map((p) => select(p).join('|'))).size).toBeGreaterThanOrEqual(15);
    expect(select('**/*.csv.gz')).toEqual(['a.csv.gz', 'x/a.csv.gz', 'x/y/a.csv.gz']);
    // names starting with a dot only when the pattern spells the dot, in any segment
    expect(select('**').filter((k) => k.includes('.d/') || k.startsWith('.'))).toEqual([]);
    expect(select('.*.csv')).toEqual(['.hidden.csv']);
    // parentheses group (as in file globs), brackets are classes
    expect(select('a+b(c).csv')).toEqual(['a+b(c).csv', 'a+bc.csv']);
    expect(select('q[[]1].csv')).toEqual(['q[1].csv']);
  });
});
