/**
 * The consent guard of subscription loads: before a batch is subscribed, read the current consent of its profiles
 * (`GET /api/profiles` by the batch's emails and phone numbers, `additional-fields[profile]=subscriptions`, through
 * the shared limiter) and hold back every row whose profile opted out after the row's consent was given.
 *
 * Why: subscribing lifts UNSUBSCRIBE, SPAM_REPORT and USER_SUPPRESSED suppressions (bulk_subscribe_profiles, spec),
 * so a nightly file that still lists someone who unsubscribed yesterday would subscribe them again.
 *
 * A row is held back (code CONSENT_OPTED_OUT) when, for a channel it subscribes:
 * - email: the profile holding its email has a global suppression (any reason), an UNSUBSCRIBED email consent, or
 *   (subscribing into a list) a suppression from that list, dated after the row's `consented_at`, or at any date when
 *   the row has none;
 * - sms: the profile holding its phone number has UNSUBSCRIBED sms marketing (or transactional, when subscribing
 *   that) consent, with the same rule on dates.
 */
import type { SubscriptionItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { lookupProfiles, LOOKUP_CHUNK, type FoundProfile } from '../klaviyo/profile-lookup.js';

export const CONSENT_OPTED_OUT = 'CONSENT_OPTED_OUT';

/** One opt-out found on a profile: what it is and when it happened (ms, undefined when Klaviyo gives no date). */
interface OptOut {
  what: string;
  at: number | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An ISO 8601 time as ms; Klaviyo writes microseconds, which Date.parse may not read: cut them to milliseconds. */
export function instantMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const ms = Date.parse(value.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(ms) ? undefined : ms;
}

function path(value: unknown, ...keys: string[]): unknown {
  let v = value;
  for (const k of keys) v = isRecord(v) ? v[k] : undefined;
  return v;
}

/** The email opt-outs of a profile's `subscriptions` attribute (subscribing into `listId` adds its list suppression). */
function emailOptOuts(subscriptions: unknown, listId: string | undefined): OptOut[] {
  const marketing = path(subscriptions, 'email', 'marketing');
  const out: OptOut[] = [];
  if (!isRecord(marketing)) return out;
  for (const s of Array.isArray(marketing.suppression) ? marketing.suppression : []) {
    if (isRecord(s)) out.push({ what: `email suppressed (${String(s.reason)})`, at: instantMs(s.timestamp) });
  }
  if (marketing.consent === 'UNSUBSCRIBED') {
    out.push({ what: 'email marketing unsubscribed', at: instantMs(marketing.consent_timestamp) ?? instantMs(marketing.last_updated) });
  }
  for (const s of Array.isArray(marketing.list_suppressions) ? marketing.list_suppressions : []) {
    if (isRecord(s) && listId !== undefined && s.list_id === listId) {
      out.push({ what: `unsubscribed from list ${listId} (${String(s.reason)})`, at: instantMs(s.timestamp) });
    }
  }
  return out;
}

function smsOptOuts(subscriptions: unknown, transactional: boolean): OptOut[] {
  const out: OptOut[] = [];
  for (const kind of transactional ? ['marketing', 'transactional'] : ['marketing']) {
    const c = path(subscriptions, 'sms', kind);
    if (isRecord(c) && c.consent === 'UNSUBSCRIBED') {
      out.push({ what: `sms ${kind} unsubscribed`, at: instantMs(c.consent_timestamp) ?? instantMs(c.last_updated) });
    }
  }
  return out;
}

/**
 * Why `item` must not be subscribed, given the profiles holding its email and phone number (undefined: it may).
 * An opt-out counts when it is newer than the row's consent time, or always when the row has none (or the opt-out
 * has no date).
 */
export function optOutReason(item: SubscriptionItem, byEmail: FoundProfile | undefined, byPhone: FoundProfile | undefined): string | undefined {
  const { profile, listId, consentedAt } = item.payload;
  const consentMs = instantMs(consentedAt);
  const found: OptOut[] = [];
  if (profile.subscriptions.email && byEmail) found.push(...emailOptOuts(byEmail.attributes.subscriptions, listId));
  if (profile.subscriptions.sms && byPhone) found.push(...smsOptOuts(byPhone.attributes.subscriptions, profile.subscriptions.sms.transactional !== undefined));
  const newer = found.filter((o) => consentMs === undefined || o.at === undefined || o.at > consentMs);
  if (newer.length === 0) return undefined;
  const list = newer.map((o) => `${o.what}${o.at === undefined ? '' : ` at ${new Date(o.at).toISOString()}`}`).join('; ');
  return consentMs === undefined
    ? `not subscribed: the profile opted out (${list}) and the row has no consented_at to show a newer consent`
    : `not subscribed: the profile opted out (${list}) after the row's consented_at ${new Date(consentMs).toISOString()}`;
}

/** Requests a consent check of these items makes (one per 100 distinct emails, one per 100 distinct phones). */
export function plannedLookups(items: readonly SubscriptionItem[]): number {
  const emails = new Set<string>();
  const phones = new Set<string>();
  for (const item of items) {
    if (item.payload.checkOptOuts !== true) continue;
    const { email, phone_number: phone, subscriptions } = item.payload.profile;
    if (subscriptions.email && email !== undefined) emails.add(email.toLowerCase());
    if (subscriptions.sms && phone !== undefined) phones.add(phone);
  }
  return Math.ceil(emails.size / LOOKUP_CHUNK) + Math.ceil(phones.size / LOOKUP_CHUNK);
}

/**
 * Split a batch into the items to subscribe and those held back (with their reason). Only items whose payload asks
 * for the check (`checkOptOuts`) are looked up.
 */
export async function checkOptOuts(
  client: KlaviyoClient,
  items: readonly SubscriptionItem[],
): Promise<{ send: SubscriptionItem[]; held: { item: SubscriptionItem; reason: string }[] }> {
  const checked = items.filter((i) => i.payload.checkOptOuts === true);
  if (checked.length === 0) return { send: [...items], held: [] };
  const lookup = await lookupProfiles(
    client,
    {
      emails: checked.flatMap((i) => (i.payload.profile.subscriptions.email && i.payload.profile.email !== undefined ? [i.payload.profile.email] : [])),
      phones: checked.flatMap((i) => (i.payload.profile.subscriptions.sms && i.payload.profile.phone_number !== undefined ? [i.payload.profile.phone_number] : [])),
    },
    { additionalFields: ['subscriptions'], fields: ['email', 'phone_number', 'subscriptions'] },
  );
  const send: SubscriptionItem[] = [];
  const held: { item: SubscriptionItem; reason: string }[] = [];
  for (const item of items) {
    const { email, phone_number: phone } = item.payload.profile;
    const reason =
      item.payload.checkOptOuts === true
        ? optOutReason(item, email === undefined ? undefined : lookup.byEmail.get(email.toLowerCase()), phone === undefined ? undefined : lookup.byPhone.get(phone))
        : undefined;
    if (reason === undefined) send.push(item);
    else held.push({ item, reason });
  }
  return { send, held };
}
