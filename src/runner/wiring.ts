/**
 * The components of a pipeline, looked up in the registry and wired to the run. What differs between components
 * is what they declare (capabilities); nothing here names a source, transform or destination.
 */
import type { Components, DestinationDefinition, SourceDefinition, TransformDefinition } from '../components/types.js';
import { definitionOf } from '../components/lookup.js';
import type { PipelineConfig } from '../config/pipeline.js';
import path from 'node:path';
import { EtlError, type RunWarning } from '../core/errors.js';
import { shardLabel, type Shard } from '../core/shard.js';
import type { Logger } from '../core/logger.js';
import type { LoadItem, Reject } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import type { Destination, RequestPreview } from '../destinations/types.js';
import { guardReader } from '../extract/limits.js';
import type { SourceReader } from '../extract/types.js';
import type { Transformer } from '../transform/types.js';
import { whereOf, withWhere } from '../transform/where.js';
import type { EmbeddedKlaviyo } from './emulator.js';
import { rejectsSource, type ResendRow } from './from-rejects.js';
import type { RunSetup } from './setup.js';

/** The registered definitions a pipeline names. */
export interface PipelineComponents {
  source: SourceDefinition;
  transform: TransformDefinition;
  destination: DestinationDefinition;
}

/** Look the pipeline's components up (the pipeline was validated against the same registry). */
export function componentsOf(config: PipelineConfig, components: Components): PipelineComponents {
  return {
    source: definitionOf(components.sources, config.source.type, 'source'),
    transform: definitionOf(components.transforms, config.transform.type, 'transform'),
    destination: definitionOf(components.destinations, config.destination.type, 'destination'),
  };
}

/** Bounds for one run (`--since/--until`) apply only to sources declaring `cursorBounds`. */
export function checkBounds(source: SourceDefinition, sources: readonly SourceDefinition[], bounds: { since?: string; until?: string }): void {
  if ((bounds.since !== undefined || bounds.until !== undefined) && !source.capabilities.cursorBounds) {
    // never a run that quietly ignores its bounds and reads everything
    const fit = sources.filter((s) => s.capabilities.cursorBounds).map((s) => s.type);
    throw new EtlError('USAGE', `--since/--until bound a cursor and apply to ${fit.join(', ')} sources, not to a ${source.type} source`);
  }
}

/** `--shard i/n` applies only to sources declaring `shards`; never a shard that quietly reads everything. */
export function checkShard(source: SourceDefinition, sources: readonly SourceDefinition[], shard: Shard | undefined): void {
  if (shard && !source.capabilities.shards) {
    const fit = sources.filter((s) => s.capabilities.shards).map((s) => s.type);
    throw new EtlError('USAGE', `--shard splits the input of ${fit.join(', ')} sources, not of a ${source.type} source`);
  }
}

/**
 * The configuration one shard runs with: its own name (`<name>.shard-i-of-n`, so its own checkpoint, lock, state
 * directory and history), and an explicit `checkpoint.dir` or `rejects.path` made the shard's own.
 */
export function shardConfig(config: PipelineConfig, shard: Shard | undefined): PipelineConfig {
  if (!shard) return config;
  const label = shardLabel(shard);
  const rejectsPath = config.rejects.path?.replace(/(\.[^./\\]+)?$/, (ext) => `.${label}${ext}`);
  return {
    ...config,
    name: `${config.name}.${label}`,
    checkpoint: config.checkpoint.dir ? { ...config.checkpoint, dir: path.join(config.checkpoint.dir, label) } : config.checkpoint,
    rejects: rejectsPath ? { ...config.rejects, path: rejectsPath } : config.rejects,
  };
}

/** Whether a run needs the embedded emulator: a source reading Klaviyo, or a real run writing to it. */
export function needsKlaviyo(parts: PipelineComponents, dryRun: boolean): boolean {
  return Boolean(parts.source.capabilities.readsKlaviyo || (!dryRun && parts.destination.capabilities.writesKlaviyo));
}

