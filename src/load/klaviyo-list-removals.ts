import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { assertItemKind, type ListRemovalItem, type LoadItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { listMembersAmong, memberId } from '../klaviyo/list-members.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, sendOrPlan, type BulkEndpoint, type Entry } from './bulk.js';
import { plannedMembershipReads, skipNotInList } from './klaviyo-unsubscribes.js';
import type { LoadContext, Loader } from './types.js';

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
export class KlaviyoListRemovalLoader implements Loader {
  readonly #batcher: Batcher<Entry<ListRemovalItem>>;

  constructor(config: ListRemovalLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    const sender = client
      ? new BulkSender<Entry<ListRemovalItem>>(client, ENDPOINT, ctx, (entries) => ctx.onAck(entries.map((e) => e.item)))
      : undefined;
    const plan = sendOrPlan(ctx, sender);
    this.#batcher = new Batcher<Entry<ListRemovalItem>>({
      maxItems: config.batch.listRemovals,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: ENTRY_BYTES,
      concurrency: config.concurrency,
      sizeOf: () => ENTRY_BYTES,
      groupOf: (entry) => entry.item.payload.listId,
      send: async (entries) => {
        if (!client || ctx.dryRun) {
          ctx.stats.plannedRequests += plannedMembershipReads(entries.map((e) => e.item.payload));
          return plan(entries);
        }
        const listId = entries[0]!.item.payload.listId;
        const found = await listMembersAmong(client, listId, {
          emails: entries.flatMap((e) => (e.item.payload.email === undefined ? [] : [e.item.payload.email])),
          phones: entries.flatMap((e) => (e.item.payload.phone_number === undefined ? [] : [e.item.payload.phone_number])),
        });
        const members: Entry<ListRemovalItem>[] = [];
        const others: Entry<ListRemovalItem>[] = [];
        for (const entry of entries) {
          const id = memberId(found, entry.item.payload.email, entry.item.payload.phone_number);
          if (id === undefined) others.push(entry);
          else members.push({ item: entry.item, json: JSON.stringify({ type: 'profile', id }) });
        }
        skipNotInList(ctx, others, `not a member of list ${listId}: nothing to remove`);
        if (members.length > 0) await plan(members);
      },
      onTooLarge: () => {}, // every entry is ENTRY_BYTES
    });
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, 'remove-from-list');
      await this.#batcher.add({ item, json: '' });
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
  }
}
