/**
 * One shape for every component kind. A source, a transform and a destination are each one file exporting a
 * definition `{ type, summary, config, capabilities, create }`; the definitions are collected in typed lists
 * ({@link Components}), from which the pipeline schema, its JSON Schema and the runner's wiring are built. What
 * differs between two components of a kind is declared in its `capabilities`: the runner knows no component by
 * name.
 */
import type { z } from 'zod';
import type { ExtractContext, InspectContext, SourceReader, SourceSample } from '../extract/types.js';
import type { TransformContext, Transformer } from '../transform/types.js';
import type { Destination, DestinationContext } from '../destinations/types.js';

/** The zod schema of a component's config: a strict object whose `type` literal names the component. */
export type ComponentConfig = z.ZodType<{ type: string }>;

/** What a source declares about itself. */
export interface SourceCapabilities {
  /** What its records are (matched against a transform's `reads`): `rows`, or `klaviyo-records` (any resource the klaviyo source exports). */
  yields: string;
  /** It honours `--since/--until` (bounds on its incremental cursor); other sources refuse them. */
  cursorBounds?: boolean;
  /** It reads only its part under `--shard i/n` (`ExtractContext.shard`): `objects` whole files/objects, `rows` rows by key. */
  shards?: 'objects' | 'rows';
  /**
   * Its watermark lists the inputs it read (files, objects), not a position in time: under another mapping version
   * (a changed transform, destination or parse setting) the runner gives it no watermark, so it reads them again.
   */
  rereadOnNewMapping?: boolean;
  /**
   * It reads the Klaviyo API (KLAVIYO_BASE_URL, KLAVIYO_API_KEY in its environment): under `--emulator` the runner
   * points that environment at the embedded emulator, and starts the emulator even for a dry run.
   */
  readsKlaviyo?: boolean;
}

/** What a transform declares about itself. */
export interface TransformCapabilities {
  /** The kind of source records it maps (a source's `yields`). */
  reads: string;
  /** The kind of items it produces (matched against a destination's `accepts`). */
  produces: string;
}

/** What a destination declares about itself. */
export interface DestinationCapabilities {
  /** Item kinds it takes (a transform's `produces`). */
  accepts: readonly string[];
  /** It writes to the Klaviyo API: under `--emulator` (not for dry runs) it writes to the embedded emulator. */
  writesKlaviyo?: boolean;
  /**
   * Load-stage reject codes of items the destination acknowledged earlier (a bulk import job's import errors):
   * the runner settled those items at the ack, so such a reject must not hold the checkpoint back.
   */
  settledBeforeReject?: readonly string[];
}

/** A registered source. */
export interface SourceDefinition<S extends ComponentConfig = ComponentConfig> {
  /** The `type` of its config section. */
  type: z.output<S>['type'];
  /** One line: what it reads. */
  summary: string;
  config: S;
  capabilities: SourceCapabilities;
  create(config: z.output<S>, ctx: ExtractContext): SourceReader;
  /**
   * The start of each input (header, first rows) without reading it all, for the pre-flight check of `validate
   * --with-data` and of every run before its first request (src/runner/preflight.ts). Optional: a source without
   * it is not checked.
   */
  inspect?(config: z.output<S>, ctx: InspectContext): Promise<SourceSample[]>;
}

/** A registered transform. */
export interface TransformDefinition<S extends ComponentConfig = ComponentConfig> {
  type: z.output<S>['type'];
  summary: string;
  config: S;
  capabilities: TransformCapabilities;
  /** The output columns, for transforms producing rows (an export file's header). */
  columns?(config: z.output<S>): string[];
  /**
   * Other item kinds this config makes besides `produces` (a profile transform's `subscribe:` makes subscriptions):
   * the destination must take them too, and learns them through its context's `items.also`.
   */
  alsoProduces?(config: z.output<S>): string[];
  create(config: z.output<S>, ctx: TransformContext): Transformer;
}

/** A registered destination. */
export interface DestinationDefinition<S extends ComponentConfig = ComponentConfig> {
  type: z.output<S>['type'];
  summary: string;
  config: S;
  capabilities: DestinationCapabilities;
  create(config: z.output<S>, ctx: DestinationContext): Destination;
}

/** The components a pipeline can name: one typed list per kind (no global registry). */
export interface Components {
  sources: readonly SourceDefinition[];
  transforms: readonly TransformDefinition[];
  destinations: readonly DestinationDefinition[];
}
