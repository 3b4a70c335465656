import { afterEach, describe, expect, it } from 'vitest';
import { newStats } from '../../../src/core/stats.js';
import { createKlaviyoLoader } from '../../../src/load/index.js';
import { EVENTS_ENDPOINT_KEY, eventDedupKey, type EventPayload } from '../../../src/load/klaviyo-events.js';
import { makeItems, recordingContext, specBodyValidator, testClient, withServer, type SeenRequest, type TestServer } from './helpers.js';

type Body = {
  data: { attributes: { 'events-bulk-create': { data: { attributes: { profile: { data: { attributes: Record<string, unknown> } }; events: { data: { attributes: Record<string, unknown> }[] } } }[] } } };
};

const entriesOf = (req: SeenRequest) => (req.json as Body).data.attributes['events-bulk-create'].data;
const emailsOf = (req: SeenRequest) => entriesOf(req).map((e) => e.attributes.profile.data.attributes.email as string);

function event(email: string, uniqueId: string, metric = 'Placed Order'): EventPayload {
  return {
    profile: { email },
    event: { metric, properties: { OrderId: uniqueId }, time: '2024-01-01T00:00:00Z', value: 9.99, value_currency: 'USD', unique_id: uniqueId, backfill: true },
  };
}

const config = (events = 1000, concurrency = 2) => ({ batch: { events, profiles: 10_000, subscriptions: 1000, maxBytes: 4_900_000 }, concurrency });

let server: TestServer | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await server?.close();
  server = undefined;
});

function setup(url: string, retries = 3) {
  const t = testClient(url, { retries });
  cleanups.push(t.close);
  const rec = recordingContext(t.stats);
  return { ...t, ...rec };
}

