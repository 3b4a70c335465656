/**
 * Consent on profiles: how the subscription endpoints change it and how it is rendered as Klaviyo's
 * `attributes.subscriptions` (`additional-fields[profile]=subscriptions`).
 */
import { ApiError, invalidParam, isoMicros } from './http.js';
import type { Account, ConsentRecord, ProfileRecord, SubscriptionRecord } from './state.js';

/** The consent channels the emulator models. */
export type ConsentChannel = 'email' | 'sms' | 'smsTransactional';

/**
 * Suppression reasons a subscribe call lifts: the spec's bulk_subscribe_profiles description names `UNSUBSCRIBE`,
 * `SPAM_REPORT` and `USER_SUPPRESSED`; its EmailMarketingSuppression enum calls the spam one `SPAM_COMPLAINT`, so
 * both spellings are lifted. `HARD_BOUNCE` and `INVALID_EMAIL` stay.
 */
const LIFTED = new Set(['UNSUBSCRIBE', 'SPAM_REPORT', 'SPAM_COMPLAINT', 'USER_SUPPRESSED']);

/**
 * Apply the account's accepted subscribe jobs that are due at `now` (every one with `all`), in acceptance order.
 * Called before every request of the account is handled (and before the state is read or saved), so a job is applied
 * exactly when a client could first see it.
 */
export function applyDueConsent(account: Account, now: number, all = false): void {
  const queue = account.pendingConsent;
  let n = 0;
  while (n < queue.length && (all || queue[n]!.dueAt <= now)) n++;
  if (n === 0) return;
  for (const job of queue.splice(0, n)) job.apply();
}

function record(p: ProfileRecord): SubscriptionRecord {
  return (p.subscriptions ??= { suppression: [], listSuppressions: [] });
}

/** Options of one subscribe. */
export interface SubscribeOptions {
  /** When consent was collected (historical import), else `now`. */
  consentedAt: number | null;
  now: number;
  /** `custom_source` of the job. */
  customSource: string | null;
  /** The list's opt-in process was double opt-in (and not a historical import). */
  doubleOptin: boolean;
  /** List the profile subscribes into (lifts that list's suppression). */
  listId: string | null;
}

/** Set SUBSCRIBED on a channel; email subscriptions lift UNSUBSCRIBE/SPAM_REPORT/USER_SUPPRESSED suppressions. */
export function subscribe(p: ProfileRecord, channel: ConsentChannel, o: SubscribeOptions): void {
  const sub = record(p);
  const c: ConsentRecord = {
    consent: 'SUBSCRIBED',
    timestamp: o.consentedAt ?? o.now,
    lastUpdated: o.now,
    method: 'API',
    methodDetail: o.customSource ?? '',
    customMethodDetail: o.customSource,
    doubleOptin: o.doubleOptin,
  };
  sub[channel] = c;
  if (channel === 'email') {
    sub.suppression = sub.suppression.filter((s) => !LIFTED.has(s.reason));
    if (o.listId !== null) sub.listSuppressions = sub.listSuppressions.filter((s) => s.listId !== o.listId);
  }
}

/**
 * Set UNSUBSCRIBED on a channel. `listId` given → unsubscribed from that list only (a list suppression for email);
 * otherwise global (an `UNSUBSCRIBE` suppression for email).
 */
export function unsubscribe(p: ProfileRecord, channel: ConsentChannel, now: number, listId: string | null): void {
  const sub = record(p);
  const prev = sub[channel];
  sub[channel] = {
    consent: 'UNSUBSCRIBED',
    timestamp: now,
    lastUpdated: now,
    method: 'API',
    methodDetail: prev?.methodDetail ?? '',
    customMethodDetail: prev?.customMethodDetail ?? null,
    doubleOptin: prev?.doubleOptin ?? null,
  };
  if (channel !== 'email') return;
  if (listId !== null) {
    if (!sub.listSuppressions.some((s) => s.listId === listId)) sub.listSuppressions.push({ listId, reason: 'UNSUBSCRIBE', timestamp: now });
  } else if (!sub.suppression.some((s) => s.reason === 'UNSUBSCRIBE')) {
    sub.suppression.push({ reason: 'UNSUBSCRIBE', timestamp: now });
  }
}

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : isoMicros(ms);
}

