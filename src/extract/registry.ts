/** The typed list of source components. Adding a source is one file and one line here; nothing is discovered. */
import { definitionOf } from '../components/lookup.js';
import type { SourceDefinition } from '../components/types.js';
import { csvSource } from './csv.js';
import { klaviyoSource } from './klaviyo.js';
import { guardReader } from './limits.js';
import { ndjsonSource } from './ndjson.js';
import { postgresSource } from './postgres.js';
import { s3Source } from './s3.js';

/** Registered sources, in the order the schema lists them. */
export const SOURCES = [csvSource, ndjsonSource, postgresSource, s3Source, klaviyoSource] as const;

type Builtin = (typeof SOURCES)[number];

/**
 * The source component for a config `type`; `CONFIG_INVALID` when none is registered. The readers it creates pass
 * every row through the row limits (src/extract/limits.ts: a row nested too deep or too large is rejected, not fatal).
 */
export function getExtractor<K extends Builtin['type']>(type: K): Extract<Builtin, { type: K }>;
export function getExtractor(type: string, sources?: readonly SourceDefinition[]): SourceDefinition;
export function getExtractor(type: string, sources: readonly SourceDefinition[] = SOURCES): SourceDefinition {
  const definition = definitionOf(sources, type, 'source');
  return { ...definition, create: (config, ctx) => guardReader(definition.create(config, ctx)) };
}
