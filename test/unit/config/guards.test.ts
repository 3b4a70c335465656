import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineText, MAX_PIPELINE_BYTES } from '../../../src/config/load.js';

/** Issue 16: the guards of the pipeline loader (rejects path, aliases, size, values), below the CLI. */

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-guards-'));
  await mkdir(path.join(dir, 'real'));
  await symlink(path.join(dir, 'real'), path.join(dir, 'data'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pipeline(lines: { source?: string; destination?: string; transform?: string; extra?: string[] }): string {
  return [
    'version: 1',
    'name: customers',
    `source: ${lines.source ?? '{type: csv, path: customers.csv}'}`,
    `transform: ${lines.transform ?? '{type: profile, profile: {email: email}}'}`,
    `destination: ${lines.destination ?? '{type: klaviyo}'}`,
    ...(lines.extra ?? []),
    '',
  ].join('\n');
}

/** `line:col CODE path` of every problem. */
function problems(text: string, options: { stateDir?: string } = {}): string[] {
  const result = loadPipelineText(text, { file: path.join(dir, 'p.yaml'), env: {}, ...options });
  return result.problems.map((p) => `${p.line}:${p.column} ${p.code} ${p.path}`);
}

describe('rule rejectsPathIsSafe', () => {
  const withRejects = (rejects: string, source?: string) => pipeline({ source, extra: [`rejects: {path: "${rejects}"}`] });

  it('follows symbolic links: a glob over data/ matches a rejects file written through real/', () => {
    expect(problems(withRejects('real/rejects.csv', '{type: csv, path: "data/*.csv"}'))).toEqual(['6:17 CONFIG_RULE rejects.path']);
    expect(problems(withRejects('data/orders.csv', '{type: csv, path: real/orders.csv}'))).toEqual(['6:17 CONFIG_RULE rejects.path']);
  });

  it('matches as tinyglobby does: braces, absolute globs, a list of paths; not into dot folders', () => {
    expect(problems(withRejects('a/rejects.csv', '{type: csv, path: "{a,b}/*.csv"}'))).toHaveLength(1);
    expect(problems(withRejects('rejects.csv', `{type: csv, path: "${dir}/*.csv"}`))).toHaveLength(1);
    expect(problems(withRejects('x.csv', '{type: csv, path: [a.csv, x.csv]}'))).toEqual(['6:17 CONFIG_RULE rejects.path']);
    expect(problems(withRejects('.rejects/r.csv', '{type: csv, path: "**/*.csv"}'))).toEqual([]);
    expect(problems(withRejects('rejects.ndjson', '{type: csv, path: "*.csv"}'))).toEqual([]);
  });

  it('the ndjson source too; S3 and PostgreSQL sources read no local file', () => {
    expect(problems(withRejects('in.ndjson', '{type: ndjson, path: "*.ndjson"}'))).toHaveLength(1);
    expect(problems(withRejects('in.ndjson', '{type: s3, bucket: b, glob: "*.ndjson", format: ndjson}'))).toEqual([]);
  });

  it('the default rejects file of a state directory under a glob points at source.path', () => {
    const text = pipeline({ source: '{type: ndjson, path: "state/**/*.ndjson"}' });
    expect(problems(text)).toEqual([]);
    expect(problems(text, { stateDir: path.join(dir, 'state') })).toEqual(['3:30 CONFIG_RULE source.path']);
  });

  it('an s3 checkpoint has no local state file to collide with', () => {
    const text = pipeline({ extra: ['rejects: {path: .klaviyo-etl/customers/checkpoint.json}', 'checkpoint: {store: s3, url: "s3://b/p"}'] });
    expect(problems(text)).toEqual([]);
    expect(problems(pipeline({ extra: ['rejects: {path: .klaviyo-etl/customers/checkpoint.json.123.tmp}'] }))).toEqual(['6:17 CONFIG_RULE rejects.path']);
  });
});

describe('aliases and size', () => {
  it('an alias inside the node it names is a problem with its position', () => {
    expect(problems(pipeline({ extra: ['loop: &l [1, *l]'] }))).toEqual(['6:14 CONFIG_YAML_SYNTAX ']);
  });

  it('aliases within the limits still work', () => {
    const text = pipeline({ transform: '{type: profile, profile: *p}', extra: ['profiles: &p {email: email}'] }).replace(
      'transform: {type: profile, profile: *p}\n',
      '',
    );
    const reordered = text.replace('destination:', 'transform: {type: profile, profile: *p}\ndestination:');
    expect(loadPipelineText(reordered, { file: 'p.yaml', env: {} }).problems.map((p) => p.message)).toEqual([
      expect.stringContaining('undefined alias "*p"'),
    ]);
    const ordered = `profiles: &p {email: email}\n${pipeline({ transform: '{type: profile, profile: *p}' })}`;
    expect(problems(ordered)).toEqual(['1:1 CONFIG_UNKNOWN_KEY profiles']);
  });

  it('text over the size limit is refused without being parsed', () => {
    const text = `${pipeline({})}description: "${'x'.repeat(MAX_PIPELINE_BYTES)}"\n`;
    expect(problems(text)).toEqual(['1:1 CONFIG_INVALID ']);
  });
});

describe('values', () => {
  it('CSV characters: latin1 cannot encode the delimiter; a control character; the export delimiter holds the quote', () => {
    expect(problems(pipeline({ source: '{type: csv, path: c.csv, encoding: latin1, delimiter: "€"}' }))).toEqual(['3:63 CONFIG_INVALID source.delimiter']);
    expect(problems(pipeline({ source: '{type: csv, path: c.csv, delimiter: "\\u0001"}' }))).toEqual(['3:45 CONFIG_INVALID source.delimiter']);
    expect(problems(pipeline({ source: '{type: csv, path: c.csv, delimiter: "\\t"}' }))).toEqual([]);
    const exportPipeline = pipeline({
      source: '{type: klaviyo, list: L1}',
      transform: '{type: export, columns: {email: email}}',
      destination: '{type: csv, path: out.csv, delimiter: "\\""}',
    });
    expect(problems(exportPipeline)).toEqual(['5:52 CONFIG_INVALID destination.delimiter']);
  });

  it('an unknown rateLimits key far from any endpoint gets the form of a key instead of a guess', () => {
    const result = loadPipelineText(pipeline({ destination: '{type: klaviyo, rateLimits: {events: {burst: 1, steady: 1}}}' }), { file: 'p.yaml', env: {} });
    expect(result.problems.map((p) => [p.code, p.line, p.column])).toEqual([['CONFIG_UNKNOWN_KEY', 5, 43]]);
    expect(result.problems[0]!.message).toMatch(/keys are "METHOD \/api\/path"/);
  });

  it('S3 endpoints are http(s) URLs; the revision date 2024-02-29 exists, 2023-02-29 does not', () => {
    expect(problems(pipeline({ source: '{type: s3, bucket: b, endpoint: "s3.local:9000"}' }))).toEqual(['3:41 CONFIG_INVALID source.endpoint']);
    expect(problems(pipeline({ destination: '{type: klaviyo, revision: 2024-02-29}' }))).toEqual([]);
    expect(problems(pipeline({ destination: '{type: klaviyo, revision: 2023-02-29.pre}' }))).toEqual(['5:40 CONFIG_INVALID destination.revision']);
  });
});