function channelFields(c: ConsentRecord | undefined): Record<string, unknown> {
  return {
    consent: c?.consent ?? 'NEVER_SUBSCRIBED',
    consent_timestamp: iso(c?.timestamp),
    last_updated: iso(c?.lastUpdated),
    method: c?.method ?? null,
    method_detail: c?.methodDetail ?? '',
  };
}

/** `attributes.subscriptions` in Klaviyo's shape (GetListMemberResponseCollection / profile additional field). */
export function subscriptionsAttribute(p: ProfileRecord): Record<string, unknown> {
  const sub = p.subscriptions;
  const email = sub?.email;
  const suppression = (sub?.suppression ?? []).map((s) => ({ reason: s.reason, timestamp: isoMicros(s.timestamp) }));
  const listSuppressions = (sub?.listSuppressions ?? []).map((s) => ({ list_id: s.listId, reason: s.reason, timestamp: isoMicros(s.timestamp) }));
  const canEmail = p.strings.email !== undefined && email?.consent === 'SUBSCRIBED' && suppression.length === 0;
  const hasPhone = p.strings.phone_number !== undefined;
  return {
    email: {
      marketing: {
        can_receive_email_marketing: canEmail,
        ...channelFields(email),
        custom_method_detail: email?.customMethodDetail ?? null,
        double_optin: email?.doubleOptin ?? null,
        suppression,
        list_suppressions: listSuppressions,
      },
    },
    sms: {
      marketing: { can_receive_sms_marketing: hasPhone && sub?.sms?.consent === 'SUBSCRIBED', ...channelFields(sub?.sms) },
      transactional: {
        can_receive_sms_transactional: hasPhone && sub?.smsTransactional?.consent === 'SUBSCRIBED',
        ...channelFields(sub?.smsTransactional),
      },
    },
  };
}

/** Parse `additional-fields[<type>]` into a set of names (null when absent). */
export function additionalFields(query: URLSearchParams, type: string): Set<string> | null {
  const raw = query.get(`additional-fields[${type}]`);
  if (raw === null || raw === '') return null;
  return new Set(raw.split(',').map((s) => s.trim()).filter(Boolean));
}

const PREDICTIVE_NULLS = {
  historic_clv: null,
  predicted_clv: null,
  total_clv: null,
  historic_number_of_orders: null,
  predicted_number_of_orders: null,
  average_days_between_orders: null,
  average_order_value: null,
  churn_probability: null,
  expected_date_of_next_order: null,
  ranked_channel_affinity: null,
};

/**
 * The extra profile attributes asked for by `additional-fields[profile]` (`subscriptions`, `predictive_analytics`,
 * the latter always null: no predictions are modelled), or undefined when none. Unknown names → 400.
 */
export function profileExtras(query: URLSearchParams): ((p: ProfileRecord) => Record<string, unknown>) | undefined {
  const wanted = additionalFields(query, 'profile');
  if (!wanted) return undefined;
  for (const f of wanted) {
    if (f !== 'subscriptions' && f !== 'predictive_analytics') {
      throw new ApiError(400, invalidParam(`'${f}' is not a valid additional field for 'profile'.`, 'additional-fields[profile]'));
    }
  }
  return (p) => {
    const out: Record<string, unknown> = {};
    if (wanted.has('subscriptions')) out.subscriptions = subscriptionsAttribute(p);
    if (wanted.has('predictive_analytics')) out.predictive_analytics = { ...PREDICTIVE_NULLS };
    return out;
  };
}