describe('event loader', () => {
  it('sends spec-valid event-bulk-create-jobs bodies and acks every item on 202', async () => {
    server = await withServer(() => ({ status: 202 }));
    const { client, ctx, acked, rejects } = setup(server.url);
    const items = makeItems('event', [event('a@x.com', 'o-1'), event('b@x.com', 'o-2'), event('c@x.com', 'o-3')]);
    const loader = createKlaviyoLoader('event', config(2), { ...ctx, client });
    await loader.write(items);
    await loader.close();
    expect(server.requests).toHaveLength(2);
    // acknowledged by position (with the row, for rejects); the serialized payload is not kept
    expect(acked.map((i) => [i.kind, i.first, i.last, i.row])).toEqual(items.map((i) => [i.kind, i.first, i.last, i.row]));
    expect(acked.every((i) => !('payload' in i))).toBe(true);
    expect(rejects).toEqual([]);
    const validate = await specBodyValidator(EVENTS_ENDPOINT_KEY);
    expect(validate({ data: { type: 'event-bulk-create-job', attributes: {} } })).not.toEqual([]);
    for (const req of server.requests) expect(validate(req.json)).toEqual([]);
    const first = entriesOf(server.requests[0]!)[0]!;
    expect(first.attributes.events.data[0]!.attributes).toEqual({
      properties: { OrderId: 'o-1' },
      time: '2024-01-01T00:00:00Z',
      value: 9.99,
      value_currency: 'USD',
      unique_id: 'o-1',
      backfill: true,
      metric: { data: { type: 'metric', attributes: { name: 'Placed Order' } } },
    });
  });

  it('never puts two events with the same profile + metric + unique_id in one request', async () => {
    server = await withServer(() => ({ status: 202 }));
    const { client, ctx, acked } = setup(server.url);
    const payloads = [event('a@x.com', 'o-1'), event('b@x.com', 'o-1'), event('A@x.com', 'o-1'), event('a@x.com', 'o-1', 'Other'), event('c@x.com', 'o-9')];
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(makeItems('event', payloads));
    await loader.close();
    expect(server.requests.map(emailsOf)).toEqual([['a@x.com', 'b@x.com'], ['A@x.com', 'a@x.com', 'c@x.com']]);
    expect(acked).toHaveLength(5);
    for (const req of server.requests) {
      const keys = entriesOf(req).map((e) =>
        eventDedupKey({ profile: e.attributes.profile.data.attributes, event: { ...e.attributes.events.data[0]!.attributes, metric: (e.attributes.events.data[0]!.attributes.metric as { data: { attributes: { name: string } } }).data.attributes.name } }),
      );
      expect(new Set(keys).size).toBe(keys.length);
    }
  });

  it('partial failure: rejects pointed items, resubmits the rest once, then bisects to isolate unnamed bad items', async () => {
    // "bad…" emails are named by pointer; "hidden…" ones make the request fail without a usable pointer.
    server = await withServer((req) => {
      const emails = emailsOf(req);
      const pointed = emails.flatMap((e, i) => (e.startsWith('bad') ? [i] : []));
      if (pointed.length > 0) {
        return {
          status: 400,
          body: {
            errors: pointed.map((i) => ({
              id: String(i),
              status: 400,
              code: 'invalid',
              title: 'Invalid input.',
              detail: 'Invalid email address',
              source: { pointer: `/data/attributes/events-bulk-create/data/${i}/attributes/profile/data/attributes/email` },
            })),
          },
        };
      }
      if (emails.some((e) => e.startsWith('hidden'))) {
        return { status: 400, body: { errors: [{ id: 'x', status: 400, code: 'invalid', title: 'Invalid input.', detail: 'Something is wrong', source: { pointer: '/data' } }] } };
      }
      return { status: 202 };
    });
    const { client, ctx, acked, rejects, stats } = setup(server.url);
    const emails = Array.from({ length: 20 }, (_, i) => ([3, 11].includes(i) ? `bad${i}@x` : [7, 15].includes(i) ? `hidden${i}@x.com` : `ok${i}@x.com`));
    const items = makeItems('event', emails.map((e, i) => event(e, `o-${i}`)));
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(items);
    await loader.close();

    expect(rejects.map((r) => r.seq).sort((a, b) => a - b)).toEqual([3, 7, 11, 15]);
    expect(acked.map((i) => i.first.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19]);
    const bad3 = rejects.find((r) => r.seq === 3)!;
    expect(bad3).toMatchObject({
      stage: 'load',
      code: 'KLAVIYO_REJECTED',
      source: 'input.csv',
      line: 5,
      field: '/attributes/profile/data/attributes/email',
      row: { n: '3' },
    });
    expect(bad3.message).toBe('invalid: Invalid email address');
    expect(rejects.find((r) => r.seq === 7)!.message).toBe('invalid: Something is wrong');
    // each 4xx answered a different request body: nothing was blindly retried
    const bodies = server.requests.map((r) => r.body);
    expect(new Set(bodies).size).toBe(bodies.length);
    expect(stats.requests.retried).toBe(0);
  });

  it('puts consecutive events of one profile into one entry, and maps pointers into it back to the right events', async () => {
    // An order: one profile object shared by its group event and its item events (as the event transform makes them).
    const order = (email: string, id: string, items: number): EventPayload[] => {
      const profile = { email };
      return [
        { profile, event: { metric: 'Placed Order', properties: { OrderId: id }, unique_id: id } },
        ...Array.from({ length: items }, (_, k) => ({ profile, event: { metric: 'Ordered Product', properties: { OrderId: id, k }, unique_id: `${id}-${k}` } })),
      ];
    };
    // bad item value in order o-2 (its 2nd item event), bad profile in order o-3
    const payloads = [...order('a@x.com', 'o-1', 2), ...order('b@x.com', 'o-2', 3), ...order('bad@x', 'o-3', 1), ...order('c@x.com', 'o-4', 1)];
    server = await withServer((req) => {
      const errors: unknown[] = [];
      entriesOf(req).forEach((entry, i) => {
        if (entry.attributes.profile.data.attributes.email === 'bad@x') {
          errors.push({ code: 'invalid', detail: 'Invalid email address', source: { pointer: `/data/attributes/events-bulk-create/data/${i}/attributes/profile/data/attributes/email` } });
        }
        entry.attributes.events.data.forEach((ev, j) => {
          if (ev.attributes.unique_id === 'o-2-1') {
            errors.push({ code: 'invalid', detail: 'Bad value', source: { pointer: `/data/attributes/events-bulk-create/data/${i}/attributes/events/data/${j}/attributes/value` } });
          }
        });
      });
      return errors.length > 0 ? { status: 400, body: { errors } } : { status: 202 };
    });
    const { client, ctx, acked, rejects } = setup(server.url);
    const items = makeItems('event', payloads);
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(items);
    await loader.close();

    // first request: 4 orders → 4 entries holding 3, 4, 2 and 2 events
    const first = server.requests[0]!;
    expect(entriesOf(first).map((e) => e.attributes.events.data.length)).toEqual([3, 4, 2, 2]);
    expect(entriesOf(first).map((e) => e.attributes.profile.data.attributes.email)).toEqual(['a@x.com', 'b@x.com', 'bad@x', 'c@x.com']);
    const validate = await specBodyValidator(EVENTS_ENDPOINT_KEY);
    expect(validate(first.json)).toEqual([]);
    // the item event o-2-1 (seq 5) alone, and both events of the bad profile (seq 7, 8) are rejected
    expect(rejects.map((r) => r.seq).sort((a, b) => a - b)).toEqual([5, 7, 8]);
    expect(rejects.find((r) => r.seq === 5)).toMatchObject({ code: 'KLAVIYO_REJECTED', message: 'invalid: Bad value', field: '/attributes/events/data/2/attributes/value' });
    expect(rejects.find((r) => r.seq === 7)).toMatchObject({ message: 'invalid: Invalid email address', field: '/attributes/profile/data/attributes/email' });
    expect(acked.map((i) => i.first.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 6, 9, 10]);
    // the resubmission keeps the surviving events of o-2 together under their profile
    expect(server.requests).toHaveLength(2);
    expect(entriesOf(server.requests[1]!).map((e) => e.attributes.events.data.map((ev) => ev.attributes.unique_id))).toEqual([
      ['o-1', 'o-1-0', 'o-1-1'],
      ['o-2', 'o-2-0', 'o-2-2'],
      ['o-4', 'o-4-0'],
    ]);
  });

  it('a rejected event carries its source text (raw) when the item has one, instead of the row', async () => {
    server = await withServer((req) =>
      emailsOf(req).some((e) => e.startsWith('bad'))
        ? { status: 400, body: { errors: [{ code: 'invalid', detail: 'Invalid email address', source: { pointer: '/data/attributes/events-bulk-create/data/1/attributes/profile/data/attributes/email' } }] } }
        : { status: 202 },
    );
    const { client, ctx, rejects, acked } = setup(server.url);
    const items = makeItems('event', [event('a@x.com', 'o-1'), event('bad@x', 'o-2')]).map((item, i) => ({ ...item, raw: `line ${i},text` }));
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(items);
    await loader.close();
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ seq: 1, code: 'KLAVIYO_REJECTED', raw: 'line 1,text' });
    expect(rejects[0]!.row).toBeUndefined();
    expect(acked.map((i) => i.first.seq)).toEqual([0]);
  });

  it('5xx past the retry budget fails the run with KLAVIYO_UNAVAILABLE naming the batch source range', async () => {
    server = await withServer(() => ({ status: 503 }));
    const { client, ctx, acked } = setup(server.url, 1);
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(makeItems('event', [event('a@x.com', '1'), event('b@x.com', '2'), event('c@x.com', '3')], 'orders.csv'));
    const error = await loader.close().then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; context: Record<string, unknown> },
    );
    expect(error?.code).toBe('KLAVIYO_UNAVAILABLE');
    expect(error?.message).toContain('orders.csv:2-4 (seq 0-2)');
    expect(error?.context).toMatchObject({ file: 'orders.csv', line: 2, firstSeq: 0, lastSeq: 2 });
    expect(server.requests).toHaveLength(2);
    expect(acked).toEqual([]);
  });

  it('request-level 4xx (e.g. 415) fails the run instead of bisecting', async () => {
    server = await withServer(() => ({ status: 415, body: { errors: [{ code: 'unsupported_media_type', detail: 'nope' }] } }));
    const { client, ctx } = setup(server.url);
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(makeItems('event', [event('a@x.com', '1'), event('b@x.com', '2')]));
    await expect(loader.close()).rejects.toMatchObject({ code: 'KLAVIYO_REQUEST_REJECTED' });
    expect(server.requests).toHaveLength(1);
  });

  it('a 400 naming no item, answered alike to the first event alone and to the rest, fails the run after 3 requests, rejecting nothing', async () => {
    const refusal = { status: 400, body: { errors: [{ status: 400, code: 'invalid', title: 'Invalid input.', detail: 'The payload provided in the request is invalid.', source: { pointer: '/data' } }] } };
    server = await withServer(() => refusal);
    const { client, ctx, acked, rejects } = setup(server.url);
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(makeItems('event', Array.from({ length: 40 }, (_, i) => event(`p${i}@x.com`, `o-${i}`)), 'orders.csv'));
    const error = await loader.close().then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; context: Record<string, unknown> },
    );
    expect(error?.code).toBe('KLAVIYO_REQUEST_REJECTED');
    expect(error?.message).toContain('POST /api/event-bulk-create-jobs (400: invalid: The payload provided in the request is invalid.)');
    expect(error?.message).toContain('orders.csv:2-41 (seq 0-39)');
    expect(error?.message).toMatch(/request is at fault, not its rows/);
    expect(error?.message).toMatch(/Likely cause: .*API key/);
    expect(error?.context).toMatchObject({ endpoint: 'POST /api/event-bulk-create-jobs', status: 400, file: 'orders.csv', line: 2, firstSeq: 0, lastSeq: 39 });
    // the batch, its first event alone, the other 39
    expect(server.requests.map((r) => entriesOf(r).length)).toEqual([40, 1, 39]);
    expect(rejects).toEqual([]);
    expect(acked).toEqual([]);
  });

  it('a refusal pointing at a member outside the entries (a list relationship) or a 404 fails the run on the first request', async () => {
    for (const reply of [
      { status: 400, body: { errors: [{ code: 'invalid', detail: 'List XyZ123 does not exist.', source: { pointer: '/data/relationships/list/data/id' } }] } },
      { status: 404, body: { errors: [{ code: 'not_found', detail: 'Not found.', source: { pointer: '/data/' } }] } },
      { status: 400, body: { errors: [{ code: 'invalid', detail: 'Invalid revision', source: { parameter: 'revision' } }] } },
    ]) {
      await server?.close();
      server = await withServer(() => reply);
      const { client, ctx, acked, rejects } = setup(server.url);
      const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
      await loader.write(makeItems('event', Array.from({ length: 10 }, (_, i) => event(`p${i}@x.com`, `o-${i}`))));
      await expect(loader.close()).rejects.toMatchObject({ code: 'KLAVIYO_REQUEST_REJECTED' });
      expect(server.requests).toHaveLength(1);
      expect(rejects).toEqual([]);
      expect(acked).toEqual([]);
    }
  });

  it('an unpointed refusal the rows cause (the first event alone goes through) is bisected: each bad event rejected, wherever it is', async () => {
    // bad events in both halves, answered without a pointer and with the same error
    server = await withServer((req) =>
      emailsOf(req).some((e) => e.startsWith('hidden'))
        ? { status: 400, body: { errors: [{ code: 'invalid', detail: 'The payload provided in the request is invalid.', source: { pointer: '/data' } }] } }
        : { status: 202 },
    );
    const { client, ctx, acked, rejects } = setup(server.url);
    const emails = Array.from({ length: 32 }, (_, i) => ([5, 29].includes(i) ? `hidden${i}@x.com` : `ok${i}@x.com`));
    const loader = createKlaviyoLoader('event', config(), { ...ctx, client });
    await loader.write(makeItems('event', emails.map((e, i) => event(e, `o-${i}`))));
    await loader.close();
    expect(rejects.map((r) => r.seq).sort((a, b) => a - b)).toEqual([5, 29]);
    expect(rejects[0]).toMatchObject({ code: 'KLAVIYO_REJECTED', message: 'invalid: The payload provided in the request is invalid.' });
    expect(acked.map((i) => i.first.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i).filter((i) => i !== 5 && i !== 29));
    // far fewer than the 2N-1 = 63 of a blind bisection
    expect(server.requests.length).toBeLessThanOrEqual(2 + 2 * 2 * Math.ceil(Math.log2(32)));
  });

  it('a 500 is retried when every event carries unique_id (idempotent), and fails at once, naming the batch, when one does not', async () => {
    server = await withServer((_req, i) => (i === 0 ? { status: 500 } : { status: 202 }));
    const keyed = setup(server.url);
    const loader = createKlaviyoLoader('event', config(), { ...keyed.ctx, client: keyed.client });
    await loader.write(makeItems('event', [event('a@x.com', 'o-1'), event('b@x.com', 'o-2')]));
    await loader.close();
    expect(server.requests).toHaveLength(2);
    expect(keyed.acked).toHaveLength(2);
    expect(keyed.stats.requests.retried).toBe(1);

    await server.close();
    server = await withServer((_req, i) => (i === 0 ? { status: 500 } : { status: 202 }));
    const unkeyed = setup(server.url);
    const noId = event('c@x.com', 'x');
    delete noId.event.unique_id;
    const second = createKlaviyoLoader('event', config(), { ...unkeyed.ctx, client: unkeyed.client });
    await second.write(makeItems('event', [event('a@x.com', 'o-1'), noId], 'orders.csv'));
    await expect(second.close()).rejects.toMatchObject({ code: 'KLAVIYO_UNAVAILABLE', message: expect.stringMatching(/not retried.*orders\.csv:2-3/) });
    expect(server.requests).toHaveLength(1);
    expect(unkeyed.acked).toEqual([]);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    server = await withServer(() => ({ status: 202, delayMs: 40 }));
    const { client, ctx, acked } = setup(server.url);
    const loader = createKlaviyoLoader('event', config(1, 2), { ...ctx, client });
    const items = makeItems('event', Array.from({ length: 10 }, (_, i) => event(`p${i}@x.com`, String(i))));
    for (const item of items) await loader.write([item]);
    await loader.close();
    expect(server.requests).toHaveLength(10);
    expect(server.maxConcurrent).toBeLessThanOrEqual(2);
    expect(acked).toHaveLength(10);
  });

  it('rejects an event too large for one request as RECORD_TOO_LARGE', async () => {
    server = await withServer(() => ({ status: 202 }));
    const { client, ctx, acked, rejects } = setup(server.url);
    const big = event('big@x.com', 'big');
    big.event.properties = { blob: 'x'.repeat(5000) };
    const loader = createKlaviyoLoader('event', { ...config(), batch: { ...config().batch, maxBytes: 4096 } }, { ...ctx, client });
    await loader.write(makeItems('event', [event('a@x.com', '1'), big]));
    await loader.close();
    expect(rejects).toMatchObject([{ code: 'RECORD_TOO_LARGE', seq: 1 }]);
    expect(acked.map((i) => i.first.seq)).toEqual([0]);
  });

  it('a duplicate event (profile + metric + unique_id of one in the open batch) goes into the next request, counted and warned about by metric and unique_id', async () => {
    const warnings: [string, Record<string, unknown> | undefined][] = [];
    const { ctx, acked } = recordingContext(newStats(), {
      dryRun: true,
      logger: { debug() {}, info() {}, error() {}, warn: (msg, fields) => warnings.push([msg, fields]) },
    });
    // 12 duplicates of A-1 (and two events that are not: another profile, another metric)
    const payloads = [
      event('a@x.com', 'A-1'),
      event('A@X.com', 'A-1', 'Ordered Product'),
      event('b@x.com', 'A-1'),
      ...Array.from({ length: 12 }, () => event('A@x.com', 'A-1')),
    ];
    const loader = createKlaviyoLoader('event', config(), ctx);
    await loader.write(makeItems('event', payloads));
    await loader.close();
    expect(ctx.stats.items.duplicates).toBe(12);
    expect(ctx.stats.plannedRequests).toBe(13); // each duplicate starts the next request
    expect(acked).toHaveLength(15);
    expect(warnings).toHaveLength(10);
    expect(warnings[0]![1]).toEqual({ source: 'input.csv', line: 5, seq: 3, metric: 'Placed Order', unique_id: 'A-1' });
    expect(warnings[9]![1]).toMatchObject({ seq: 12, metric: 'Placed Order', unique_id: 'A-1', note: expect.stringContaining('only counted') });
  });

  it('dryRun batches like a real run, sends nothing and counts planned requests', async () => {
    const stats = newStats();
    const { ctx, acked } = recordingContext(stats, { dryRun: true });
    const loader = createKlaviyoLoader('event', config(4), ctx);
    await loader.write(makeItems('event', Array.from({ length: 10 }, (_, i) => event(`p${i}@x.com`, String(i)))));
    await loader.close();
    expect(stats.plannedRequests).toBe(3);
    expect(stats.requests.total).toBe(0);
    expect(acked).toHaveLength(10);
  });
});
