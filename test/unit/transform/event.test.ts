import { describe, expect, it } from 'vitest';
import { Transform } from '../../../src/config/pipeline.js';
import type { TransformConfig } from '../../../src/config/schema.js';
import { createTransformer } from '../../../src/transform/registry.js';
import { rec, runAll } from './helpers.js';

const config = (transform: unknown): TransformConfig => Transform.parse(transform);
const now = () => new Date('2025-01-01T00:00:00Z');

type Row = Record<string, string>;
const blank = { Email: '', 'Created at': '', Currency: '', Total: '', 'Financial Status': '' };

/** Shopify orders export: one row per line item, order-level columns only on the first row of an order. */
const shopify: Row[] = [
  { Name: '#1001', Email: 'ada@example.com', 'Created at': '2024-03-05 14:22:10 -0500', Currency: 'USD', Total: '25.00', 'Financial Status': 'paid', 'Lineitem name': 'Mug', 'Lineitem sku': 'MUG-1', 'Lineitem quantity': '1', 'Lineitem price': '25.00' },
  { Name: '#1002', Email: 'bob@example.com', 'Created at': '2024-03-06 09:00:00 +0100', Currency: 'EUR', Total: '60.30', 'Financial Status': 'paid', 'Lineitem name': 'Tee', 'Lineitem sku': 'TEE-M', 'Lineitem quantity': '2', 'Lineitem price': '20.10' },
  { Name: '#1002', ...blank, 'Lineitem name': 'Cap', 'Lineitem sku': 'CAP-1', 'Lineitem quantity': '1', 'Lineitem price': '20.10' },
  { Name: '#1002', ...blank, 'Lineitem name': 'Pin', 'Lineitem sku': 'PIN-1', 'Lineitem quantity': '1', 'Lineitem price': '20.10' },
  { Name: '#1003', Email: 'cy@example.com', 'Created at': '2024-03-07 23:59:59 +0000', Currency: 'GBP', Total: '15.50', 'Financial Status': 'pending', 'Lineitem name': 'Sock', 'Lineitem sku': 'SOCK-1', 'Lineitem quantity': '3', 'Lineitem price': '5.00' },
  { Name: '#1003', ...blank, 'Lineitem name': 'Lace', 'Lineitem sku': 'LACE-1', 'Lineitem quantity': '1', 'Lineitem price': '0.50' },
];

const shopifyConfig = (over: Record<string, unknown> = {}, group: Record<string, unknown> = {}) =>
  config({
    type: 'event',
    metric: 'Placed Order',
    profile: { email: 'Email' },
    unique_id: { template: 'order-{{Name}}' },
    time: { column: 'Created at', type: 'datetime', format: 'yyyy-MM-dd HH:mm:ss ZZZ' },
    value: { column: 'Lineitem price', type: 'number' },
    value_currency: 'Currency',
    properties: { OrderId: 'Name', FinancialStatus: 'Financial Status' },
    backfill: true,
    group: {
      by: 'Name',
      items: {
        ProductName: 'Lineitem name',
        SKU: 'Lineitem sku',
        Quantity: { column: 'Lineitem quantity', type: 'integer' },
        ItemPrice: { column: 'Lineitem price', type: 'number' },
      },
      itemEvents: {
        metric: 'Ordered Product',
        unique_id: { template: '{{Name}}-{{Lineitem sku}}' },
        value: { column: 'Lineitem price', type: 'number' },
        properties: { OrderId: 'Name' },
      },
      ...group,
    },
    ...over,
  });

