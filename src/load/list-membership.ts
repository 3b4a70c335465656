import type { LoadItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { listMembersAmong, memberId } from '../klaviyo/list-members.js';
import { itemReject } from './bulk.js';
import type { LoadContext } from './types.js';

/*
 * What the loaders that act on a list's members (unsubscribe with `notInList: skip`, remove-from-list) share: which
 * profiles of a batch are in the list (read through src/klaviyo/list-members.ts), and skipping the others.
 */

/** The reason code of a row skipped because its profile is not in the list. */
const NOT_IN_LIST = 'NOT_IN_LIST';

/** A profile as a batch entry names it. */
interface Named {
  email?: string;
  phone_number?: string;
}

/** The membership reads a real run would make for these profiles (a dry run counts them). */
export function plannedMembershipReads(profiles: readonly Named[]): number {
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

/** The entries whose profile (`profileOf`) is a member of the list, with its profile id, and the others. */
export async function byMembership<E>(
  client: KlaviyoClient,
  listId: string,
  entries: readonly E[],
  profileOf: (entry: E) => Named,
): Promise<{ members: { entry: E; id: string }[]; others: E[] }> {
  const profiles = entries.map(profileOf);
  const found = await listMembersAmong(client, listId, {
    emails: profiles.flatMap((p) => (p.email === undefined ? [] : [p.email])),
    phones: profiles.flatMap((p) => (p.phone_number === undefined ? [] : [p.phone_number])),
  });
  const members: { entry: E; id: string }[] = [];
  const others: E[] = [];
  entries.forEach((entry, i) => {
    const id = memberId(found, profiles[i]!.email, profiles[i]!.phone_number);
    if (id === undefined) others.push(entry);
    else members.push({ entry, id });
  });
  return { members, others };
}
