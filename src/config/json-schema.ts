import { z } from 'zod';
import { Pipeline } from './schema.js';

/**
 * The JSON Schema (draft 2020-12) of a pipeline file, generated from the zod schema (`src/config/schema.ts`),
 * input side: keys with defaults are optional. Committed as `schema/pipeline.schema.json` (a test keeps it current)
 * and printed by `klaviyo-etl schema`. Cross-field rules (rules.ts) are not expressible here.
 */
export function pipelineJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(Pipeline, { io: 'input', target: 'draft-2020-12', unrepresentable: 'throw' }) as Record<string, unknown>;
  return { $schema: schema.$schema, title: 'klaviyo-etl pipeline file', ...schema };
}

/** The schema as committed: pretty-printed JSON with a trailing newline. */
export function pipelineJsonSchemaText(): string {
  return JSON.stringify(pipelineJsonSchema(), null, 2) + '\n';
}
