import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pipelineJsonSchema, pipelineJsonSchemaText } from '../../../src/config/json-schema.js';

const COMMITTED = new URL('../../../schema/pipeline.schema.json', import.meta.url);

const VALID = `version: 1
name: orders
source: {type: csv, path: orders.csv}
transform:
  type: event
  metric: Placed Order
  unique_id: {template: "{{Name}}"}
  profile: {email: Email}
  time: {column: Created at, type: datetime, format: iso, zone: UTC}
destination: {type: klaviyo}
`;

describe('pipeline JSON Schema', () => {
  it('schema/pipeline.schema.json is current (regenerate: node bin/klaviyo-etl.js schema > schema/pipeline.schema.json)', async () => {
    expect(await readFile(COMMITTED, 'utf8')).toBe(pipelineJsonSchemaText());
  });

  it('is valid draft 2020-12 and accepts a valid pipeline (defaults optional)', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(pipelineJsonSchema());
    expect(validate(parse(VALID))).toBe(true);
  });

  it('rejects unknown keys and bad discriminators, like the loader', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(pipelineJsonSchema());
    expect(validate(parse(VALID.replace('name: orders', 'name: orders\ncolour: red')))).toBe(false);
    expect(validate(parse(VALID.replace('type: csv', 'type: xls')))).toBe(false);
  });
});