describe('event transform: grouping', () => {
  it('groups a Shopify-style export into one event per order, with items, summed value and per-item events', () => {
    const t = createTransformer(shopifyConfig(), { now });
    const out = runAll(t, shopify.map((row, i) => rec(i, row)));
    expect(out.rejects).toEqual([]);
    const placed = out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Placed Order');
    const products = out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Ordered Product');
    expect(placed).toHaveLength(3);
    expect(products).toHaveLength(6);

    expect(placed[1].payload).toEqual({
      profile: { email: 'bob@example.com' },
      event: {
        metric: 'Placed Order',
        properties: {
          OrderId: '#1002',
          FinancialStatus: 'paid',
          Items: [
            { ProductName: 'Tee', SKU: 'TEE-M', Quantity: 2, ItemPrice: 20.1 },
            { ProductName: 'Cap', SKU: 'CAP-1', Quantity: 1, ItemPrice: 20.1 },
            { ProductName: 'Pin', SKU: 'PIN-1', Quantity: 1, ItemPrice: 20.1 },
          ],
        },
        time: '2024-03-06T08:00:00Z',
        value: 60.3,
        value_currency: 'EUR',
        unique_id: 'order-#1002',
        backfill: true,
      },
    });
    expect(placed.map((p) => (p.payload.event as { value: number }).value)).toEqual([25, 60.3, 5.5]);
    expect(placed.map((p) => [p.first.seq, p.last.seq])).toEqual([[0, 0], [1, 3], [4, 5]]);
    expect(placed[2].first.line).toBe(6);
    expect(placed[2].last.line).toBe(7);

    expect(products.map((p) => (p.payload.event as { unique_id: string }).unique_id)).toEqual([
      '#1001-MUG-1',
      '#1002-TEE-M',
      '#1002-CAP-1',
      '#1002-PIN-1',
      '#1003-SOCK-1',
      '#1003-LACE-1',
    ]);
    expect(products[5].payload).toEqual({
      profile: { email: 'cy@example.com' },
      event: {
        metric: 'Ordered Product',
        properties: { ProductName: 'Lace', SKU: 'LACE-1', Quantity: 1, ItemPrice: 0.5, OrderId: '#1003' },
        time: '2024-03-07T23:59:59Z',
        value: 0.5,
        value_currency: 'GBP',
        unique_id: '#1003-LACE-1',
        backfill: true,
      },
    });
    // item events follow their group event and span the whole group
    expect(out.items.map((i) => (i.payload.event as { metric: string }).metric)).toEqual([
      'Placed Order', 'Ordered Product',
      'Placed Order', 'Ordered Product', 'Ordered Product', 'Ordered Product',
      'Placed Order', 'Ordered Product', 'Ordered Product',
    ]);
    expect(products[1].first.seq).toBe(1);
    expect(products[1].last.seq).toBe(3);
  });

  it('emits a group when the key changes, holds the open group, and flush() emits the last', () => {
    const t = createTransformer(shopifyConfig(), { now });
    expect(t.held()).toBeUndefined();
    expect(t.push(rec(0, shopify[0])).items).toEqual([]);
    expect(t.held()).toBe(0);
    const second = t.push(rec(1, shopify[1]));
    expect(second.items).toHaveLength(2); // #1001 + its one item event
    expect(t.held()).toBe(1);
    expect(t.push(rec(2, shopify[2])).items).toEqual([]);
    expect(t.held()).toBe(1);
    const last = t.flush();
    expect(last.items).toHaveLength(3);
    expect(t.held()).toBeUndefined();
    expect(t.flush()).toEqual({ items: [], rejects: [] });
  });

  it('group.value first: takes the first row value (a total repeated on every row)', () => {
    const rows = shopify.map((r, i, all) => ({ ...r, Total: all.find((o) => o.Name === r.Name)?.Total ?? '' }));
    const t = createTransformer(shopifyConfig({ value: { column: 'Total', type: 'number' } }, { value: 'first' }), { now });
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    const placed = out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Placed Order');
    expect(placed.map((p) => (p.payload.event as { value: number }).value)).toEqual([25, 60.3, 15.5]);
  });

  it('group.value sum over a total filled only on the first row equals that total', () => {
    const t = createTransformer(shopifyConfig({ value: { column: 'Total', type: 'number' } }), { now });
    const out = runAll(t, shopify.map((row, i) => rec(i, row)));
    const placed = out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Placed Order');
    expect(placed.map((p) => (p.payload.event as { value: number }).value)).toEqual([25, 60.3, 15.5]);
  });

  it('a bad item field rejects the whole group: every row gets a reject naming the failing row', () => {
    const rows = shopify.map((r) => ({ ...r }));
    rows[2]['Lineitem quantity'] = 'two';
    const t = createTransformer(shopifyConfig(), { now });
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    expect(out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Placed Order')).toHaveLength(2);
    expect(out.rejects.map((r) => [r.seq, r.code, r.stage])).toEqual([
      [1, 'INVALID_INTEGER', 'transform'],
      [2, 'INVALID_INTEGER', 'transform'],
      [3, 'INVALID_INTEGER', 'transform'],
    ]);
    expect(out.rejects[1].field).toBe('group.items.Quantity');
    expect(out.rejects[0].message).toContain('line 4');
    expect(out.rejects[2].message).toContain('line 4');
    expect(out.rejects[0].message).toContain('#1002');
    expect(out.rejects[0].row).toBe(rows[1]);
  });

  it('{{_item}} in itemEvents.unique_id is the line item position; the rows are not touched and their own _item column reads as usual', () => {
    const rows = shopify.map((r, i) => (i === 2 ? { ...r, _item: 'own' } : { ...r }));
    const before = rows.map((r) => JSON.stringify(r));
    const t = createTransformer(
      shopifyConfig({}, {
        items: { SKU: 'Lineitem sku', Col: '_item' },
        itemEvents: { metric: 'Ordered Product', unique_id: { template: '{{Name}}-{{ _item }}' }, properties: { Tmpl: { template: '{{_item}}' } } },
      }),
      { now },
    );
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    expect(out.rejects).toEqual([]);
    const products = out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Ordered Product');
    expect(products.map((p) => (p.payload.event as { unique_id: string }).unique_id)).toEqual([
      '#1001-1', '#1002-1', '#1002-2', '#1002-3', '#1003-1', '#1003-2',
    ]);
    // only the unique_id reads the position: the items and other item event fields read the row's own column
    expect(products[2].payload.event).toMatchObject({ properties: { SKU: 'CAP-1', Col: 'own', Tmpl: 'own' } });
    expect(products[1].payload.event).toMatchObject({ properties: { SKU: 'TEE-M' } });
    expect('Col' in (products[1].payload.event as { properties: object }).properties).toBe(false);
    expect(rows.map((r) => JSON.stringify(r))).toEqual(before);
    expect(rows.filter((r) => Object.hasOwn(r, '_item'))).toHaveLength(1);
  });

  it('a failing header and a failing item on the first row are reported together, header first', () => {
    const rows = shopify.map((r) => ({ ...r }));
    rows[1].Email = 'nope';
    rows[1]['Lineitem quantity'] = 'x';
    const t = createTransformer(shopifyConfig(), { now });
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    expect(out.rejects.map((r) => [r.seq, r.code, r.field])).toEqual([
      [1, 'INVALID_EMAIL', 'profile.email'],
      [2, 'INVALID_EMAIL', 'profile.email'],
      [3, 'INVALID_EMAIL', 'profile.email'],
    ]);
    expect(out.rejects[0].message).toMatch(/^group "#1002" \(3 rows\) rejected: profile\.email: .* \[INVALID_EMAIL\]; group\.items\.Quantity: .* \[INVALID_INTEGER\]$/);
    expect(out.rejects[1].message).toContain('because line 3 failed: profile.email');
    expect(out.items).toHaveLength(2 + 3);
  });

  it('empty order-level columns on later rows are not rejects; a bad first row rejects the group', () => {
    const rows = shopify.map((r) => ({ ...r }));
    rows[4].Email = 'not-an-email';
    const t = createTransformer(shopifyConfig(), { now });
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    expect(out.rejects.map((r) => [r.seq, r.code])).toEqual([
      [4, 'INVALID_EMAIL'],
      [5, 'INVALID_EMAIL'],
    ]);
    expect(out.items).toHaveLength(2 + 4);
  });

  it('an extract error inside a group rejects the group; one elsewhere closes the open group', () => {
    const t = createTransformer(shopifyConfig(), { now });
    const bad = { code: 'CSV_RAGGED_ROW', message: 'expected 10 fields, got 4' };
    const out = runAll(t, [
      rec(0, shopify[0]),
      rec(1, { Name: '', x: '1' }, { error: bad }), // key unreadable: closes #1001, rejected alone
      rec(2, shopify[1]),
      rec(3, { Name: '#1002', Email: 'x' }, { error: bad }),
      rec(4, shopify[3]),
    ]);
    expect(out.items.filter((i) => (i.payload.event as { metric: string }).metric === 'Placed Order')).toHaveLength(1);
    expect(out.rejects.map((r) => [r.seq, r.stage, r.code])).toEqual([
      [1, 'extract', 'CSV_RAGGED_ROW'],
      [2, 'transform', 'CSV_RAGGED_ROW'],
      [3, 'extract', 'CSV_RAGGED_ROW'],
      [4, 'transform', 'CSV_RAGGED_ROW'],
    ]);
    expect(out.rejects[0].line).toBe(3);
    expect(out.rejects[1].message).toContain('line 5');
  });

  it('a row with an empty group key is rejected (MISSING_REQUIRED)', () => {
    const t = createTransformer(shopifyConfig(), { now });
    const out = runAll(t, [rec(0, { ...shopify[0], Name: ' ' })]);
    expect(out.items).toEqual([]);
    expect(out.rejects).toMatchObject([{ code: 'MISSING_REQUIRED', field: 'group.by', seq: 0 }]);
  });

  it('groups by several columns', () => {
    const cfg = config({
      type: 'event',
      metric: 'Placed Order',
      profile: { email: 'email' },
      unique_id: { template: '{{store}}-{{order}}' },
      value: 'price',
      group: { by: ['store', 'order'], items: { sku: 'sku' } },
    });
    const rows = [
      { store: 'a', order: '1', email: 'a@x.com', sku: 's1', price: '1' },
      { store: 'a', order: '1', email: '', sku: 's2', price: '2' },
      { store: 'b', order: '1', email: 'b@x.com', sku: 's3', price: '4' },
    ];
    const out = runAll(createTransformer(cfg, { now }), rows.map((row, i) => rec(i, row)));
    expect(out.items.map((i) => (i.payload.event as { unique_id: string; value: number }).unique_id)).toEqual(['a-1', 'b-1']);
    expect(out.items.map((i) => (i.payload.event as { value: number }).value)).toEqual([3, 4]);
    expect(out.items[0].payload.event).toMatchObject({ properties: { Items: [{ sku: 's1' }, { sku: 's2' }] } });
  });
});

describe('event transform: one event per row', () => {
  const cfg = config({
    type: 'event',
    metric: 'Viewed Product',
    profile: { email: 'email', external_id: 'uid' },
    unique_id: 'event_id',
    time: { column: 'ts', type: 'datetime', format: 'unix' },
    value: 'amount',
    properties: { sku: 'sku' },
  });

  it('builds the payload; properties is always an object', () => {
    const t = createTransformer(cfg, { now });
    const out = runAll(t, [rec(0, { email: 'A@x.com', event_id: 77, ts: 1709666530, amount: '9.99', sku: '' })]);
    expect(out.items).toHaveLength(1);
    expect(out.items[0].payload).toEqual({
      profile: { email: 'a@x.com' },
      event: { metric: 'Viewed Product', properties: {}, time: '2024-03-05T19:22:10Z', value: 9.99, unique_id: '77' },
    });
  });

  it('an empty unique_id is MISSING_REQUIRED; times Klaviyo refuses are INVALID_DATE', () => {
    const t = createTransformer(cfg, { now });
    const out = runAll(t, [
      rec(0, { email: 'a@x.com', event_id: '', ts: '1709666530' }),
      rec(1, { email: 'a@x.com', event_id: 'e1', ts: '100' }),
      rec(2, { email: 'a@x.com', event_id: 'e2', ts: String(Date.parse('2027-01-01T00:00:00Z') / 1000) }),
      rec(3, { uid: 'u', event_id: 'e3', amount: 'ten' }),
    ]);
    expect(out.items).toEqual([]);
    expect(out.rejects.map((r) => [r.seq, r.code, r.field])).toEqual([
      [0, 'MISSING_REQUIRED', 'unique_id'],
      [1, 'INVALID_DATE', 'time'],
      [2, 'INVALID_DATE', 'time'],
      [3, 'INVALID_NUMBER', 'value'],
    ]);
  });

  it('a date-typed time is midnight UTC of that date', () => {
    const t = createTransformer(
      config({ type: 'event', metric: 'M', profile: { email: 'e' }, unique_id: 'id', time: { column: 'd', type: 'date', format: 'iso' } }),
      { now },
    );
    const out = t.push(rec(0, { e: 'a@x.com', id: '1', d: '2024-03-05' }));
    const item = out.items[0];
    expect(item.kind).toBe('event');
    expect(item.kind === 'event' && item.payload.event.time).toBe('2024-03-05T00:00:00Z');
  });

  it('profile identifier missing → MISSING_IDENTIFIER', () => {
    const out = createTransformer(cfg, { now }).push(rec(0, { event_id: 'x' }));
    expect(out.rejects).toMatchObject([{ code: 'MISSING_IDENTIFIER', seq: 0 }]);
  });
});

describe('event transform: throughput', () => {
  it('grouped Shopify-style rows with datetime + item events (printed, not asserted)', () => {
    const t = createTransformer(shopifyConfig(), { now });
    const n = 120_000;
    let events = 0;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const base = shopify[i % shopify.length];
      const round = Math.floor(i / shopify.length);
      events += t.push(rec(i, { ...base, Name: `${base.Name}-${round}` })).items.length;
    }
    events += t.flush().items.length;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(`[bench] event transform (grouped, datetime, item events): ${Math.round(n / seconds).toLocaleString('en-US')} rows/s`);
    expect(events).toBe((n / shopify.length) * 9);
  });
});

