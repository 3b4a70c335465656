import { describe, expect, it } from 'vitest';
import { Transform } from '../../../src/config/pipeline.js';
import type { TransformConfig } from '../../../src/config/schema.js';
import { createTransformer } from '../../../src/transform/registry.js';
import { rec, runAll } from './helpers.js';

const config = (transform: unknown): TransformConfig => Transform.parse(transform);

const profileConfig = config({
  type: 'profile',
  profile: {
    email: 'Email',
    phone_number: { column: 'Phone', region: 'US' },
    external_id: 'Customer ID',
    first_name: 'First Name',
    last_name: 'Last Name',
    location: { city: 'City', country: { column: 'Country', uppercase: true }, latitude: 'Lat' },
    properties: {
      tier: 'Tier',
      lifetime_value: { column: 'LTV', type: 'number' },
      vip: { column: 'VIP', type: 'boolean' },
      birthday: { column: 'Birthday', type: 'date', format: 'MM/dd/yyyy' },
    },
  },
});

describe('profile transform', () => {
  it('builds Klaviyo profile attributes, omitting empty values', () => {
    const t = createTransformer(profileConfig);
    const row = {
      Email: ' Ada@Example.com ',
      Phone: '(212) 555-0123',
      'Customer ID': 'c-1',
      'First Name': 'Ada',
      'Last Name': '',
      City: 'London',
      Country: 'gb',
      Lat: '51.5',
      Tier: 'gold',
      LTV: '1234.50',
      VIP: 'yes',
      Birthday: '12/10/1815',
    };
    const out = t.push(rec(0, row));
    expect(out.rejects).toEqual([]);
    expect(out.items).toHaveLength(1);
    const item = out.items[0];
    expect(item.kind).toBe('profile');
    expect(item.first).toEqual({ seq: 0, source: 'in.csv', line: 2, offset: 0 });
    expect(item.last).toBe(item.first);
    expect(item.payload).toEqual({
      email: 'ada@example.com',
      phone_number: '+12125550123',
      external_id: 'c-1',
      first_name: 'Ada',
      location: { city: 'London', country: 'GB', latitude: 51.5 },
      properties: { tier: 'gold', lifetime_value: 1234.5, vip: true, birthday: '1815-12-10' },
    });
  });

  it('omits location and properties objects when all their values are empty', () => {
    const t = createTransformer(profileConfig);
    const out = t.push(rec(0, { Email: 'a@x.com', City: '', Tier: '' }));
    expect(out.items[0].payload).toEqual({ email: 'a@x.com' });
  });

  it('a row without identifier → MISSING_IDENTIFIER', () => {
    const t = createTransformer(profileConfig);
    const out = t.push(rec(3, { Email: '', Phone: '', 'Customer ID': ' ', 'First Name': 'X' }));
    expect(out.items).toEqual([]);
    expect(out.rejects).toHaveLength(1);
    expect(out.rejects[0]).toMatchObject({ stage: 'transform', code: 'MISSING_IDENTIFIER', seq: 3, line: 5, offset: 300 });
  });

  it('one reject per row: code and field of the first bad field, message listing every bad field', () => {
    const t = createTransformer(profileConfig);
    const row = { Email: 'not-an-email', Phone: '555', LTV: '1,234', Birthday: '1815-12-10' };
    const out = t.push(rec(1, row, { raw: 'not-an-email,555,...' }));
    expect(out.items).toEqual([]);
    expect(out.rejects).toHaveLength(1);
    const reject = out.rejects[0];
    expect(reject).toMatchObject({
      stage: 'transform',
      code: 'INVALID_EMAIL',
      field: 'email',
      source: 'in.csv',
      line: 3,
      seq: 1,
      row,
      raw: 'not-an-email,555,...',
    });
    for (const part of ['INVALID_EMAIL', 'INVALID_PHONE', 'INVALID_NUMBER', 'INVALID_DATE', 'properties.lifetime_value']) {
      expect(reject.message).toContain(part);
    }
  });

  it('typed values from PostgreSQL / NDJSON sources', () => {
    const t = createTransformer(profileConfig);
    const out = t.push(rec(0, { Email: 'a@x.com', LTV: 99.5, VIP: false, Lat: 51, 'Customer ID': 12345 }));
    expect(out.items[0].payload).toEqual({
      email: 'a@x.com',
      external_id: '12345',
      location: { latitude: 51 },
      properties: { lifetime_value: 99.5, vip: false },
    });
  });

  it('extract errors become extract-stage rejects with the right line', () => {
    const t = createTransformer(profileConfig);
    const out = runAll(t, [
      rec(0, { Email: 'a@x.com' }),
      rec(1, { Email: 'b@x.com' }, { error: { code: 'CSV_RAGGED_ROW', message: 'expected 12 fields, got 3' }, raw: 'a,b,c' }),
    ]);
    expect(out.items).toHaveLength(1);
    expect(out.rejects).toEqual([
      {
        stage: 'extract',
        code: 'CSV_RAGGED_ROW',
        message: 'expected 12 fields, got 3',
        source: 'in.csv',
        line: 3,
        offset: 100,
        seq: 1,
        row: { Email: 'b@x.com' },
        raw: 'a,b,c',
      },
    ]);
  });

  it('held() is always undefined and flush() is empty', () => {
    const t = createTransformer(profileConfig);
    t.push(rec(0, { Email: 'a@x.com' }));
    expect(t.held()).toBeUndefined();
    expect(t.flush()).toEqual({ items: [], rejects: [] });
  });

  it('an export config builds the registered export transform (rows for an export file, not profiles to load)', () => {
    const t = createTransformer(config({ type: 'export', columns: { email: 'email' } }));
    const out = t.push(rec(0, { email: 'a@x.com', phone_number: '+15555550100' }));
    expect(out.items.map((i) => i.payload)).toEqual([{ email: 'a@x.com' }]);
    expect(() => createTransformer({ type: 'nope' })).toThrow(/Unknown transform type "nope"/);
  });

  it('subscribe: builds the consent as the subscription transform does: the consent guard on, consented_at kept for it, sms_regions checked', () => {
    const subscribe = (extra: Record<string, unknown> = {}) =>
      createTransformer(
        config({
          type: 'profile',
          profile: { email: 'email', phone_number: 'phone' },
          subscribe: { channels: { email: {}, sms: {} }, consented_at: { column: 'at', type: 'datetime', format: 'iso', zone: 'UTC' }, sms_regions: ['US'], ...extra },
        }),
        { now: () => new Date('2025-01-01T00:00:00Z') },
      );
    const t = subscribe();
    const us = t.push(rec(0, { email: 'a@x.com', phone: '+14155550100', at: '2023-01-01T00:00:00' }));
    expect(us.rejects).toEqual([]);
    expect(us.items.map((i) => i.kind)).toEqual(['profile', 'subscription']);
    expect(us.items[1]!.payload).toEqual({
      profile: {
        email: 'a@x.com',
        phone_number: '+14155550100',
        subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } }, sms: { marketing: { consent: 'SUBSCRIBED' } } },
      },
      historicalImport: false,
      consentedAt: '2023-01-01T00:00:00Z',
      checkOptOuts: true,
    });
    // a GB number: the profile and the email consent go on, the SMS consent is rejected with the row
    const gb = t.push(rec(1, { email: 'b@x.com', phone: '+447400123456', at: '' }));
    expect(gb.items.map((i) => i.kind)).toEqual(['profile', 'subscription']);
    expect(gb.items[0]!.payload).toEqual({ email: 'b@x.com', phone_number: '+447400123456' });
    expect(gb.items[1]!.payload).toEqual({ profile: { email: 'b@x.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }, historicalImport: false, checkOptOuts: true });
    expect(gb.rejects.map((r) => [r.seq, r.stage, r.code, r.field])).toEqual([[1, 'transform', 'SMS_REGION_UNSUPPORTED', 'phone_number']]);
    expect(gb.rejects[0]!.message).toContain('its profile is imported and its email consent subscribed');
    // a GB number and no email: the profile alone
    const gbOnly = t.push(rec(2, { email: '', phone: '+447400123456', at: '' }));
    expect(gbOnly.items.map((i) => i.kind)).toEqual(['profile']);
    expect(gbOnly.rejects.map((r) => r.code)).toEqual(['SMS_REGION_UNSUPPORTED']);
    expect(gbOnly.rejects[0]!.message).toContain('only the SMS consent is rejected: its profile is imported');
    // the guard off only when asked for, by the same loudly named option
    const unsafe = subscribe({ unsafe_resubscribe_opted_out: true }).push(rec(3, { email: 'c@x.com', phone: '', at: '' }));
    expect(unsafe.items[1]!.payload).not.toHaveProperty('checkOptOuts');
  });

  it('throughput of a simple profile mapping (printed, not asserted)', () => {
    const t = createTransformer(
      config({
        type: 'profile',
        profile: {
          email: 'email',
          external_id: 'id',
          first_name: 'first',
          last_name: 'last',
          properties: { tier: 'tier', orders: { column: 'orders', type: 'integer' } },
        },
      }),
    );
    const n = 300_000;
    const records = Array.from({ length: 1000 }, (_, i) =>
      rec(i, { email: `User${i}@Example.com`, id: `c-${i}`, first: 'Ada', last: 'Lovelace', tier: 'gold', orders: String(i) }),
    );
    let items = 0;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) items += t.push(records[i % 1000]).items.length;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`[bench] profile transform: ${Math.round(n / seconds).toLocaleString('en-US')} rows/s (${n} rows)`);
    expect(items).toBe(n);
  });
});
