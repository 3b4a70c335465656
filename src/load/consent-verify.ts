/**
 * The read-back of a subscription load (`destination.verify`). Klaviyo answers a subscribe job with 202 and applies it
 * later (there is no status endpoint), so a run can only say what Klaviyo accepted. With `verify: {sample: N}`, the
 * loader keeps a uniform sample of N accepted profiles and, after the last batch, reads them back
 * (`GET /api/profiles` by email / phone, `additional-fields[profile]=subscriptions`) until all hold the consent they
 * were sent or `timeoutMs` has passed, polling at growing intervals (1 s, doubling, at most 10 s).
 */
import { sleep, systemClock, type Clock } from '../core/clock.js';
import type { SubscriptionItem, SubscriptionPayload } from '../core/record.js';
import type { VerifyResult } from '../core/stats.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { lookupProfiles, type FoundProfile } from '../klaviyo/profile-lookup.js';

export interface VerifyOptions {
  sample: number;
  /** @default 60000 */
  timeoutMs: number;
}

const FIRST_POLL_MS = 1000;
const MAX_POLL_MS = 10_000;

type Wanted = Pick<SubscriptionPayload['profile'], 'email' | 'phone_number' | 'subscriptions'>;

/** A uniform sample of the accepted items (reservoir sampling): at most `size` profiles, each equally likely. */
export class ConsentSample {
  readonly #size: number;
  readonly #kept: Wanted[] = [];
  #seen = 0;

  constructor(size: number) {
    this.#size = size;
  }

  add(items: readonly SubscriptionItem[]): void {
    for (const item of items) {
      const { email, phone_number, subscriptions } = item.payload.profile;
      const wanted: Wanted = { subscriptions, ...(email === undefined ? {} : { email }), ...(phone_number === undefined ? {} : { phone_number }) };
      this.#seen++;
      if (this.#kept.length < this.#size) this.#kept.push(wanted);
      else {
        const j = Math.floor(Math.random() * this.#seen);
        if (j < this.#size) this.#kept[j] = wanted;
      }
    }
  }

  get profiles(): readonly Wanted[] {
    return this.#kept;
  }
}

function consentOf(profile: FoundProfile | undefined, channel: string, kind: string): unknown {
  const subs = profile?.attributes.subscriptions as Record<string, Record<string, { consent?: unknown } | undefined> | undefined> | undefined;
  return subs?.[channel]?.[kind]?.consent;
}

/** Whether the profiles found hold every consent `wanted` was sent. */
function holds(wanted: Wanted, byEmail: Map<string, FoundProfile>, byPhone: Map<string, FoundProfile>): boolean {
  const { email, phone_number: phone, subscriptions } = wanted;
  if (subscriptions.email && consentOf(email === undefined ? undefined : byEmail.get(email.toLowerCase()), 'email', 'marketing') !== 'SUBSCRIBED') return false;
  const sms = subscriptions.sms;
  if (sms) {
    const p = phone === undefined ? undefined : byPhone.get(phone);
    if (sms.marketing && consentOf(p, 'sms', 'marketing') !== 'SUBSCRIBED') return false;
    if (sms.transactional && consentOf(p, 'sms', 'transactional') !== 'SUBSCRIBED') return false;
  }
  return true;
}

/** Read the sample back until every profile holds its consent, or the time is up. */
export async function verifyConsent(
  client: KlaviyoClient,
  sample: readonly Wanted[],
  options: VerifyOptions,
  signal?: AbortSignal,
  clock: Clock = systemClock,
): Promise<VerifyResult> {
  const start = clock.now();
  const result: VerifyResult = { sampled: sample.length, holding: 0, notHolding: sample.length, requests: 0, waitedMs: 0, complete: sample.length === 0 };
  let pending = [...sample];
  let wait = FIRST_POLL_MS;
  while (pending.length > 0) {
    const found = await lookupProfiles(
      client,
      { emails: pending.flatMap((w) => (w.email === undefined ? [] : [w.email])), phones: pending.flatMap((w) => (w.phone_number === undefined ? [] : [w.phone_number])) },
      { additionalFields: ['subscriptions'], fields: ['email', 'phone_number', 'subscriptions'] },
    );
    result.requests += found.requests;
    pending = pending.filter((w) => !holds(w, found.byEmail, found.byPhone));
    result.holding = sample.length - pending.length;
    result.notHolding = pending.length;
    if (pending.length === 0) {
      result.complete = true;
      break;
    }
    const left = start + options.timeoutMs - clock.now();
    if (left <= 0) break;
    try {
      await sleep(clock, Math.min(wait, left), signal);
    } catch {
      break; // interrupted: report what was found so far
    }
    wait = Math.min(wait * 2, MAX_POLL_MS);
  }
  result.waitedMs = clock.now() - start;
  return result;
}
