import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withComponents } from '../../src/components/index.js';
import { pipelineJsonSchema } from '../../src/config/json-schema.js';
import { validatePipelineFiles } from '../../src/config/load.js';
import type { LoadItem } from '../../src/core/record.js';
import { run } from '../../src/runner/index.js';
import { linesSource } from '../helpers/components/lines-source.js';
import { memoryDestination } from '../helpers/components/memory-destination.js';
import { tagTransform } from '../helpers/components/tag-transform.js';

/*
 * A component registered in one file (test/helpers/components/) is picked up by validate, schema and run, through
 * the `components` argument (no global registry): one test per component kind.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-components-'));
  await writeFile(path.join(dir, 'emails.txt'), 'ada@example.com\nbob@example.com\n\ncy@example.com\n');
  await writeFile(path.join(dir, 'people.csv'), 'Email,Name\nAda@Example.com,Ada\nbob@example.com,Bob\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function pipeline(name: string, body: string): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, `version: 1\nname: ${name}\n${body}`);
  return file;
}

/** The `oneOf` members of a `$defs` union in the JSON Schema. */
function members(schema: Record<string, unknown>, def: string): Array<{ properties: Record<string, { const?: string }> }> {
  return ((schema.$defs as Record<string, { oneOf: [] }>)[def]!).oneOf;
}

describe('components registered in one file', () => {
  it('source: validate, schema and run pick up a new source', async () => {
    const components = withComponents({ sources: [linesSource] });
    const file = await pipeline(
      'lines',
      'source: {type: lines, path: emails.txt}\ntransform: {type: profile, profile: {email: email}}\ndestination: {type: klaviyo}\n',
    );
    expect(await validatePipelineFiles([file], { components })).toEqual([]);
    const builtin = await validatePipelineFiles([file]);
    expect(builtin.map((p) => p.path)).toContain('source.type');

    const schema = pipelineJsonSchema(components);
    const lines = members(schema, 'Source').find((m) => m.properties.type?.const === 'lines');
    expect(lines?.properties).toHaveProperty('path');
    expect(members(pipelineJsonSchema(), 'Source').some((m) => m.properties.type?.const === 'lines')).toBe(false);

    const report = await run({ pipelineFile: file, components, emulator: true, stateDir: path.join(dir, 'state') });
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 3, loaded: 3, rejected: 0 });
    expect((report.emulator?.state as { profiles: number }).profiles).toBe(3);
  });

  it('transform: validate, schema and run pick up a new transform (and the wiring rule reads its capabilities)', async () => {
    const components = withComponents({ transforms: [tagTransform] });
    const file = await pipeline(
      'tagged',
      'source: {type: csv, path: people.csv}\ntransform: {type: tag, email: Email, tag: vip}\ndestination: {type: klaviyo}\n',
    );
    expect(await validatePipelineFiles([file], { components })).toEqual([]);
    expect((await validatePipelineFiles([file])).map((p) => p.path)).toContain('transform.type');
    const toCsv = await pipeline('tagged-csv', 'source: {type: csv, path: people.csv}\ntransform: {type: tag, email: Email, tag: vip}\ndestination: {type: csv, path: out.csv}\n');
    const wiring = await validatePipelineFiles([toCsv], { components });
    expect(wiring.map((p) => [p.code, p.path])).toEqual([['CONFIG_RULE', 'destination.type']]);
    expect(wiring[0]!.message).toContain('a tag transform needs a klaviyo destination');

    const tag = members(pipelineJsonSchema(components), 'Transform').find((m) => m.properties.type?.const === 'tag');
    expect(Object.keys(tag?.properties ?? {})).toEqual(['type', 'email', 'tag']);

    const report = await run({ pipelineFile: file, components, emulator: true, stateDir: path.join(dir, 'state') });
    expect(report.status).toBe('succeeded');
    expect(report.items.profiles).toBe(2);
    expect((report.emulator?.state as { profiles: number }).profiles).toBe(2);
  });

  it('destination: validate, schema and run pick up a new destination', async () => {
    const sink: LoadItem[] = [];
    const components = withComponents({ destinations: [memoryDestination(sink)] });
    const file = await pipeline(
      'memory',
      'source: {type: csv, path: people.csv}\ntransform: {type: profile, profile: {email: Email, first_name: Name}}\ndestination: {type: memory, label: test}\n',
    );
    expect(await validatePipelineFiles([file], { components })).toEqual([]);
    expect((await validatePipelineFiles([file])).map((p) => p.path)).toContain('destination.type');

    const memory = members(pipelineJsonSchema(components), 'Destination').find((m) => m.properties.type?.const === 'memory');
    expect(memory?.properties).toHaveProperty('label');

    const report = await run({ pipelineFile: file, components, stateDir: path.join(dir, 'state') });
    expect(report.status).toBe('succeeded');
    expect(report.rows).toMatchObject({ read: 2, loaded: 2 });
    expect(sink.map((i) => i.payload)).toEqual([
      { email: 'ada@example.com', first_name: 'Ada' },
      { email: 'bob@example.com', first_name: 'Bob' },
    ]);
    expect(report.checkpoint?.position).toMatchObject({ seq: 1 });
  });
});
