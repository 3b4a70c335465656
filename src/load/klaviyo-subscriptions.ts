import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { assertItemKind, type LoadItem, type SubscriptionItem, type SubscriptionPayload } from '../core/record.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, itemReject, type BulkEndpoint, type Entry, sendOrPlan } from './bulk.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { PROFILES_LOOKUP_KEY } from '../klaviyo/profile-lookup.js';
import { checkOptOuts, CONSENT_OPTED_OUT, plannedLookups } from './consent-guard.js';
import { ConsentSample, verifyConsent } from './consent-verify.js';
import type { CloseOptions, LoadContext, Loader } from './types.js';

export type { SubscriptionPayload } from '../core/record.js';

/** The parts of the destination config the subscription loader reads. */
export type SubscriptionLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> &
  Partial<Pick<KlaviyoDestinationConfig, 'verify'>> & {
    batch: Pick<KlaviyoDestinationConfig['batch'], 'subscriptions' | 'maxBytes'>;
  };

export const SUBSCRIPTIONS_ENDPOINT_KEY = 'POST /api/profile-subscription-bulk-create-jobs';
/** Room reserved for the group-dependent part of the envelope (list id, custom_source). */
const ENVELOPE_RESERVE = 2048;

function group(payload: SubscriptionPayload): [string | undefined, boolean, string | undefined] {
  return [payload.listId, payload.historicalImport === true, payload.customSource];
}

function parts(payload: SubscriptionPayload): { prefix: string; suffix: string } {
  const [listId, historical, customSource] = group(payload);
  const attrs =
    (customSource === undefined ? '' : `"custom_source":${JSON.stringify(customSource)},`) + `"historical_import":${historical},`;
  return {
    prefix: `{"data":{"type":"profile-subscription-bulk-create-job","attributes":{${attrs}"profiles":{"data":[`,
    suffix:
      ']}}' +
      (listId === undefined ? '' : `,"relationships":{"list":{"data":{"type":"list","id":${JSON.stringify(listId)}}}}`) +
      '}}',
  };
}

/** A payload of no list and default job options: the envelope without its group-dependent part. */
const NO_GROUP: SubscriptionPayload = { profile: { subscriptions: {} } };

const ENDPOINT: BulkEndpoint<Entry<SubscriptionItem>> = {
  key: SUBSCRIPTIONS_ENDPOINT_KEY,
  entriesPointer: '/data/attributes/profiles/data',
  body: (entries) => {
    const { prefix, suffix } = parts(entries[0]!.item.payload);
    return envelope(prefix, entries, suffix);
  },
  // not idempotent: a subscription to a double opt-in list sends a confirmation email each time it is applied
  names: (entries) => {
    const list = entries[0]?.item.payload.listId;
    return list === undefined ? [] : [`list ${list}`];
  },
};

/**
 * Loads subscription items through `POST /api/profile-subscription-bulk-create-jobs` (≤1000 profiles). Consecutive
 * items with the same list id + historical_import + custom_source share a request. 202 acknowledges them: Klaviyo
 * accepted them and applies them later (`verify` reads a sample back).
 *
 * Items asking for it (`checkOptOuts`, the subscription transform's default) are first checked against the profiles'
 * current consent (load/consent-guard.ts): those whose profile opted out since the row's consent are not sent but
 * skipped (`onSkip`, code CONSENT_OPTED_OUT).
 */
export class KlaviyoSubscriptionLoader implements Loader {
  readonly #batcher: Batcher<Entry<SubscriptionItem>>;
  readonly #ctx: LoadContext;
  readonly #client: KlaviyoClient | undefined;
  readonly #config: SubscriptionLoaderConfig;
  readonly #sample: ConsentSample | undefined;

  constructor(config: SubscriptionLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    this.#ctx = ctx;
    this.#client = client;
    this.#config = config;
    this.#sample = config.verify && client ? new ConsentSample(config.verify.sample) : undefined;
    const sender = client
      ? new BulkSender<Entry<SubscriptionItem>>(client, ENDPOINT, ctx, (entries) => {
          this.#sample?.add(entries.map((e) => e.item));
          ctx.onAck(entries.map((e) => e.item));
        })
      : undefined;
    const send = sendOrPlan(ctx, sender, ENDPOINT);
    this.#batcher = new Batcher<Entry<SubscriptionItem>>({
      maxItems: config.batch.subscriptions,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: Buffer.byteLength(parts(NO_GROUP).prefix + parts(NO_GROUP).suffix) + ENVELOPE_RESERVE,
      concurrency: config.concurrency,
      sizeOf: (entry) => Buffer.byteLength(entry.json),
      groupOf: (entry) => JSON.stringify(group(entry.item.payload)),
      send: async (entries) => {
        const rest = await this.#holdBackOptedOut(entries);
        if (rest.length > 0) await send(rest);
      },
      onTooLarge: (entry, bytes) =>
        ctx.onReject([itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `subscription is ${bytes} bytes serialized`)]),
    });
  }

  /** The entries to send: those whose profiles did not opt out since their consent (the others are skipped). */
  async #holdBackOptedOut(entries: Entry<SubscriptionItem>[]): Promise<Entry<SubscriptionItem>[]> {
    const items = entries.map((e) => e.item);
    if (!this.#client) {
      const lookups = plannedLookups(items); // a dry run: what a real run would look up
      if (lookups > 0) {
        const stats = this.#ctx.stats;
        stats.plannedRequests += lookups;
        stats.plannedByEndpoint[PROFILES_LOOKUP_KEY] = (stats.plannedByEndpoint[PROFILES_LOOKUP_KEY] ?? 0) + lookups;
      }
      return entries;
    }
    const { held } = await checkOptOuts(this.#client, items);
    if (held.length === 0) return entries;
    const skips = held.map(({ item, reason }) => itemReject(item, item.first, CONSENT_OPTED_OUT, reason, 'subscriptions'));
    if (this.#ctx.onSkip) this.#ctx.onSkip(skips);
    else this.#ctx.onReject(skips); // never dropped silently
    const heldItems = new Set(held.map((h) => h.item));
    return entries.filter((e) => !heldItems.has(e.item));
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, 'subscription');
      await this.#batcher.add({ item, json: JSON.stringify({ type: 'profile', attributes: item.payload.profile }) });
    }
  }

  /** Flush and wait for every batch; then the `verify` read-back, unless the run was interrupted (`stopWaitingForJobs`). */
  async close(options: CloseOptions = {}): Promise<void> {
    await this.#batcher.close();
    const verify = this.#config.verify;
    const interrupt = options.stopWaitingForJobs;
    if (!verify || !this.#client || !this.#sample || interrupt?.aborted) return;
    const signals = [this.#ctx.signal, interrupt].filter((s): s is AbortSignal => s !== undefined);
    const result = await verifyConsent(this.#client, this.#sample.profiles, verify, signals.length > 0 ? AbortSignal.any(signals) : undefined);
    this.#ctx.stats.verify = result;
    if (!result.complete) {
      this.#ctx.logger.warn('verify: not every sampled profile holds the consent it was sent (Klaviyo applies subscriptions asynchronously)', {
        sampled: result.sampled,
        holding: result.holding,
        waitedMs: result.waitedMs,
      });
    }
  }
}
