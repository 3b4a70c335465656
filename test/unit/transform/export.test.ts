import { describe, expect, it } from 'vitest';
import { ExportTransform } from '../../../src/config/schema.js';
import { createExportMapper } from '../../../src/transform/export.js';
import { rec } from './helpers.js';

describe('export mapper', () => {
  const mapper = createExportMapper(
    ExportTransform.parse({
      type: 'export',
      columns: {
        Email: 'email',
        'Klaviyo ID': 'id',
        Tier: 'properties.tier',
        City: 'location.city',
        Joined: { column: 'joined_group_at', type: 'date', format: 'iso' },
        'Email consent': 'subscriptions.email.marketing.consent',
        Source: { value: 'klaviyo' },
      },
    }),
  );

  it('maps a flattened profile to an output row, every column present in order', () => {
    const out = mapper(
      rec(0, {
        id: '01HX',
        email: 'a@x.com',
        'properties.tier': 'gold',
        'location.city': '',
        joined_group_at: '2024-03-05T23:30:00+00:00',
      }),
    );
    expect(out.row).toEqual({
      Email: 'a@x.com',
      'Klaviyo ID': '01HX',
      Tier: 'gold',
      City: null,
      Joined: '2024-03-05',
      'Email consent': null,
      Source: 'klaviyo',
    });
    expect(Object.keys(out.row ?? {})).toEqual(['Email', 'Klaviyo ID', 'Tier', 'City', 'Joined', 'Email consent', 'Source']);
  });

  it('reads nested profile objects too', () => {
    const out = mapper(
      rec(0, { id: '01HX', properties: { tier: 'silver' }, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }),
    );
    expect(out.row).toMatchObject({ Tier: 'silver', 'Email consent': 'SUBSCRIBED' });
  });

  it('a failing field or an extract error → reject', () => {
    const bad = mapper(rec(4, { id: '01HX', joined_group_at: 'yesterday' }));
    expect(bad.row).toBeUndefined();
    expect(bad.reject).toMatchObject({ stage: 'transform', code: 'INVALID_DATE', field: 'Joined', seq: 4 });
    const broken = mapper(rec(5, {}, { error: { code: 'NDJSON_PARSE_ERROR', message: 'bad json' } }));
    expect(broken.reject).toMatchObject({ stage: 'extract', code: 'NDJSON_PARSE_ERROR', seq: 5, line: 7 });
  });
});

describe('export mapper: a column naming a flattened object', () => {
  const mapper = createExportMapper(
    ExportTransform.parse({ type: 'export', columns: { id: 'id', props: 'event_properties', city: 'location.city', loc: { column: 'location', type: 'json' }, none: 'missing' } }),
  );

  it('gets the object back, nested at every dot, own keys only', () => {
    const row = {
      id: 'e1',
      'event_properties.Items': [{ SKU: 'X' }],
      'event_properties.Shipping.Method': 'post',
      'event_properties.__proto__': 'not a prototype',
      'event_properties.Empty': undefined,
      'location.city': 'Lyon',
    };
    const out = mapper(rec(0, row));
    expect(out.reject).toBeUndefined();
    const props = out.row!.props as Record<string, unknown>;
    expect(JSON.stringify(props)).toBe('{"Items":[{"SKU":"X"}],"Shipping":{"Method":"post"},"__proto__":"not a prototype","Empty":{}}');
    expect(Object.getPrototypeOf(props)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(out.row!.city).toBe('Lyon');
    expect(out.row!.loc).toEqual({ city: 'Lyon' });
    expect(out.row!.none).toBeNull();
  });
});
