import { describe, expect, it } from 'vitest';
import { Transform } from '../../../src/config/pipeline.js';
import type { TransformConfig } from '../../../src/config/schema.js';
import { createTransformer } from '../../../src/transform/registry.js';
import { rec, runAll } from './helpers.js';

const config = (transform: unknown): TransformConfig => Transform.parse(transform);
const now = () => new Date('2025-01-01T00:00:00Z');

describe('subscription transform', () => {
  it('email + sms with historical import, list and custom source', () => {
    const t = createTransformer(
      config({
        type: 'subscription',
        profile: { email: 'email', phone_number: { column: 'phone', region: 'US' } },
        channels: { email: {}, sms: { transactional: true } },
        consented_at: { column: 'opted_in', type: 'datetime', format: 'iso', zone: 'UTC' },
        historical_import: true,
        list: 'Y6nRLr',
        custom_source: 'crm-import',
      }),
      { now },
    );
    const out = runAll(t, [rec(0, { email: 'A@x.com', phone: '212-555-0123', opted_in: '2023-05-01T00:00:00' })]);
    expect(out.rejects).toEqual([]);
    const consent = { consent: 'SUBSCRIBED', consented_at: '2023-05-01T00:00:00Z' };
    expect(out.items).toEqual([
      {
        kind: 'subscription',
        payload: {
          profile: {
            email: 'a@x.com',
            phone_number: '+12125550123',
            subscriptions: { email: { marketing: consent }, sms: { marketing: consent, transactional: consent } },
          },
          historicalImport: true,
          listId: 'Y6nRLr',
          customSource: 'crm-import',
          consentedAt: '2023-05-01T00:00:00Z',
          checkOptOuts: true,
        },
        first: rec(0, {}).pos,
        last: rec(0, {}).pos,
        row: { email: 'A@x.com', phone: '212-555-0123', opted_in: '2023-05-01T00:00:00' },
      },
    ]);
  });

  it('without historical import consented_at is not sent, but kept for the consent guard', () => {
    const t = createTransformer(
      config({ type: 'subscription', profile: { email: 'email' }, channels: { email: {} }, consented_at: { column: 'at', type: 'datetime', format: 'iso', zone: 'UTC' } }),
      { now },
    );
    const out = t.push(rec(0, { email: 'a@x.com', at: '2023-01-01T00:00:00' }));
    expect(out.items[0].payload).toEqual({
      profile: { email: 'a@x.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
      historicalImport: false,
      consentedAt: '2023-01-01T00:00:00Z',
      checkOptOuts: true,
    });
  });

  it('unsafe_resubscribe_opted_out: true turns the consent guard off', () => {
    const t = createTransformer(config({ type: 'subscription', profile: { email: 'email' }, channels: { email: {} }, unsafe_resubscribe_opted_out: true }), { now });
    expect(t.push(rec(0, { email: 'a@x.com' })).items[0].payload).not.toHaveProperty('checkOptOuts');
  });

  it('sms_regions: the SMS consent of a phone number of another region is rejected (SMS_REGION_UNSUPPORTED), the email consent of the row subscribed; the default is every Klaviyo SMS region', () => {
    const us = createTransformer(
      config({ type: 'subscription', profile: { email: 'email', phone_number: 'phone' }, channels: { email: {}, sms: {} }, sms_regions: ['US'] }),
      { now },
    );
    const out = runAll(us, [
      rec(0, { email: 'a@x.com', phone: '+14155550100' }),
      rec(1, { email: 'b@x.com', phone: '+447400123456' }),
      rec(2, { email: 'c@x.com', phone: '+17875550100' }), // Puerto Rico: not one of the 50 states
      rec(3, { email: 'd@x.com', phone: '' }), // no phone: the email channel alone
    ]);
    expect(out.items.map((i) => i.first.seq)).toEqual([0, 1, 2, 3]);
    // rows 1 and 2: their email consent only, without the phone number
    expect(out.items[1]!.payload).toEqual({
      profile: { email: 'b@x.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
      historicalImport: false,
      checkOptOuts: true,
    });
    expect(out.items[0]!.payload).toMatchObject({ profile: { phone_number: '+14155550100', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } } });
    expect(out.rejects.map((r) => [r.seq, r.code, r.field])).toEqual([
      [1, 'SMS_REGION_UNSUPPORTED', 'profile.phone_number'],
      [2, 'SMS_REGION_UNSUPPORTED', 'profile.phone_number'],
    ]);
    expect(out.rejects[0]!.message).toContain('GB is not among sms_regions (US)');
    expect(out.rejects[0]!.message).toContain("only the SMS consent is rejected: the row's email consent is subscribed");
    // no email: nothing left to subscribe, the row is rejected as a whole (no item)
    const noEmail = us.push(rec(4, { email: '', phone: '+447400123456' }));
    expect(noEmail.items).toEqual([]);
    expect(noEmail.rejects.map((r) => [r.code, r.message.includes('only the SMS consent')])).toEqual([['SMS_REGION_UNSUPPORTED', false]]);
    const byDefault = createTransformer(config({ type: 'subscription', profile: { phone_number: 'phone' }, channels: { sms: {} } }), { now });
    const d = runAll(byDefault, [rec(0, { phone: '+447400123456' }), rec(1, { phone: '+4915123456789' }), rec(2, { phone: '+819012345678' })]);
    expect(d.items.map((i) => i.first.seq)).toEqual([0, 1]);
    expect(d.rejects.map((r) => [r.seq, r.code])).toEqual([[2, 'SMS_REGION_UNSUPPORTED']]);
    // an email-only transform ignores the phone's region
    const email = createTransformer(config({ type: 'subscription', profile: { email: 'email', phone_number: 'phone' }, channels: { email: {} }, sms_regions: ['US'] }), { now });
    expect(email.push(rec(0, { email: 'a@x.com', phone: '+447400123456' })).rejects).toEqual([]);
  });

  it('sms requires a phone number (MISSING_IDENTIFIER); email+sms subscribes the channels it can', () => {
    const smsOnly = createTransformer(
      config({ type: 'subscription', profile: { email: 'email', phone_number: 'phone' }, channels: { sms: {} } }),
      { now },
    );
    expect(smsOnly.push(rec(0, { email: 'a@x.com', phone: '' })).rejects).toMatchObject([
      { code: 'MISSING_IDENTIFIER', field: 'profile.phone_number', seq: 0 },
    ]);
    const both = createTransformer(
      config({ type: 'subscription', profile: { email: 'email', phone_number: 'phone' }, channels: { email: {}, sms: {} } }),
      { now },
    );
    const out = both.push(rec(0, { email: 'a@x.com', phone: '' }));
    expect(out.items[0].payload).toMatchObject({ profile: { subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } });
    expect((out.items[0].payload as { profile: { subscriptions: object } }).profile.subscriptions).not.toHaveProperty('sms');
  });

  it('historical import needs a past consented_at', () => {
    const t = createTransformer(
      config({
        type: 'subscription',
        profile: { email: 'email' },
        channels: { email: {} },
        consented_at: { column: 'at', type: 'datetime', format: 'iso', zone: 'UTC' },
        historical_import: true,
      }),
      { now },
    );
    const out = runAll(t, [
      rec(0, { email: 'a@x.com', at: '2026-01-01T00:00:00' }),
      rec(1, { email: 'b@x.com', at: '' }),
      rec(2, { email: 'c@x.com', at: '2024-12-31T23:59:59' }),
    ]);
    expect(out.rejects.map((r) => [r.seq, r.code, r.field])).toEqual([
      [0, 'INVALID_DATE', 'consented_at'],
      [1, 'MISSING_REQUIRED', 'consented_at'],
    ]);
    expect(out.items).toHaveLength(1);
  });

  it('when false → skipped (no item, no reject); invalid boolean → reject; phone validated', () => {
    const t = createTransformer(
      config({
        type: 'subscription',
        profile: { email: 'email', phone_number: 'phone' },
        channels: { email: {} },
        when: 'Accepts Marketing',
      }),
      { now },
    );
    const out = runAll(t, [
      rec(0, { email: 'a@x.com', 'Accepts Marketing': 'yes' }),
      rec(1, { email: 'b@x.com', 'Accepts Marketing': 'no' }),
      rec(2, { email: 'c@x.com', 'Accepts Marketing': '' }),
      rec(3, { email: 'd@x.com', 'Accepts Marketing': 'perhaps' }),
      rec(4, { email: 'e@x.com', phone: '212-555-0123', 'Accepts Marketing': 'y' }),
      rec(5, { email: 'f@x.com', 'Accepts Marketing': 'y' }, { error: { code: 'CSV_UNCLOSED_QUOTE', message: 'quote' } }),
    ]);
    expect(out.items.map((i) => i.first.seq)).toEqual([0]);
    expect(out.skipped).toBe(2);
    expect(out.rejects.map((r) => [r.seq, r.code, r.stage])).toEqual([
      [3, 'INVALID_BOOLEAN', 'transform'],
      [4, 'INVALID_PHONE', 'transform'],
      [5, 'CSV_UNCLOSED_QUOTE', 'extract'],
    ]);
  });
});