/** `--from-rejects` replaces a source of rows for one run: not with the options that steer a source's reading. */
export function checkResend(parts: PipelineComponents, options: { fromRejects?: string; fullRefresh?: boolean; restart?: boolean; since?: string; until?: string }): void {
  if (options.fromRejects === undefined) {
    if (options.fullRefresh && (options.since !== undefined || options.until !== undefined)) {
      throw new EtlError('USAGE', '--full-refresh reads every source in full: not with --since/--until');
    }
    return;
  }
  if (parts.source.capabilities.yields !== 'rows') {
    throw new EtlError('USAGE', `--from-rejects sends rows again through a mapping of rows; this pipeline's ${parts.source.type} source gives ${parts.source.capabilities.yields}`);
  }
  const clash = (['fullRefresh', 'restart', 'since', 'until'] as const).find((k) => options[k] !== undefined && options[k] !== false);
  if (clash) {
    const flag = { fullRefresh: '--full-refresh', restart: '--restart', since: '--since', until: '--until' }[clash];
    throw new EtlError('USAGE', `--from-rejects reads a rejects file instead of the source and touches no checkpoint: not with ${flag}`);
  }
}

/** What the runner hands the components. */
export interface WiringContext {
  config: PipelineConfig;
  parts: PipelineComponents;
  setup: RunSetup;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  stats: RunStats;
  dryRun: boolean;
  startedAt: Date;
  klaviyo?: EmbeddedKlaviyo;
  redisUrl?: string;
  /** The run's interrupt signal (sources stop reading). */
  signal?: AbortSignal;
  /** Cuts in-flight requests off some time after an interrupt (destinations). */
  drainSignal: AbortSignal;
  /** `--from-rejects`: the rows to send again, read instead of the source. */
  resend?: ResendRow[];
  onAck(items: LoadItem[]): void;
  onReject(rejects: Reject[]): void;
  onJobDone(jobId: string): void;
  onSkip(skips: Reject[]): void;
  /** Report a warning (the report's `warnings`). */
  warn(warning: RunWarning): void;
  /** Dry runs: each request a real run would send (`--dry-run --show N`). */
  onPlanned?(request: RequestPreview): void;
}

/** The destination of the pipeline. */
export function openDestination(ctx: WiringContext): Destination {
  const { config, parts, setup } = ctx;
  return parts.destination.create(config.destination, {
    baseDir: ctx.baseDir,
    env: ctx.env,
    logger: ctx.logger,
    stats: ctx.stats,
    dryRun: ctx.dryRun,
    signal: ctx.drainSignal,
    klaviyo: parts.destination.capabilities.writesKlaviyo ? ctx.klaviyo?.target : undefined,
    redisUrl: ctx.redisUrl,
    resumeJobs: setup.resume?.resumeJobs,
    run: {
      id: setup.runId,
      startedAt: ctx.startedAt,
      resumed: setup.resume?.resumed ?? false,
      startAfter: setup.startAfter,
      stateDir: setup.stateDir,
      interrupted: () => ctx.signal?.aborted ?? false,
      emulatorOutputDir: setup.emulatorOutputDir,
    },
    items: {
      kind: parts.transform.capabilities.produces,
      columns: parts.transform.columns?.(config.transform),
      also: parts.transform.alsoProduces?.(config.transform),
    },
    onAck: ctx.onAck,
    onReject: ctx.onReject,
    onJobDone: ctx.onJobDone,
    onSkip: ctx.onSkip,
    ...(ctx.dryRun && ctx.onPlanned ? { onPlanned: ctx.onPlanned } : {}),
  });
}

/** The source reader of the pipeline; every row passes the row limits (src/extract/limits.ts), whatever the source. */
export function openSource(ctx: WiringContext, bounds: { since?: string; until?: string; limit?: number; shard?: Shard }): SourceReader {
  const { parts, setup } = ctx;
  if (ctx.resend) return guardReader(rejectsSource(ctx.resend, bounds.limit));
  const checkpointer = setup.checkpointer;
  // a source reading Klaviyo reads the embedded emulator under --emulator
  const env = ctx.klaviyo && parts.source.capabilities.readsKlaviyo ? ctx.klaviyo.env(ctx.env) : ctx.env;
  const reader = parts.source.create(ctx.config.source, {
    baseDir: ctx.baseDir,
    env,
    stats: ctx.stats,
    logger: ctx.logger,
    signal: ctx.signal,
    redisUrl: ctx.redisUrl,
    startAfter: setup.startAfter,
    watermark: setup.watermark,
    plan: setup.resume?.sourcePlan,
    savePlan: checkpointer ? (sourcePlan: unknown) => checkpointer.update({ sourcePlan }) : undefined,
    warn: ctx.warn,
    ...bounds,
  });
  return guardReader(reader);
}

/** The transformer of the pipeline. */
export function openTransform(ctx: WiringContext): Transformer {
  return withWhere(ctx.parts.transform.create(ctx.config.transform, {}), whereOf(ctx.config.transform));
}
