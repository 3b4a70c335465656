import type { KlaviyoDestinationConfig } from '../config/schema.js';
import type { ListRemovalItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { AckedLoader } from './acked-loader.js';
import { Batcher } from './batcher.js';
import { envelope, type BulkEndpoint, type Entry } from './bulk.js';
import { byMembership, plannedMembershipReads, skipNotInList } from './list-membership.js';
import type { LoadContext } from './types.js';

/** The parts of the destination config the list removal loader reads. */
export type ListRemovalLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'listRemovals' | 'maxBytes'>;
};

export const LIST_REMOVAL_ENDPOINT_KEY = 'DELETE /api/lists/{id}/relationships/profiles';
/** `{"type":"profile","id":"<26-character ULID>"}` and a separator, with room to spare. */
const ENTRY_BYTES = 64;

const ENDPOINT: BulkEndpoint<Entry<ListRemovalItem>> = {
  key: LIST_REMOVAL_ENDPOINT_KEY,
  path: (entries) => `/api/lists/${encodeURIComponent(entries[0]!.item.payload.listId)}/relationships/profiles`,
  entriesPointer: '/data',
  body: (entries) => envelope('{"data":[', entries, ']}'),
  // a removal sets a state: sending it twice leaves the same membership
  idempotent: () => true,
  names: (entries) => [`list ${entries[0]!.item.payload.listId}`],
};

/**
 * Loads list removal items through `DELETE /api/lists/{id}/relationships/profiles` (≤1000 profile ids; 204). That
 * endpoint takes profile ids: each batch's emails and phone numbers are first looked up among the list's members
 * (`GET /api/lists/{id}/profiles` filtered by them, 100 a request; src/klaviyo/list-members.ts). A row whose profile is
 * not in the list has nothing to remove: it is skipped (NOT_IN_LIST) and counted.
 */
export class KlaviyoListRemovalLoader extends AckedLoader<'remove-from-list'> {
  constructor(config: ListRemovalLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    super(
      {
        kind: 'remove-from-list',
        endpoint: ENDPOINT,
        entryOf: (item) => ({ item, json: '' }), // the profile id, once the batch's members are looked up
        batcher: (plan) =>
          new Batcher<Entry<ListRemovalItem>>({
            maxItems: config.batch.listRemovals,
            maxBytes: config.batch.maxBytes,
            envelopeBytes: ENTRY_BYTES,
            concurrency: config.concurrency,
            sizeOf: () => ENTRY_BYTES,
            groupOf: (entry) => entry.item.payload.listId,
            send: (entries) => removeMembers(entries, { ctx, client, plan }),
            onTooLarge: () => {}, // every entry is ENTRY_BYTES
          }),
      },
      ctx,
      client,
    );
  }
}

/** A batch of one list: its members found by email / phone number and removed by id; the others skipped (NOT_IN_LIST). */
async function removeMembers(
  entries: Entry<ListRemovalItem>[],
  { ctx, client, plan }: { ctx: LoadContext; client: KlaviyoClient | undefined; plan: (entries: Entry<ListRemovalItem>[]) => Promise<void> },
): Promise<void> {
  if (!client || ctx.dryRun) {
    ctx.stats.plannedRequests += plannedMembershipReads(entries.map((e) => e.item.payload));
    return plan(entries);
  }
  const listId = entries[0]!.item.payload.listId;
  const { members, others } = await byMembership(client, listId, entries, (e) => e.item.payload);
  skipNotInList(ctx, others, `not a member of list ${listId}: nothing to remove`);
  if (members.length > 0) await plan(members.map(({ entry, id }) => ({ item: entry.item, json: JSON.stringify({ type: 'profile', id }) })));
}
