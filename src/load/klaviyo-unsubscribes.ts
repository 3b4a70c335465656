import type { KlaviyoDestinationConfig } from '../config/schema.js';
import type { UnsubscribeItem, UnsubscribePayload } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { AckedLoader } from './acked-loader.js';
import { Batcher } from './batcher.js';
import { envelope, itemReject, type BulkEndpoint, type Entry } from './bulk.js';
import { byMembership, plannedMembershipReads, skipNotInList } from './list-membership.js';
import type { LoadContext } from './types.js';

/** The parts of the destination config the unsubscribe loader reads. */
export type UnsubscribeLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'unsubscribes' | 'maxBytes'>;
};

export const UNSUBSCRIBES_ENDPOINT_KEY = 'POST /api/profile-subscription-bulk-delete-jobs';
const PREFIX = '{"data":{"type":"profile-subscription-bulk-delete-job","attributes":{"profiles":{"data":[';
/** Room reserved for the list relationship. */
const ENVELOPE_RESERVE = 512;

function suffix(listId: string | undefined): string {
  return ']}}' + (listId === undefined ? '' : `,"relationships":{"list":{"data":{"type":"list","id":${JSON.stringify(listId)}}}}`) + '}}';
}

const group = (p: UnsubscribePayload): string => JSON.stringify([p.listId, p.membersOnly === true]);

const ENDPOINT: BulkEndpoint<Entry<UnsubscribeItem>> = {
  key: UNSUBSCRIBES_ENDPOINT_KEY,
  entriesPointer: '/data/attributes/profiles/data',
  body: (entries) => envelope(PREFIX, entries, suffix(entries[0]!.item.payload.listId)),
  // an unsubscribe sets a state: sending it twice leaves the same consent
  idempotent: () => true,
  names: (entries) => {
    const list = entries[0]?.item.payload.listId;
    return list === undefined ? [] : [`list ${list}`];
  },
};

/**
 * Loads unsubscribe items through `POST /api/profile-subscription-bulk-delete-jobs` (≤100 profiles; 202 acknowledges
 * them). Consecutive items of the same list share a request. From a list with `membersOnly`, each batch's membership
 * is read first (src/klaviyo/list-members.ts) and the rows whose profile is not in the list are skipped (NOT_IN_LIST):
 * Klaviyo would unsubscribe them from every list.
 */
export class KlaviyoUnsubscribeLoader extends AckedLoader<'unsubscribe'> {
  constructor(config: UnsubscribeLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    super(
      {
        kind: 'unsubscribe',
        endpoint: ENDPOINT,
        entryOf: (item) => ({ item, json: JSON.stringify({ type: 'profile', attributes: item.payload.profile }) }),
        batcher: (plan) =>
          new Batcher<Entry<UnsubscribeItem>>({
            maxItems: config.batch.unsubscribes,
            maxBytes: config.batch.maxBytes,
            envelopeBytes: Buffer.byteLength(PREFIX + suffix(undefined)) + ENVELOPE_RESERVE,
            concurrency: config.concurrency,
            sizeOf: (entry) => Buffer.byteLength(entry.json),
            groupOf: (entry) => group(entry.item.payload),
            send: async (entries) => {
              const payload = entries[0]!.item.payload;
              if (payload.listId === undefined || payload.membersOnly !== true) return plan(entries);
              if (!client || ctx.dryRun) {
                ctx.stats.plannedRequests += plannedMembershipReads(entries.map((e) => e.item.payload.profile));
                return plan(entries);
              }
              const { members, others } = await byMembership(client, payload.listId, entries, (e) => e.item.payload.profile);
              const why = `not a member of list ${payload.listId}: Klaviyo would unsubscribe it from every list (notInList: skip)`;
              skipNotInList(ctx, others, why);
              if (members.length > 0) await plan(members.map((m) => m.entry));
            },
            onTooLarge: (entry, bytes) =>
              ctx.onReject([itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `unsubscribe is ${bytes} bytes serialized`)]),
          }),
      },
      ctx,
      client,
    );
  }
}
