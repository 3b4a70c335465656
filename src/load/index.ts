import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { LoadKind } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import { KlaviyoClient } from '../klaviyo/client.js';
import { KlaviyoEventLoader } from './klaviyo-events.js';
import { KlaviyoProfileLoader, type JobPollOptions } from './klaviyo-profiles.js';
import { KlaviyoSubscriptionLoader } from './klaviyo-subscriptions.js';
import { RateLimiter, type RateLimiterOptions } from '../klaviyo/rate-limiter.js';
import type { LoadContext, Loader } from './types.js';

export { Batcher, type BatcherOptions } from './batcher.js';
export { describeRange, pointerIndex } from './bulk.js';
export { KlaviyoClient, type JsonApiError, type KlaviyoClientOptions, type KlaviyoRequest, type KlaviyoResponse } from '../klaviyo/client.js';
export { KlaviyoEventLoader, eventDedupKey, eventEntry, type EventPayload } from './klaviyo-events.js';
export { KlaviyoProfileLoader, type JobPollOptions } from './klaviyo-profiles.js';
export { KlaviyoSubscriptionLoader, type SubscriptionPayload } from './klaviyo-subscriptions.js';
export { RateLimiter, type RateLimitObservation, type RateLimiterOptions } from '../klaviyo/rate-limiter.js';
export { DEFAULT_RETRY_POLICY, parseRetryAfter, retryDelay, type RetryInput, type RetryPolicy } from '../klaviyo/retry.js';

/** The destination config as the loaders read it (the parsed `destination` of a pipeline). */
export type KlaviyoLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency' | 'lists' | 'batch'>;

export interface KlaviyoLoaderContext extends LoadContext {
  /** Required unless `dryRun`. */
  client?: KlaviyoClient;
  /** Profile job polling cadence. */
  poll?: JobPollOptions;
}

/**
 * Create the loader for one kind of item. In `dryRun` the loader batches exactly as a real run would, sends
 * nothing, acknowledges every batch and counts `stats.plannedRequests`.
 */
export function createKlaviyoLoader(kind: LoadKind, config: KlaviyoLoaderConfig, ctx: KlaviyoLoaderContext): Loader {
  if (!ctx.dryRun && !ctx.client) throw new EtlError('INTERNAL', 'createKlaviyoLoader needs a client unless dryRun');
  const client = ctx.dryRun ? undefined : ctx.client;
  switch (kind) {
    case 'event':
      return new KlaviyoEventLoader(config, ctx, client);
    case 'profile':
      return new KlaviyoProfileLoader(config, ctx, client, ctx.poll);
    case 'subscription':
      return new KlaviyoSubscriptionLoader(config, ctx, client);
    default:
      throw new EtlError('INTERNAL', `Expected a load kind (profile, event, subscription), got \`${String(kind)}\``);
  }
}

export interface KlaviyoConnectionOptions {
  apiKey: string;
  stats: RunStats;
  logger?: Logger;
  signal?: AbortSignal;
  /** Multiplies every rate allowance (the emulator's `--limits`). @default 1 */
  scale?: number;
  /** Share rate limits with other processes through Redis. */
  redis?: RateLimiterOptions['redis'];
  /** Extra limiter options (window lengths in tests). */
  limiter?: Omit<RateLimiterOptions, 'tiers' | 'scale' | 'redis' | 'logger'>;
  /** Base URL when the destination has none. @default https://a.klaviyo.com */
  defaultBaseUrl?: string;
}

/** A client and its limiter built from a destination config; `close` releases both. */
export interface KlaviyoConnection {
  client: KlaviyoClient;
  limiter: RateLimiter;
  close(): Promise<void>;
}

export function connectKlaviyo(
  destination: Pick<KlaviyoDestinationConfig, 'baseUrl' | 'revision' | 'rateLimits' | 'retries' | 'timeoutMs'>,
  options: KlaviyoConnectionOptions,
): KlaviyoConnection {
  const limiter = new RateLimiter({
    ...options.limiter,
    tiers: destination.rateLimits,
    scale: options.scale,
    redis: options.redis,
    logger: options.logger,
  });
  const client = new KlaviyoClient({
    baseUrl: destination.baseUrl ?? options.defaultBaseUrl,
    apiKey: options.apiKey,
    revision: destination.revision,
    limiter,
    stats: options.stats,
    logger: options.logger,
    timeoutMs: destination.timeoutMs,
    retries: destination.retries,
    signal: options.signal,
  });
  return {
    client,
    limiter,
    close: async () => {
      await client.close();
      await limiter.close();
    },
  };
}
