import { z } from 'zod';
import { Field, FieldObject } from './field.js';
import { Checkpoint, Destination, Location, ProfileMapping, Rejects, Source, Tier, Transform } from './schema.js';
import { Pipeline } from './schema.js';

/** Sub-schemas emitted once under `$defs` (by these names) and referenced, instead of being inlined everywhere. */
function definitions(): z.core.$ZodRegistry<{ id: string }> {
  const registry = z.registry<{ id: string }>();
  const named: Array<[z.ZodType, string]> = [
    [Field, 'Field'],
    [FieldObject, 'FieldObject'],
    [ProfileMapping, 'ProfileMapping'],
    [Location, 'Location'],
    [Tier, 'RateLimitTier'],
    [Source, 'Source'],
    [Transform, 'Transform'],
    [Destination, 'Destination'],
    [Rejects, 'Rejects'],
    [Checkpoint, 'Checkpoint'],
  ];
  for (const [schema, id] of named) registry.add(schema, { id });
  return registry;
}

/**
 * The JSON Schema (draft 2020-12) of a pipeline file, generated from the zod schema (`src/config/schema.ts`),
 * input side: keys with defaults are optional. Committed as `schema/pipeline.schema.json` (a test keeps it current)
 * and printed by `klaviyo-etl schema`. Cross-field rules (rules.ts) are not expressible here.
 */
export function pipelineJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(Pipeline, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'throw',
    metadata: definitions(),
  }) as Record<string, unknown>;
  return { $schema: schema.$schema, title: 'klaviyo-etl pipeline file', ...schema };
}

/** The schema as committed: pretty-printed JSON with a trailing newline. */
export function pipelineJsonSchemaText(): string {
  return JSON.stringify(pipelineJsonSchema(), null, 2) + '\n';
}
