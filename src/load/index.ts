import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { LoadKind } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { KlaviyoEventLoader } from './klaviyo-events.js';
import { KlaviyoProfileConsentLoader } from './klaviyo-profile-consent.js';
import { KlaviyoProfileLoader, type JobPollOptions } from './klaviyo-profiles.js';
import { KlaviyoListRemovalLoader } from './klaviyo-list-removals.js';
import { KlaviyoSubscriptionLoader } from './klaviyo-subscriptions.js';
import { KlaviyoSuppressionLoader } from './klaviyo-suppressions.js';
import { KlaviyoUnsubscribeLoader } from './klaviyo-unsubscribes.js';
import type { LoadContext, Loader } from './types.js';

export type { EventPayload } from './klaviyo-events.js';
export type { JobPollOptions } from './klaviyo-profiles.js';

/** The destination config as the loaders read it (the parsed `destination` of a pipeline). */
export type KlaviyoLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency' | 'lists'> &
  Partial<Pick<KlaviyoDestinationConfig, 'jobTimeoutMs' | 'verify'>> & {
    /** The consent-removing sizes default as in the schema (Klaviyo's maximums: 100, 100, 1000). */
    batch: Omit<Batch, ConsentBatch> & Partial<Pick<Batch, ConsentBatch>>;
  };

type Batch = KlaviyoDestinationConfig['batch'];
type ConsentBatch = 'unsubscribes' | 'suppressions' | 'listRemovals';

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
export function createKlaviyoLoader(kind: LoadKind, config: KlaviyoLoaderConfig, ctx: KlaviyoLoaderContext, also: readonly string[] = []): Loader {
  if (!ctx.dryRun && !ctx.client) throw new EtlError('INTERNAL', 'createKlaviyoLoader needs a client unless dryRun');
  const client = ctx.dryRun ? undefined : ctx.client;
  const batch = { unsubscribes: 100, suppressions: 100, listRemovals: 1000, ...config.batch };
  // profiles with their consent (a profile transform's `subscribe:`): each profile imported before it is subscribed
  if (kind === 'profile' && also.includes('subscription')) return new KlaviyoProfileConsentLoader(config, ctx, client, ctx.poll);
  switch (kind) {
    case 'event':
      return new KlaviyoEventLoader(config, ctx, client);
    case 'profile':
      return new KlaviyoProfileLoader(config, ctx, client, ctx.poll);
    case 'subscription':
      return new KlaviyoSubscriptionLoader(config, ctx, client);
    case 'unsubscribe':
      return new KlaviyoUnsubscribeLoader({ ...config, batch }, ctx, client);
    case 'suppress':
      return new KlaviyoSuppressionLoader({ ...config, batch }, ctx, client);
    case 'remove-from-list':
      return new KlaviyoListRemovalLoader({ ...config, batch }, ctx, client);
    default:
      throw new EtlError('INTERNAL', `Expected a load kind (profile, event, subscription, unsubscribe, suppress, remove-from-list), got \`${String(kind)}\``);
  }
}
