import { describe, expect, it } from 'vitest';
import type { SubscriptionItem, SubscriptionPayload } from '../../../src/core/record.js';
import { instantMs, optOutReason, plannedLookups } from '../../../src/load/consent-guard.js';

const pos = { seq: 0, source: 'consent.csv', line: 2 };

function item(payload: Partial<SubscriptionPayload> & { profile: SubscriptionPayload['profile'] }): SubscriptionItem {
  return { kind: 'subscription', payload: { checkOptOuts: true, ...payload }, first: pos, last: pos };
}

const emailItem = (consentedAt?: string, listId?: string) =>
  item({ profile: { email: 'a@x.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }, ...(consentedAt ? { consentedAt } : {}), ...(listId ? { listId } : {}) });

const profile = (marketing: Record<string, unknown>, sms?: Record<string, unknown>) => ({
  id: 'P1',
  attributes: { email: 'a@x.com', subscriptions: { email: { marketing: { suppression: [], list_suppressions: [], ...marketing } }, ...(sms ? { sms } : {}) } },
});

describe('optOutReason', () => {
  it('no profile, or a profile that never opted out: subscribe', () => {
    expect(optOutReason(emailItem(), undefined, undefined)).toBeUndefined();
    expect(optOutReason(emailItem(), profile({ consent: 'NEVER_SUBSCRIBED' }), undefined)).toBeUndefined();
  });

  it('a suppression (any reason) or an unsubscribe newer than consented_at, or any without one: held back', () => {
    const spam = profile({ consent: 'SUBSCRIBED', suppression: [{ reason: 'SPAM_COMPLAINT', timestamp: '2024-01-01T00:00:00.123456+00:00' }] });
    expect(optOutReason(emailItem('2023-06-01T00:00:00Z'), spam, undefined)).toMatch(/email suppressed \(SPAM_COMPLAINT\) at 2024-01-01T00:00:00.123Z\) after the row's consented_at 2023-06-01/);
    expect(optOutReason(emailItem('2024-06-01T00:00:00Z'), spam, undefined)).toBeUndefined();
    expect(optOutReason(emailItem(), spam, undefined)).toMatch(/no consented_at/);
    const unsub = profile({ consent: 'UNSUBSCRIBED', consent_timestamp: '2024-01-01T00:00:00+00:00' });
    expect(optOutReason(emailItem('2023-12-31T23:59:59Z'), unsub, undefined)).toMatch(/email marketing unsubscribed/);
    expect(optOutReason(emailItem('2024-01-01T00:00:00Z'), unsub, undefined)).toBeUndefined(); // not newer
  });

  it('a list suppression counts only when subscribing into that list', () => {
    const p = profile({ consent: 'SUBSCRIBED', list_suppressions: [{ list_id: 'L1', reason: 'USER_SUPPRESSED', timestamp: '2024-01-01T00:00:00+00:00' }] });
    expect(optOutReason(emailItem(undefined, 'L1'), p, undefined)).toMatch(/unsubscribed from list L1/);
    expect(optOutReason(emailItem(undefined, 'L2'), p, undefined)).toBeUndefined();
    expect(optOutReason(emailItem(), p, undefined)).toBeUndefined();
  });

  it('sms: the profile holding the phone number; transactional only when subscribed', () => {
    const sms = item({ profile: { phone_number: '+14155550100', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } } });
    const byPhone = profile({}, { marketing: { consent: 'SUBSCRIBED' }, transactional: { consent: 'UNSUBSCRIBED', consent_timestamp: '2024-01-01T00:00:00+00:00' } });
    expect(optOutReason(sms, undefined, byPhone)).toBeUndefined();
    const both = item({ profile: { phone_number: '+14155550100', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' }, transactional: { consent: 'SUBSCRIBED' } } } } });
    expect(optOutReason(both, undefined, byPhone)).toMatch(/sms transactional unsubscribed/);
    // the email's profile does not speak for the sms channel
    expect(optOutReason(sms, profile({ consent: 'UNSUBSCRIBED' }), undefined)).toBeUndefined();
  });

  it('plannedLookups: one request per 100 distinct emails / phones of checked items', () => {
    const many = Array.from({ length: 150 }, (_, i) => item({ profile: { email: `p${i}@x.com`, phone_number: '+14155550100', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } }, sms: { marketing: { consent: 'SUBSCRIBED' } } } } }));
    expect(plannedLookups(many)).toBe(3);
    expect(plannedLookups(many.map((i) => ({ ...i, payload: { ...i.payload, checkOptOuts: false } })))).toBe(0);
  });

  it('instantMs reads Klaviyo microsecond timestamps', () => {
    expect(instantMs('2023-02-21T20:07:38.123456+00:00')).toBe(Date.UTC(2023, 1, 21, 20, 7, 38, 123));
    expect(instantMs('')).toBeUndefined();
    expect(instantMs(null)).toBeUndefined();
  });
});
