import { createHash } from 'node:crypto';
import type { KlaviyoDestinationConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';
import { KlaviyoClient } from './client.js';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter.js';

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
  limiter?: Omit<RateLimiterOptions, 'tiers' | 'scale' | 'redis' | 'logger' | 'clock'>;
  /** Base URL when the destination has none. @default https://a.klaviyo.com */
  defaultBaseUrl?: string;
  /** Time and timers of the limiter and the client's retry waits. @default systemClock */
  clock?: Clock;
}

/** A client and its limiter built from a destination config; `close` releases both. */
export interface KlaviyoConnection {
  client: KlaviyoClient;
  limiter: RateLimiter;
  close(): Promise<void>;
}

/** A Klaviyo client and its rate limiter, from a destination's settings (the loaders and the `klaviyo` source use it). */
export function connectKlaviyo(
  destination: Pick<KlaviyoDestinationConfig, 'baseUrl' | 'revision' | 'rateLimits' | 'retries' | 'timeoutMs'> &
    Partial<Pick<KlaviyoDestinationConfig, 'retryBudgetMs'>>,
  options: KlaviyoConnectionOptions,
): KlaviyoConnection {
  const limiter = new RateLimiter({
    ...options.limiter,
    tiers: destination.rateLimits,
    scale: options.scale,
    redis: options.redis,
    logger: options.logger,
    clock: options.clock,
    // a pipeline's rateLimits and the emulator's factor state the account's allowance: no first request alone
    trustStated: true,
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
    retryBudgetMs: destination.retryBudgetMs,
    signal: options.signal,
    clock: options.clock,
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

/** A short, non-reversible tag of an API key, naming its account in shared (Redis) rate-limit keys. */
export function accountTag(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}
