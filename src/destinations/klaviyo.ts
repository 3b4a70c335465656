import { KlaviyoDestination } from '../config/schema.js';
import type { DestinationDefinition } from '../components/types.js';
import { EtlError } from '../core/errors.js';
import type { LoadKind } from '../core/record.js';
import { accountTag, connectKlaviyo, type KlaviyoConnection } from '../klaviyo/connect.js';
import { createKlaviyoLoader } from '../load/index.js';
import { SETTLED_BEFORE_REJECT } from '../load/klaviyo-profiles.js';
import type { PlannedRequest } from '../load/types.js';
import type { Destination, RequestPreview } from './types.js';

const LOAD_KINDS: readonly string[] = ['profile', 'event', 'subscription', 'unsubscribe', 'suppress', 'remove-from-list'] satisfies LoadKind[];

/**
 * The `klaviyo` destination: profiles, events, subscriptions, unsubscribes, suppressions or list removals through
 * Klaviyo's bulk endpoints.
 */
export const klaviyoDestination: DestinationDefinition<typeof KlaviyoDestination> = {
  type: 'klaviyo',
  summary: 'Load into Klaviyo through the bulk endpoints: paced per endpoint, retried, acknowledged per item.',
  config: KlaviyoDestination,
  capabilities: { accepts: LOAD_KINDS, writesKlaviyo: true, settledBeforeReject: SETTLED_BEFORE_REJECT },
  create(dest, ctx): Destination {
    const kind = ctx.items.kind;
    for (const k of [kind, ...(ctx.items.also ?? [])]) {
      if (!LOAD_KINDS.includes(k)) throw new EtlError('USAGE', `items of kind ${k} cannot be loaded into Klaviyo`);
    }
    let connection: KlaviyoConnection | undefined;
    if (!ctx.dryRun) {
      const apiKey = ctx.klaviyo?.apiKey ?? ctx.env[dest.apiKeyEnv];
      if (!apiKey) {
        throw new EtlError('MISSING_API_KEY', `set ${dest.apiKeyEnv} to a Klaviyo private API key (or use --emulator or --dry-run)`);
      }
      connection = connectKlaviyo(
        { ...dest, baseUrl: ctx.klaviyo?.baseUrl ?? dest.baseUrl ?? ctx.env.KLAVIYO_BASE_URL },
        {
          apiKey,
          stats: ctx.stats,
          logger: ctx.logger,
          signal: ctx.signal,
          scale: ctx.klaviyo?.rateScale,
          // Limits are per Klaviyo account: processes share them when they use the same key. The prefix names the
          // account by a hash of the key (never the key itself).
          redis: ctx.redisUrl ? { url: ctx.redisUrl, prefix: `klaviyo-etl:${accountTag(apiKey)}` } : undefined,
        },
      );
    }
    const loader = createKlaviyoLoader(kind as LoadKind, dest, {
      logger: ctx.logger,
      stats: ctx.stats,
      signal: ctx.signal,
      dryRun: ctx.dryRun,
      resumeJobs: ctx.resumeJobs,
      client: connection?.client,
      onAck: ctx.onAck,
      onReject: ctx.onReject,
      onJobDone: ctx.onJobDone,
      onSkip: ctx.onSkip,
      onPlanned: ctx.onPlanned && previewer(dest, ctx.env, ctx.onPlanned),
    }, ctx.items.also);
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
  },
};

/** Dry runs: a planned request as the client would send it (src/klaviyo/client.ts), the key named, never shown. */
function previewer(
  dest: { baseUrl?: string; apiKeyEnv: string; revision: string },
  env: NodeJS.ProcessEnv,
  show: (request: RequestPreview) => void,
): (request: PlannedRequest) => void {
  const base = dest.baseUrl ?? env.KLAVIYO_BASE_URL ?? 'https://a.klaviyo.com'; // the client's default
  return ({ endpoint, body }) => {
    const [method, path] = endpoint.split(' ') as [string, string];
    show({
      method,
      url: new URL(path, base).toString(),
      headers: {
        authorization: `Klaviyo-API-Key <${dest.apiKeyEnv}: redacted>`,
        revision: dest.revision,
        accept: 'application/vnd.api+json',
        'content-type': 'application/vnd.api+json',
      },
      body,
    });
  };
}

