import { createHash } from 'node:crypto';
import { EtlError } from './core/errors.js';
import type { Logger } from './core/logger.js';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ItemSpan, LoadItem, LoadKind, Reject, SourcePosition } from './core/record.js';
import type { RunStats } from './core/stats.js';
import type { PipelineConfig } from './config/schema.js';
import { createS3Client } from './s3/client.js';
import { connectKlaviyo, type KlaviyoConnection } from './klaviyo/connect.js';
import { createKlaviyoLoader } from './load/index.js';
import { createExportLoader, type ExportLoader, type ExportTarget } from './load/csv-export.js';
import type { Loader, CloseOptions } from './load/types.js';

/** Everything a destination needs from the runner. */
export interface DestinationContext {
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  stats: RunStats;
  dryRun: boolean;
  signal?: AbortSignal;
  /** Overrides destination.baseUrl and KLAVIYO_BASE_URL (the embedded emulator). */
  baseUrl?: string;
  /** Overrides the API key from the environment (the embedded emulator). */
  apiKey?: string;
  /** Multiplies the rate-limit allowances (an emulator running with `--limits <factor>`). */
  rateScale?: number;
  /** Share rate limits across processes through Redis. */
  redisUrl?: string;
  resumeJobs?: string[];
  onAck(items: ItemSpan[], info?: { jobId?: string }): void;
  onReject(rejects: Reject[]): void;
  onJobDone?(jobId: string): void;
}

/** Where items go: a loader plus whatever connection it owns. */
export interface Destination {
  write(items: LoadItem[]): Promise<void>;
  /**
   * Flush, wait for everything in flight, release connections. Throws EtlError if the run must fail.
   * `stopWaitingForJobs` (the run's interrupt signal) leaves unfinished bulk jobs pending for the next run.
   */
  close(options?: CloseOptions): Promise<void>;
  /** Release connections without flushing (after a failure). */
  abort(): Promise<void>;
  pendingJobs(): string[];
  /** `Loader.forgottenJobs` (none for loaders without bulk jobs). */
  forgottenJobs(): Promise<string[]>;
  /** `Loader.dropJobs`. */
  dropJobs(ids: readonly string[]): void;
}

const LOAD_KIND: Record<string, LoadKind> = { profile: 'profile', event: 'event', subscription: 'subscription' };

/** Build the destination of a pipeline. */
export function createDestination(config: PipelineConfig, ctx: DestinationContext): Destination {
  const dest = config.destination;
  if (dest.type !== 'klaviyo') {
    throw new EtlError('USAGE', `destination type ${dest.type} is for exports (a klaviyo source); it is not available for this pipeline`);
  }
  const kind = LOAD_KIND[config.transform.type];
  if (!kind) throw new EtlError('USAGE', `transform ${config.transform.type} cannot load into Klaviyo`);

  let connection: KlaviyoConnection | undefined;
  if (!ctx.dryRun) {
    const apiKey = ctx.apiKey ?? ctx.env[dest.apiKeyEnv];
    if (!apiKey) {
      throw new EtlError('MISSING_API_KEY', `set ${dest.apiKeyEnv} to a Klaviyo private API key (or use --emulator or --dry-run)`);
    }
    connection = connectKlaviyo(
      { ...dest, baseUrl: ctx.baseUrl ?? dest.baseUrl ?? ctx.env.KLAVIYO_BASE_URL },
      {
        apiKey,
        stats: ctx.stats,
        logger: ctx.logger,
        signal: ctx.signal,
        scale: ctx.rateScale,
        // Limits are per Klaviyo account: processes share them when they use the same key. The prefix names the
        // account by a hash of the key (never the key itself).
        redis: ctx.redisUrl ? { url: ctx.redisUrl, prefix: `klaviyo-etl:${accountTag(apiKey)}` } : undefined,
      },
    );
  }
  const loader: Loader = createKlaviyoLoader(kind, dest, {
    logger: ctx.logger,
    stats: ctx.stats,
    signal: ctx.signal,
    dryRun: ctx.dryRun,
    resumeJobs: ctx.resumeJobs,
    client: connection?.client,
    onAck: ctx.onAck,
    onReject: ctx.onReject,
    onJobDone: ctx.onJobDone,
  });
  return {
    write: (items) => loader.write(items),
    close: async (options) => {
      try {
        await loader.close(options);
      } finally {
        await connection?.close();
      }
    },
    abort: async () => {
      await connection?.close();
    },
    pendingJobs: () => loader.pendingJobs?.() ?? [],
    forgottenJobs: async () => (await loader.forgottenJobs?.()) ?? [],
    dropJobs: (ids) => loader.dropJobs?.(ids),
  };
}

