/**
 * The typed registry of source components, keyed by the config `type`. Adding a source is one line here
 * (`kind: definition`); nothing is discovered by file name.
 */
import type { SourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import { csvSource } from './csv.js';
import { klaviyoSource } from './klaviyo.js';
import { guardReader } from './limits.js';
import { ndjsonSource } from './ndjson.js';
import { postgresSource } from './postgres.js';
import { s3Source } from './s3.js';
import type { ExtractorDefinition } from './types.js';

type SourceKind = SourceConfig['type'];
type DefinitionFor<K extends SourceKind> = ExtractorDefinition<Extract<SourceConfig, { type: K }>>;

/** Registered sources. */
export const EXTRACTORS: { readonly [K in SourceKind]?: DefinitionFor<K> } = {
  csv: csvSource,
  ndjson: ndjsonSource,
  postgres: postgresSource,
  s3: s3Source,
  klaviyo: klaviyoSource,
};

/** Kinds with a registered source. */
export function extractorKinds(): SourceKind[] {
  return (Object.keys(EXTRACTORS) as SourceKind[]).filter((k) => EXTRACTORS[k] !== undefined);
}

/**
 * The source component for a config `type`; `CONFIG_INVALID` when none is registered. The readers it creates pass
 * every row through the row limits (src/extract/limits.ts: a row nested too deep or too large is rejected, not fatal).
 */
export function getExtractor<K extends SourceKind>(kind: K): DefinitionFor<K> {
  const definition = EXTRACTORS[kind] as DefinitionFor<K> | undefined;
  if (!definition) {
    throw new EtlError('CONFIG_INVALID', `Unknown source type ${JSON.stringify(kind)} (known: ${extractorKinds().join(', ')})`, {
      context: { component: 'source' },
    });
  }
  return { ...definition, create: (config, ctx) => guardReader(definition.create(config, ctx)) };
}
