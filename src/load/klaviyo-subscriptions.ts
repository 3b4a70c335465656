import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { assertItemKind, type LoadItem, type SubscriptionItem, type SubscriptionPayload } from '../core/record.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, itemReject, type BulkEndpoint, type Entry, sendOrPlan } from './bulk.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import type { LoadContext, Loader } from './types.js';

export type { SubscriptionPayload } from '../core/record.js';

/** The parts of the destination config the subscription loader reads. */
export type SubscriptionLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
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
 * items with the same list id + historical_import + custom_source share a request. 202 acknowledges them.
 */
export class KlaviyoSubscriptionLoader implements Loader {
  readonly #batcher: Batcher<Entry<SubscriptionItem>>;

  constructor(config: SubscriptionLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    const sender = client
      ? new BulkSender<Entry<SubscriptionItem>>(client, ENDPOINT, ctx, (entries) => ctx.onAck(entries.map((e) => e.item)))
      : undefined;
    this.#batcher = new Batcher<Entry<SubscriptionItem>>({
      maxItems: config.batch.subscriptions,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: Buffer.byteLength(parts(NO_GROUP).prefix + parts(NO_GROUP).suffix) + ENVELOPE_RESERVE,
      concurrency: config.concurrency,
      sizeOf: (entry) => Buffer.byteLength(entry.json),
      groupOf: (entry) => JSON.stringify(group(entry.item.payload)),
      send: sendOrPlan(ctx, sender),
      onTooLarge: (entry, bytes) =>
        ctx.onReject([itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `subscription is ${bytes} bytes serialized`)]),
    });
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, 'subscription');
      await this.#batcher.add({ item, json: JSON.stringify({ type: 'profile', attributes: item.payload.profile }) });
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
  }
}
