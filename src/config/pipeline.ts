import { z } from 'zod';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import type { ComponentConfig, Components } from '../components/types.js';
import { Alerts, FailOn, Metrics } from './operations.js';
import { Checkpoint, Schedule, Rejects } from './schema.js';
import { PipelineTests } from './tests.js';

/*
 * The pipeline schema, built from the registered components (Benthos's way: the registered spec is the linter):
 * `source`, `transform` and `destination` are discriminated unions of the registered definitions' `config`
 * schemas, in registration order. The built-in schema is `Pipeline`; `pipelineSchema(components)` builds the same
 * for another registry. Types are inferred from the built-in one.
 */

type Union<L extends readonly { config: ComponentConfig }[]> = z.ZodDiscriminatedUnion<Array<L[number]['config']>, 'type'>;

function unionOf<L extends readonly { config: ComponentConfig }[]>(list: L, kind: string): Union<L> {
  if (list.length === 0) throw new TypeError(`Expected at least one ${kind} component, got none`);
  const options = list.map((d) => d.config) as unknown as [z.ZodObject, ...z.ZodObject[]];
  return z.discriminatedUnion('type', options) as unknown as Union<L>;
}

/** The parts of a pipeline schema (the unions are named in the JSON Schema's `$defs`). */
export interface PipelineSchemaParts<C extends Components> {
  source: Union<C['sources']>;
  transform: Union<C['transforms']>;
  destination: Union<C['destinations']>;
  pipeline: ReturnType<typeof pipelineObject<C>>;
}

function pipelineObject<C extends Components>(source: Union<C['sources']>, transform: Union<C['transforms']>, destination: Union<C['destinations']>) {
  return z
    .strictObject({
      version: z.literal(1).describe('Pipeline file format version.'),
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]*$/)
        .describe('Pipeline name: lower-case letters, digits, `.`, `_`, `-` (names the checkpoint directory).'),
      description: z.string().optional(),
      source,
      transform,
      destination,
      rejects: Rejects.prefault({}),
      checkpoint: Checkpoint.prefault({}),
      schedule: Schedule.optional(),
      failOn: FailOn.optional(),
      alerts: Alerts.optional(),
      metrics: Metrics.optional(),
      tests: PipelineTests.optional(),
    })
    .describe('A klaviyo-etl pipeline file.');
}

const built = new WeakMap<Components, PipelineSchemaParts<Components>>();

/** The pipeline schema for a registry of components (built once per registry). */
export function pipelineSchemaParts<C extends Components>(components: C): PipelineSchemaParts<C> {
  let parts = built.get(components) as PipelineSchemaParts<C> | undefined;
  if (!parts) {
    const source = unionOf(components.sources, 'source');
    const transform = unionOf(components.transforms, 'transform');
    const destination = unionOf(components.destinations, 'destination');
    parts = { source, transform, destination, pipeline: pipelineObject<C>(source, transform, destination) };
    built.set(components, parts as unknown as PipelineSchemaParts<Components>);
  }
  return parts;
}

/** The zod schema of a pipeline file whose components come from `components`. */
export function pipelineSchema<C extends Components>(components: C): PipelineSchemaParts<C>['pipeline'] {
  return pipelineSchemaParts(components).pipeline;
}

const builtin = pipelineSchemaParts(BUILTIN_COMPONENTS);

/** The pipeline file schema of the built-in components. */
export const Pipeline = builtin.pipeline;

export const Transform = builtin.transform;

export type PipelineConfig = z.output<typeof Pipeline>;
export type PipelineInput = z.input<typeof Pipeline>;
export type TransformConfig = z.output<typeof Transform>;