describe('event transform: metric from the row, properties_from', () => {
  const exported = (over: Record<string, unknown> = {}) =>
    config({
      type: 'event',
      metric: { column: 'metric' },
      profile: { email: 'email' },
      unique_id: 'unique_id',
      time: 'datetime',
      properties_from: { column: 'properties', type: 'json' },
      properties: { Source: { value: 'export' } },
      ...over,
    });

  it('takes each row\'s metric and spreads a JSON object column into properties (properties: entries win)', () => {
    const t = createTransformer(exported(), { now });
    const rows = [
      { metric: 'Placed Order', email: 'a@example.com', unique_id: 'o-1', datetime: '2024-01-02T03:04:05Z', properties: '{"OrderId":"1","Items":[{"SKU":"X"}],"Source":"shop","$value":9.5,"$event_id":"o-1","$value_currency":"EUR","$backfill":true,"$custom":1}' },
      { metric: 'Viewed Product', email: 'b@example.com', unique_id: 'v-1', datetime: '2024-01-03T03:04:05Z', properties: { ProductName: 'Tee' } },
    ];
    const out = runAll(t, rows.map((row, i) => rec(i, row)));
    expect(out.rejects).toEqual([]);
    expect(out.items.map((i) => i.payload.event)).toEqual([
      { metric: 'Placed Order', properties: { OrderId: '1', Items: [{ SKU: 'X' }], Source: 'export', $custom: 1 }, time: '2024-01-02T03:04:05Z', unique_id: 'o-1' },
      { metric: 'Viewed Product', properties: { ProductName: 'Tee', Source: 'export' }, time: '2024-01-03T03:04:05Z', unique_id: 'v-1' },
    ]);
  });

  it('rejects a row without a metric, with an over-long metric, or whose properties_from is not an object', () => {
    const t = createTransformer(exported(), { now });
    const base = { email: 'a@example.com', unique_id: 'o-1', datetime: '2024-01-02T03:04:05Z', properties: '{}' };
    const out = runAll(t, [
      rec(0, { ...base, metric: '' }),
      rec(1, { ...base, metric: 'x'.repeat(128) }),
      rec(2, { ...base, metric: 'Placed Order', properties: '[1,2]' }),
      rec(3, { ...base, metric: 'Placed Order' }),
    ]);
    expect(out.rejects.map((r) => [r.line, r.code])).toEqual([
      [2, 'MISSING_REQUIRED'],
      [3, 'INVALID_VALUE'],
      [4, 'INVALID_VALUE'],
    ]);
    expect(out.items).toHaveLength(1);
  });

  it('profile.properties_from spreads an object into the profile\'s properties', () => {
    const t = createTransformer(exported({ profile: { email: 'email', properties_from: { column: 'profile_properties', type: 'json' }, properties: { Tier: 'tier' } } }), { now });
    const out = runAll(t, [rec(0, { metric: 'M', email: 'a@example.com', unique_id: 'o-1', datetime: '2024-01-02T03:04:05Z', properties: '{}', profile_properties: '{"Tier":"old","Vip":true}', tier: 'gold' })]);
    expect(out.rejects).toEqual([]);
    expect(out.items[0]!.payload.profile).toEqual({ email: 'a@example.com', properties: { Tier: 'gold', Vip: true } });
  });

  it('a plain string metric stays a literal name', () => {
    const t = createTransformer(exported({ metric: 'metric' }), { now });
    const out = runAll(t, [rec(0, { metric: 'Placed Order', email: 'a@example.com', unique_id: 'o-1', datetime: '2024-01-02T03:04:05Z', properties: '{}' })]);
    expect((out.items[0]!.payload.event as { metric: string }).metric).toBe('metric');
  });
});