// ---------------------------------------------------------------- exports (klaviyo source → csv / s3)

/** What an export destination needs beyond {@link DestinationContext}. */
export interface ExportDestinationContext extends DestinationContext {
  /** The run id (stable across resumes): `{runId}` in the output path. */
  runId: string;
  /** When the run started: `{date}` (UTC `yyyy-mm-dd`) in the output path. */
  startedAt: Date;
  /** Continuing an interrupted run: keep the partial file up to `startAfter` and append. */
  resumed: boolean;
  startAfter?: SourcePosition;
  /** Directory for the S3 destination's local staging file (the pipeline's state directory). */
  stagingDir: string;
  /** Whether the run was interrupted (the partial file is then kept, not published). */
  interrupted(): boolean;
}

/** Replace `{runId}` and `{date}` in an output path or key. */
export function expandExportPath(template: string, ctx: { runId: string; startedAt: Date }): string {
  return template.replaceAll('{runId}', ctx.runId).replaceAll('{date}', ctx.startedAt.toISOString().slice(0, 10));
}

/** Build the csv / s3 destination of an export pipeline (`export-row` items, made by the export transform). */
export function createExportDestination(config: PipelineConfig, ctx: ExportDestinationContext): Destination & { published(): string | undefined } {
  const dest = config.destination;
  if (config.transform.type !== 'export' || (dest.type !== 'csv' && dest.type !== 's3')) {
    throw new EtlError('USAGE', `an export needs an export transform and a csv or s3 destination (got ${config.transform.type} → ${dest.type})`);
  }
  const columns = Object.keys(config.transform.columns);
  let s3: S3Client | undefined;
  let target: ExportTarget;
  if (dest.type === 'csv') {
    target = { type: 'file', path: path.resolve(ctx.baseDir, expandExportPath(dest.path, ctx)) };
  } else {
    s3 = createS3Client({ region: dest.region, endpoint: dest.endpoint, forcePathStyle: dest.forcePathStyle, env: ctx.env });
    const key = expandExportPath(dest.key, ctx);
    const staging = path.join(ctx.stagingDir, `export-${ctx.runId}${/\.gz$/i.test(key) ? '.csv.gz' : '.csv'}.partial`);
    target = { type: 's3', client: s3, bucket: dest.bucket, key, stagingPath: staging };
  }
  const loader: ExportLoader = createExportLoader(
    {
      target,
      columns,
      delimiter: dest.type === 'csv' ? dest.delimiter : ',',
      resume: ctx.resumed ? { afterSeq: ctx.startAfter?.seq } : undefined,
      interrupted: ctx.interrupted,
    },
    { logger: ctx.logger, stats: ctx.stats, signal: ctx.signal, dryRun: ctx.dryRun, onAck: ctx.onAck, onReject: ctx.onReject },
  );
  return {
    write: (items) => loader.write(items),
    close: async () => {
      try {
        await loader.close();
      } finally {
        s3?.destroy();
      }
    },
    abort: async () => {
      await loader.abort();
      s3?.destroy();
    },
    pendingJobs: () => [],
    forgottenJobs: () => Promise.resolve([]),
    dropJobs: () => undefined,
    published: () => loader.published,
  };
}

/** A short, non-reversible tag of an API key, naming its account in shared (Redis) rate-limit keys. */
function accountTag(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}
