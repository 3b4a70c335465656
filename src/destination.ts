import { EtlError } from './core/errors.js';
import type { Logger } from './core/logger.js';
import type { LoadItem, LoadKind, Reject } from './core/record.js';
import type { RunStats } from './core/stats.js';
import type { PipelineConfig } from './config/schema.js';
import { connectKlaviyo, createKlaviyoLoader, type KlaviyoConnection } from './load/index.js';
import type { Loader } from './load/types.js';

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
  onAck(items: LoadItem[], info?: { jobId?: string }): void;
  onReject(rejects: Reject[]): void;
  onJobDone?(jobId: string): void;
}

/** Where items go: a loader plus whatever connection it owns. */
export interface Destination {
  write(items: LoadItem[]): Promise<void>;
  /** Flush, wait for everything in flight, release connections. Throws EtlError if the run must fail. */
  close(): Promise<void>;
  /** Release connections without flushing (after a failure). */
  abort(): Promise<void>;
  pendingJobs(): string[];
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
        redis: ctx.redisUrl ? { url: ctx.redisUrl } : undefined,
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
    close: async () => {
      try {
        await loader.close();
      } finally {
        await connection?.close();
      }
    },
    abort: async () => {
      await connection?.close();
    },
    pendingJobs: () => loader.pendingJobs?.() ?? [],
  };
}
