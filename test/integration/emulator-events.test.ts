import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { bulkEventsBody, client, eventBody } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let call: ReturnType<typeof client>;

beforeAll(async () => {
  emu = await startEmulator({ port: 0, limits: 'off' });
  call = client(emu.url);
});
afterAll(() => emu.close());

async function ndjson(path: string): Promise<Record<string, unknown>[]> {
  const text = await fetch(emu.url + path).then((r) => r.text());
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('POST /api/events', () => {
  it('202 with an empty body; creates the profile and the metric; first unique_id wins', async () => {
    const r = await call('POST', '/api/events', eventBody({ unique_id: 'o-1', time: '2024-01-01T10:00:00.789Z', value: 9.99, value_currency: 'USD', properties: { OrderId: 'o-1' } }, { email: 'ev@example.com', first_name: 'Ev' }));
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    const again = await call('POST', '/api/events', eventBody({ unique_id: 'o-1', time: '2024-02-01T00:00:00Z', properties: { OrderId: 'changed' } }, { email: 'ev@example.com' }));
    expect(again.status).toBe(202);
    const s = emu.snapshot();
    expect(s.events).toBe(1);
    expect(s.duplicateEventsIgnored).toBe(1);
    expect(s.eventsByMetric).toEqual({ 'Placed Order': 1 });
    const events = await ndjson('/_emulator/events');
    expect(events[0]).toMatchObject({ metric: 'Placed Order', email: 'ev@example.com', time: '2024-01-01T10:00:00.000Z', value: 9.99, unique_id: 'o-1', properties: { OrderId: 'o-1' }, backfill: false });
    const profiles = await ndjson('/_emulator/profiles');
    expect(profiles.find((p) => p.email === 'ev@example.com')).toMatchObject({ first_name: 'Ev', id: expect.any(String) });
  });

  it('without unique_id keeps one event per profile+metric per second', async () => {
    const body = (time: string) => eventBody({ time }, { email: 'sec@example.com' }, 'Viewed');
    await call('POST', '/api/events', body('2024-03-01T00:00:00.100Z'));
    await call('POST', '/api/events', body('2024-03-01T00:00:00.900Z'));
    await call('POST', '/api/events', body('2024-03-01T00:00:01Z'));
    expect(emu.snapshot().eventsByMetric.Viewed).toBe(2);
  });

  it('validates: metric name, properties, time range, value, currency, profile identifier', async () => {
    const r = await call('POST', '/api/events', {
      data: {
        type: 'event',
        attributes: {
          properties: 'nope',
          time: '1989-12-31T00:00:00Z',
          value: 'ten',
          value_currency: 'DOLLARS',
          metric: { data: { type: 'metric', attributes: { name: 'x'.repeat(128) } } },
          profile: { data: { type: 'profile', attributes: { first_name: 'NoId' } } },
        },
      },
    });
    expect(r.status).toBe(400);
    const pointers = r.json.errors.map((e: { source: { pointer: string } }) => e.source.pointer).sort();
    expect(pointers).toEqual(
      [
        '/data/attributes/metric/data/attributes/name',
        '/data/attributes/profile/data/attributes',
        '/data/attributes/properties',
        '/data/attributes/time',
        '/data/attributes/value',
        '/data/attributes/value_currency',
      ].sort(),
    );
    const future = new Date(Date.now() + 400 * 86_400_000).toISOString();
    const f = await call('POST', '/api/events', eventBody({ time: future }, { email: 'f@example.com' }));
    expect(f.json.errors[0].source.pointer).toBe('/data/attributes/time');
    const tooMany = Object.fromEntries(Array.from({ length: 401 }, (_, i) => [`k${i}`, i]));
    const p = await call('POST', '/api/events', eventBody({ properties: tooMany }, { email: 'f@example.com' }));
    expect(p.json.errors[0].source.pointer).toBe('/data/attributes/properties');
  });
});

describe('POST /api/event-bulk-create-jobs', () => {
  it('accepts a valid batch (202, empty) and upserts profiles', async () => {
    const r = await call(
      'POST',
      '/api/event-bulk-create-jobs',
      bulkEventsBody([
        { profile: { email: 'b1@example.com', external_id: 'b1' }, events: [{ unique_id: 'b1-1', time: '2024-01-01T00:00:00Z' }, { unique_id: 'b1-2', time: '2024-01-01T00:00:00Z', value: 5 }] },
        { profile: { phone_number: '+14155552671' }, events: [{ unique_id: 'b2-1' }] },
      ]),
    );
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    const list = await call('GET', `/api/profiles?filter=${encodeURIComponent('equals(external_id,"b1")')}`);
    expect(list.json.data[0].attributes.email).toBe('b1@example.com');
    const events = await call('GET', `/api/events?filter=${encodeURIComponent(`equals(profile_id,"${list.json.data[0].id}")`)}`);
    expect(events.json.data).toHaveLength(2);
    expect(events.json.data[1].attributes.event_properties).toMatchObject({ $value: 5, $event_id: 'b1-2' });
  });

  it('a unique_id repeated for the same profile+metric in one request rejects the whole request', async () => {
    const before = emu.snapshot().events;
    const r = await call(
      'POST',
      '/api/event-bulk-create-jobs',
      bulkEventsBody([
        { profile: { email: 'dup@example.com' }, events: [{ unique_id: 'u-1' }, { unique_id: 'u-2' }] },
        { profile: { email: 'DUP@example.com' }, events: [{ unique_id: 'u-1' }] },
        { profile: { email: 'other@example.com' }, events: [{ unique_id: 'u-1' }] },
      ]),
    );
    expect(r.status).toBe(400);
    expect(r.json.errors).toHaveLength(1);
    expect(r.json.errors[0].source.pointer).toBe('/data/attributes/events-bulk-create/data/1/attributes/events/data/0/attributes/unique_id');
    expect(emu.snapshot().events).toBe(before);
  });

  it('one invalid event rejects the whole request with one error per bad item', async () => {
    const before = emu.snapshot().events;
    const r = await call(
      'POST',
      '/api/event-bulk-create-jobs',
      bulkEventsBody([
        { profile: { email: 'ok@example.com' }, events: [{ unique_id: 'ok-1' }, { unique_id: 'bad-1', value: 'x' }] },
        { profile: { email: 'nope' }, events: [{ unique_id: 'ok-2' }] },
      ]),
    );
    expect(r.status).toBe(400);
    expect(r.json.errors.map((e: { source: { pointer: string } }) => e.source.pointer)).toEqual([
      '/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/value',
      '/data/attributes/events-bulk-create/data/1/attributes/profile/data/attributes/email',
    ]);
    expect(emu.snapshot().events).toBe(before);
  });

  it('repeats across requests are ignored and counted in duplicateEventsIgnored', async () => {
    const body = bulkEventsBody([{ profile: { email: 'again@example.com' }, events: [{ unique_id: 'a-1' }, { unique_id: 'a-2' }], metric: 'Refunded' }]);
    expect((await call('POST', '/api/event-bulk-create-jobs', body)).status).toBe(202);
    const before = emu.snapshot();
    expect((await call('POST', '/api/event-bulk-create-jobs', body)).status).toBe(202);
    const after = emu.snapshot();
    expect(after.eventsByMetric.Refunded).toBe(2);
    expect(after.events).toBe(before.events);
    expect(after.duplicateEventsIgnored).toBe(before.duplicateEventsIgnored + 2);
  });

  it('a profile id that does not exist rejects the whole request before any event is stored', async () => {
    const before = emu.snapshot();
    const body = bulkEventsBody([
      { profile: { email: 'first-entry@example.com' }, events: [{ unique_id: 'id-1' }] },
      { profile: { email: 'second-entry@example.com' }, events: [{ unique_id: 'id-2' }] },
    ]);
    const entries = (body.data.attributes['events-bulk-create'].data as { attributes: { profile: { data: Record<string, unknown> } } }[]);
    entries[1]!.attributes.profile.data.id = '01NOSUCHPROFILE0000000000';
    const r = await call('POST', '/api/event-bulk-create-jobs', body);
    expect(r.status).toBe(400);
    expect(r.json.errors).toEqual([expect.objectContaining({ detail: 'A profile with id 01NOSUCHPROFILE0000000000 does not exist.', source: { pointer: '/data/attributes/events-bulk-create/data/1/attributes/profile/data/id' } })]);
    const after = emu.snapshot();
    expect([after.events, after.profiles]).toEqual([before.events, before.profiles]);
  });

  it('the events of an accepted request are seen by the very next request', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => ({ unique_id: `next-${i}` }));
    const profiles = Array.from({ length: 10 }, (_, p) => ({ profile: { email: `next${p}@example.com` }, events: events.slice(p * 100, p * 100 + 100), metric: 'Seen Next' }));
    expect((await call('POST', '/api/event-bulk-create-jobs', bulkEventsBody(profiles))).status).toBe(202);
    const state = await call('GET', '/_emulator/state');
    expect(state.json.eventsByMetric['Seen Next']).toBe(1000);
  });

  it('more than 1,000 events → 400', async () => {
    const events = Array.from({ length: 1001 }, (_, i) => ({ unique_id: `m-${i}` }));
    const r = await call('POST', '/api/event-bulk-create-jobs', bulkEventsBody([{ profile: { email: 'many@example.com' }, events }]));
    expect(r.status).toBe(400);
    expect(r.json.errors[0].source.pointer).toBe('/data/attributes/events-bulk-create/data');
  });
});

