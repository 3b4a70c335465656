import { afterEach, describe, expect, it } from 'vitest';
import { newStats } from '../../../src/core/stats.js';
import { createKlaviyoLoader } from '../../../src/load/index.js';
import { SUBSCRIPTIONS_ENDPOINT_KEY, type SubscriptionPayload } from '../../../src/load/klaviyo-subscriptions.js';
import { makeItems, recordingContext, specBodyValidator, testClient, withServer, type SeenRequest, type TestServer } from './helpers.js';

type Body = {
  data: {
    attributes: { historical_import: boolean; custom_source?: string; profiles: { data: { attributes: Record<string, unknown> }[] } };
    relationships?: { list: { data: { id: string } } };
  };
};

const config = (subscriptions = 1000) => ({ batch: { events: 1000, profiles: 10_000, subscriptions, maxBytes: 4_900_000 }, concurrency: 2 });

function sub(email: string, listId?: string, historical = false): SubscriptionPayload {
  return {
    profile: { email, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED', ...(historical ? { consented_at: '2023-05-01T00:00:00Z' } : {}) } } } },
    ...(listId ? { listId } : {}),
    historicalImport: historical,
    customSource: 'etl',
  };
}

let server: TestServer | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await server?.close();
  server = undefined;
});

describe('subscription loader', () => {
  it('groups by list + historical_import + custom_source and sends spec-valid bodies', async () => {
    server = await withServer(() => ({ status: 202 }));
    const t = testClient(server.url);
    cleanups.push(t.close);
    const { ctx, acked } = recordingContext(t.stats);
    const payloads = [sub('a@x.com', 'L1'), sub('b@x.com', 'L1'), sub('c@x.com', 'L2'), sub('d@x.com', 'L2', true), sub('e@x.com')];
    const loader = createKlaviyoLoader('subscription', config(), { ...ctx, client: t.client });
    await loader.write(makeItems('subscription', payloads));
    await loader.close();
    expect(acked).toHaveLength(5);
    const bodies = server.requests.map((r: SeenRequest) => r.json as Body);
    // the four requests are concurrent: their order at the server is not part of the contract
    const groups = bodies.map((b) => [b.data.relationships?.list.data.id, b.data.attributes.historical_import, b.data.attributes.profiles.data.map((p) => p.attributes.email)] as const);
    expect(groups.sort((x, y) => String(x[2][0]).localeCompare(String(y[2][0])))).toEqual([
      ['L1', false, ['a@x.com', 'b@x.com']],
      ['L2', false, ['c@x.com']],
      ['L2', true, ['d@x.com']],
      [undefined, false, ['e@x.com']],
    ]);
    expect(bodies[0]!.data.attributes.custom_source).toBe('etl');
    const validate = await specBodyValidator(SUBSCRIPTIONS_ENDPOINT_KEY);
    for (const body of bodies) expect(validate(body)).toEqual([]);
  });

  it('maps 400 pointers back to subscription items', async () => {
    server = await withServer((req) => {
      const emails = (req.json as Body).data.attributes.profiles.data.map((p) => p.attributes.email);
      const i = emails.indexOf('bad');
      return i < 0
        ? { status: 202 }
        : { status: 400, body: { errors: [{ code: 'invalid', detail: 'Invalid email address', source: { pointer: `/data/attributes/profiles/data/${i}/attributes/email` } }] } };
    });
    const t = testClient(server.url);
    cleanups.push(t.close);
    const { ctx, acked, rejects } = recordingContext(t.stats);
    const loader = createKlaviyoLoader('subscription', config(), { ...ctx, client: t.client });
    await loader.write(makeItems('subscription', [sub('a@x.com', 'L1'), sub('bad', 'L1'), sub('c@x.com', 'L1')]));
    await loader.close();
    expect(rejects).toMatchObject([{ seq: 1, line: 3, code: 'KLAVIYO_REJECTED', field: '/attributes/email' }]);
    expect(acked.map((i) => i.first.seq)).toEqual([0, 2]);
  });

  it('dryRun counts planned requests per batch (profiles and subscriptions)', async () => {
    const stats = newStats();
    const { ctx } = recordingContext(stats, { dryRun: true });
    const subs = createKlaviyoLoader('subscription', config(2), ctx);
    await subs.write(makeItems('subscription', [sub('a@x', 'L1'), sub('b@x', 'L1'), sub('c@x', 'L1'), sub('d@x', 'L2')]));
    await subs.close();
    expect(stats.plannedRequests).toBe(3);
    const profiles = createKlaviyoLoader('profile', { ...config(), batch: { ...config().batch, profiles: 2 } }, ctx);
    await profiles.write(makeItems('profile', [{ email: 'a@x' }, { email: 'b@x' }, { email: 'c@x' }]));
    await profiles.close();
    expect(stats.plannedRequests).toBe(5);
    expect(stats.requests.total).toBe(0);
  });

  it('dryRun with the consent guard also counts the lookups a real run would make (one per 100 distinct emails of a batch)', async () => {
    const stats = newStats();
    const { ctx } = recordingContext(stats, { dryRun: true });
    const subs = createKlaviyoLoader('subscription', config(150), ctx);
    const payloads = Array.from({ length: 300 }, (_, i) => ({ ...sub(`p${i}@x.com`), checkOptOuts: true }));
    await subs.write(makeItems('subscription', payloads));
    await subs.close();
    // 2 batches of 150: each 1 subscribe + 2 lookups
    expect(stats.plannedRequests).toBe(6);
    expect(stats.plannedByEndpoint).toEqual({ 'GET /api/profiles': 4, [SUBSCRIPTIONS_ENDPOINT_KEY]: 2 });
  });

  it('the consent guard against a fake Klaviyo: looks the batch up first, skips the opted-out item through onSkip, sends the rest', async () => {
    server = await withServer((req) => {
      if (req.method === 'GET') {
        expect(decodeURIComponent(req.url)).toContain('filter=any(email,["a@x.com","b@x.com"])');
        expect(req.url).toContain('additional-fields%5Bprofile%5D=subscriptions');
        const marketing = { consent: 'UNSUBSCRIBED', consent_timestamp: '2024-01-01T00:00:00+00:00', suppression: [{ reason: 'UNSUBSCRIBE', timestamp: '2024-01-01T00:00:00+00:00' }], list_suppressions: [] };
        return { status: 200, body: { data: [{ type: 'profile', id: 'B', attributes: { email: 'b@x.com', subscriptions: { email: { marketing } } } }], links: {} } };
      }
      return { status: 202 };
    });
    const t = testClient(server.url);
    cleanups.push(t.close);
    const skipped: { seq: number; code: string; message: string }[] = [];
    const { ctx, acked } = recordingContext(t.stats, { onSkip: (s) => skipped.push(...s) });
    const loader = createKlaviyoLoader('subscription', config(), { ...ctx, client: t.client });
    await loader.write(makeItems('subscription', [{ ...sub('a@x.com'), checkOptOuts: true }, { ...sub('b@x.com'), checkOptOuts: true, consentedAt: '2023-05-01T00:00:00Z' }]));
    await loader.close();
    expect(skipped).toMatchObject([{ seq: 1, code: 'CONSENT_OPTED_OUT', message: expect.stringContaining('after the row\'s consented_at 2023-05-01') }]);
    expect(acked.map((i) => i.first.seq)).toEqual([0]);
    expect(server.requests.map((r) => r.method)).toEqual(['GET', 'POST']);
    expect(((server.requests[1]!.json as Body).data.attributes.profiles.data).map((p) => p.attributes.email)).toEqual(['a@x.com']);
  });
});
