import type { KlaviyoDestinationConfig } from '../config/schema.js';
import type { SuppressItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { AckedLoader } from './acked-loader.js';
import { Batcher } from './batcher.js';
import { envelope, itemReject, type BulkEndpoint, type Entry } from './bulk.js';
import type { LoadContext } from './types.js';

/** The parts of the destination config the suppression loader reads. */
export type SuppressionLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'suppressions' | 'maxBytes'>;
};

export const SUPPRESSIONS_ENDPOINT_KEY = 'POST /api/profile-suppression-bulk-create-jobs';
const PREFIX = '{"data":{"type":"profile-suppression-bulk-create-job","attributes":{"profiles":{"data":[';
const SUFFIX = ']}}}}';

const ENDPOINT: BulkEndpoint<Entry<SuppressItem>> = {
  key: SUPPRESSIONS_ENDPOINT_KEY,
  entriesPointer: '/data/attributes/profiles/data',
  body: (entries) => envelope(PREFIX, entries, SUFFIX),
  // a suppression sets a state: sending it twice leaves the same suppression
  idempotent: () => true,
};

/**
 * Loads suppress items through `POST /api/profile-suppression-bulk-create-jobs` (≤100 emails). Klaviyo answers 202
 * with a job; the 202 acknowledges the items (the job applies them asynchronously: the report counts what Klaviyo
 * accepted, as for subscriptions).
 */
export class KlaviyoSuppressionLoader extends AckedLoader<'suppress'> {
  constructor(config: SuppressionLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    super(
      {
        kind: 'suppress',
        endpoint: ENDPOINT,
        entryOf: (item) => ({ item, json: JSON.stringify({ type: 'profile', attributes: { email: item.payload.email } }) }),
        batcher: (send) =>
          new Batcher<Entry<SuppressItem>>({
            maxItems: config.batch.suppressions,
            maxBytes: config.batch.maxBytes,
            envelopeBytes: Buffer.byteLength(PREFIX + SUFFIX),
            concurrency: config.concurrency,
            sizeOf: (entry) => Buffer.byteLength(entry.json),
            send,
            onTooLarge: (entry, bytes) => ctx.onReject([itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `suppression is ${bytes} bytes serialized`)]),
          }),
      },
      ctx,
      client,
    );
  }
}