describe('GET /api/events and /api/metrics', () => {
  it('lists metrics created on first use and filters events by metric_id and datetime', async () => {
    const metrics = await call('GET', '/api/metrics');
    const names = metrics.json.data.map((m: { attributes: { name: string } }) => m.attributes.name);
    expect(names).toEqual(expect.arrayContaining(['Placed Order', 'Viewed', 'Refunded']));
    const viewed = metrics.json.data.find((m: { attributes: { name: string } }) => m.attributes.name === 'Viewed');
    expect(viewed.attributes.integration).toMatchObject({ name: 'API' });
    const one = await call('GET', `/api/metrics/${viewed.id}`);
    expect(one.json.data.attributes.name).toBe('Viewed');
    const ev = await call('GET', `/api/events?filter=${encodeURIComponent(`equals(metric_id,"${viewed.id}"),greater-than(datetime,2024-03-01T00:00:00Z)`)}&include=metric`);
    expect(ev.json.data).toHaveLength(1);
    expect(ev.json.data[0].attributes).toMatchObject({ datetime: '2024-03-01T00:00:01+00:00', timestamp: Date.UTC(2024, 2, 1, 0, 0, 1) / 1000 });
    expect(ev.json.data[0].relationships.metric.data).toEqual({ type: 'metric', id: viewed.id });
    expect(ev.json.included[0]).toMatchObject({ type: 'metric', id: viewed.id });
    const paged = await call('GET', '/api/events?page[size]=2');
    expect(paged.json.data).toHaveLength(2);
    expect(paged.json.links.next).toContain('page%5Bcursor%5D=');
  });
});
