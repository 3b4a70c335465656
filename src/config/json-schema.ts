import { z } from 'zod';
import { Field, FieldObject } from './field.js';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import type { Components } from '../components/types.js';
import { pipelineSchemaParts } from './pipeline.js';
import { Alerts, FailOn, Metrics } from './operations.js';
import { Checkpoint, Location, ProfileMapping, Rejects, Tier } from './schema.js';

/** Sub-schemas emitted once under `$defs` (by these names) and referenced, instead of being inlined everywhere. */
function definitions(parts: ReturnType<typeof pipelineSchemaParts>): z.core.$ZodRegistry<{ id: string }> {
  const registry = z.registry<{ id: string }>();
  const named: Array<[z.ZodType, string]> = [
    [Field, 'Field'],
    [FieldObject, 'FieldObject'],
    [ProfileMapping, 'ProfileMapping'],
    [Location, 'Location'],
    [Tier, 'RateLimitTier'],
    [parts.source, 'Source'],
    [parts.transform, 'Transform'],
    [parts.destination, 'Destination'],
    [Rejects, 'Rejects'],
    [Checkpoint, 'Checkpoint'],
    [FailOn, 'FailOn'],
    [Alerts, 'Alerts'],
    [Metrics, 'Metrics'],
  ];
  for (const [schema, id] of named) registry.add(schema, { id });
  return registry;
}

/**
 * The JSON Schema (draft 2020-12) of a pipeline file, generated from the zod schema built from the registered
 * components (`src/config/pipeline.ts`), input side: keys with defaults are optional. For the built-in components
 * it is committed as `schema/pipeline.schema.json` (a test keeps it current) and printed by `klaviyo-etl schema`.
 * Cross-field rules (rules.ts) are not expressible here.
 */
export function pipelineJsonSchema(components: Components = BUILTIN_COMPONENTS): Record<string, unknown> {
  const parts = pipelineSchemaParts(components);
  const schema = z.toJSONSchema(parts.pipeline, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'throw',
    metadata: definitions(parts),
  }) as Record<string, unknown>;
  return { $schema: schema.$schema, title: 'klaviyo-etl pipeline file', ...schema };
}

/** The schema as committed: pretty-printed JSON with a trailing newline. */
export function pipelineJsonSchemaText(components?: Components): string {
  return JSON.stringify(pipelineJsonSchema(components), null, 2) + '\n';
}
