import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { assertItemKind, type LoadItem, type UnsubscribeItem, type UnsubscribePayload } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { listMembersAmong, memberId } from '../klaviyo/list-members.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, itemReject, sendOrPlan, type BulkEndpoint, type Entry } from './bulk.js';
import type { LoadContext, Loader } from './types.js';

/** The parts of the destination config the unsubscribe loader reads. */
export type UnsubscribeLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'unsubscribes' | 'maxBytes'>;
};

export const UNSUBSCRIBES_ENDPOINT_KEY = 'POST /api/profile-subscription-bulk-delete-jobs';
/** The reason code of a row skipped because its profile is not in the list. */
const NOT_IN_LIST = 'NOT_IN_LIST';
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
export class KlaviyoUnsubscribeLoader implements Loader {
  readonly #batcher: Batcher<Entry<UnsubscribeItem>>;

  constructor(config: UnsubscribeLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    const sender = client
      ? new BulkSender<Entry<UnsubscribeItem>>(client, ENDPOINT, ctx, (entries) => ctx.onAck(entries.map((e) => e.item)))
      : undefined;
    const plan = sendOrPlan(ctx, sender);
    this.#batcher = new Batcher<Entry<UnsubscribeItem>>({
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
        const { members, others } = await inList(client, payload.listId, entries);
        const why = `not a member of list ${payload.listId}: Klaviyo would unsubscribe it from every list (notInList: skip)`;
        skipNotInList(ctx, others, why);
        if (members.length > 0) await plan(members);
      },
      onTooLarge: (entry, bytes) =>
        ctx.onReject([itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `unsubscribe is ${bytes} bytes serialized`)]),
    });
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, 'unsubscribe');
      await this.#batcher.add({ item, json: JSON.stringify({ type: 'profile', attributes: item.payload.profile }) });
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
  }
}

/** The membership reads a real run would make for these profiles (a dry run counts them). */
export function plannedMembershipReads(profiles: readonly { email?: string; phone_number?: string }[]): number {
  const emails = profiles.filter((p) => p.email !== undefined).length;
  const phones = profiles.filter((p) => p.phone_number !== undefined).length;
  return Math.ceil(emails / 100) + Math.ceil(phones / 100);
}

/** Skip these entries (NOT_IN_LIST, with `why`): rejected instead when the runner takes no skips (never dropped). */
export function skipNotInList(ctx: LoadContext, entries: readonly { item: LoadItem & { kind: 'unsubscribe' | 'remove-from-list' } }[], why: string): void {
  if (entries.length === 0) return;
  const skips = entries.map((e) => itemReject(e.item, e.item.first, NOT_IN_LIST, why, 'profile'));
  if (ctx.onSkip) ctx.onSkip(skips);
  else ctx.onReject(skips);
}

/** The entries whose profile is a member of the list, and the others. */
async function inList(
  client: KlaviyoClient,
  listId: string,
  entries: Entry<UnsubscribeItem>[],
): Promise<{ members: Entry<UnsubscribeItem>[]; others: Entry<UnsubscribeItem>[] }> {
  const profiles = entries.map((e) => e.item.payload.profile);
  const found = await listMembersAmong(client, listId, {
    emails: profiles.flatMap((p) => (p.email === undefined ? [] : [p.email])),
    phones: profiles.flatMap((p) => (p.phone_number === undefined ? [] : [p.phone_number])),
  });
  const members: Entry<UnsubscribeItem>[] = [];
  const others: Entry<UnsubscribeItem>[] = [];
  for (const entry of entries) {
    const p = entry.item.payload.profile;
    (memberId(found, p.email, p.phone_number) === undefined ? others : members).push(entry);
  }
  return { members, others };
}
