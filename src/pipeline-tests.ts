/**
 * `klaviyo-etl test <pipeline>`: run the mapping tests of a pipeline file (its `tests:` section, schema in
 * src/config/tests.ts). Each test pushes its rows through the pipeline's transform, with its `where:` filter, exactly
 * as a run does, and compares what comes out (items, rejects, skipped rows) with what the test expects. Nothing is
 * read from the source or sent anywhere: a pipeline's tests run in CI without its database or API key.
 */
import path from 'node:path';
import { diffLines } from 'diff';
import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar } from 'yaml';
import { BUILTIN_COMPONENTS } from './components/index.js';
import { definitionOf } from './components/lookup.js';
import type { Components } from './components/types.js';
import { loadPipelineIgnoringEnvOf } from './config/load-lenient.js';
import type { PipelineConfig } from './config/pipeline.js';
import type { PipelineTestConfig } from './config/tests.js';
import { EtlError } from './core/errors.js';
import type { Reject, SourceRecord, TransformOutput } from './core/record.js';
import { whereOf, withWhere } from './transform/where.js';

/** The outcome of one mapping test. */
export interface PipelineTestResult {
  name: string;
  /** Where the test is in the pipeline file (`file:line`). */
  location: string;
  passed: boolean;
  /** One readable difference per expectation that failed (`items`, `rejects`, `skipped`), a diff where it helps. */
  failures: Array<{ what: 'items' | 'rejects' | 'skipped'; diff: string }>;
}

/** The outcome of every mapping test of a pipeline. */
export interface PipelineTestReport {
  pipeline: string;
  file: string;
  passed: boolean;
  tests: PipelineTestResult[];
}

/** What came out of a test's rows. */
interface Actual {
  items: unknown[];
  rejects: Array<{ row: number; code: string; field?: string; message: string }>;
  skipped: number;
}

export async function testPipeline(
  pipelineFile: string,
  options: { env?: NodeJS.ProcessEnv; components?: Components; now?: () => Date } = {},
): Promise<PipelineTestReport> {
  const env = options.env ?? process.env;
  const components = options.components ?? BUILTIN_COMPONENTS;
  // the source's and destination's variables (a database URL) are not needed to test a mapping
  const { config, source } = await loadPipelineIgnoringEnvOf(path.resolve(pipelineFile), ['source', 'destination'], { env, components });
  const tests = config.tests ?? [];
  if (tests.length === 0) {
    throw new EtlError('USAGE', `${pipelineFile} has no tests: add a \`tests:\` section (see docs/pipeline-reference.md, "Mapping tests")`);
  }
  const lines = testLines(source.text);
  const results = tests.map((test, i) => {
    const actual = runTest(config, components, test, options.now);
    const failures = compare(test, actual);
    return { name: test.name, location: `${pipelineFile}:${lines[i] ?? 1}`, passed: failures.length === 0, failures };
  });
  return { pipeline: config.name, file: pipelineFile, passed: results.every((r) => r.passed), tests: results };
}

/** Push a test's rows through the transform (and its `where:`), as a run does. */
function runTest(config: PipelineConfig, components: Components, test: PipelineTestConfig, now?: () => Date): Actual {
  const definition = definitionOf(components.transforms, config.transform.type, 'transform');
  const transformer = withWhere(definition.create(config.transform, now ? { now } : {}), whereOf(config.transform));
  const asText = readsText(config);
  const actual: Actual = { items: [], rejects: [], skipped: 0 };
  const take = (out: TransformOutput): void => {
    for (const item of out.items) actual.items.push(JSON.parse(JSON.stringify(item.payload)));
    for (const r of out.rejects) actual.rejects.push(rejectOf(r));
    actual.skipped += out.skipped ?? 0;
  };
  test.rows.forEach((row, i) => {
    const record: SourceRecord = { pos: { seq: i, source: `test "${test.name}"`, line: i + 1 }, row: asText ? textRow(row) : row };
    take(transformer.push(record));
  });
  take(transformer.flush());
  return actual;
}

function rejectOf(r: Reject): Actual['rejects'][number] {
  return { row: r.seq + 1, code: r.code, ...(r.field === undefined ? {} : { field: r.field }), message: r.message };
}

/** Whether the pipeline's source gives every value as text (CSV files, CSV objects in S3). */
function readsText(config: PipelineConfig): boolean {
  const s = config.source as { type: string; format?: string };
  return s.type === 'csv' || (s.type === 's3' && s.format !== 'ndjson');
}

/** A row as a CSV source would give it: every value as text (`null` as an empty field). */
function textRow(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)]));
}

function compare(test: PipelineTestConfig, actual: Actual): PipelineTestResult['failures'] {
  const failures: PipelineTestResult['failures'] = [];
  const { expect } = test;
  if (expect.items !== undefined && !same(expect.items, actual.items)) failures.push({ what: 'items', diff: diff(expect.items, actual.items) });
  if (expect.rejects !== undefined) {
    // a field is compared only where the test names one; the message is shown, never compared
    const shown = actual.rejects.map((r, i) => ({ row: r.row, code: r.code, ...(expect.rejects?.[i]?.field === undefined ? {} : { field: r.field }) }));
    if (!same(expect.rejects, shown)) {
      const withMessages = actual.rejects.map((r, i) => ({ ...shown[i], message: r.message }));
      failures.push({ what: 'rejects', diff: diff(expect.rejects, withMessages) });
    }
  }
  if (expect.skipped !== undefined && expect.skipped !== actual.skipped) {
    failures.push({ what: 'skipped', diff: `- expected ${expect.skipped} skipped row(s)\n+ got ${actual.skipped}` });
  }
  return failures;
}

/** Deep equality of JSON values (object key order does not matter). */
function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** A line diff of two JSON values: `-` expected, `+` actual, unchanged lines indented (jsdiff). */
function diff(expected: unknown, actual: unknown): string {
  const out: string[] = [];
  for (const part of diffLines(canonical(expected) + '\n', canonical(actual) + '\n')) {
    const mark = part.added ? '+ ' : part.removed ? '- ' : '  ';
    for (const line of part.value.replace(/\n$/, '').split('\n')) out.push(mark + line);
  }
  return out.join('\n');
}

/** The line of each entry of the file's `tests:` list (1-based). */
function testLines(text: string): number[] {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  if (!isMap(doc.contents)) return [];
  const pair = doc.contents.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === 'tests');
  if (!pair || !isSeq(pair.value)) return [];
  return pair.value.items.map((item) => counter.linePos((item as { range?: readonly number[] | null }).range?.[0] ?? 0).line);
}

/** A test report for people: one line per test, the differences under each failed one, a summary. */
export function formatTestReport(report: PipelineTestReport): string {
  const lines: string[] = [];
  for (const t of report.tests) {
    lines.push(`${t.passed ? 'ok  ' : 'FAIL'}  ${t.name}${t.passed ? '' : `  (${t.location})`}`);
    for (const f of t.failures) {
      lines.push(`      ${f.what} differ (- expected, + actual):`);
      for (const line of f.diff.split('\n')) lines.push(`        ${line}`);
    }
  }
  const failed = report.tests.filter((t) => !t.passed).length;
  lines.push(`${report.pipeline}: ${report.tests.length} test(s), ${failed === 0 ? 'all passed' : `${failed} failed`}`);
  return lines.join('\n');
}
