import type { KlaviyoDestinationConfig } from '../config/schema.js';
import type { LoadItem } from '../core/record.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, itemReject, type BulkEndpoint, type Entry, sendOrPlan } from './bulk.js';
import type { KlaviyoClient } from './http.js';
import type { LoadContext, Loader } from './types.js';

/** The payload of an event LoadItem (Klaviyo wire names). */
export interface EventPayload {
  /** Profile attributes (email, phone_number, external_id, … properties, location). */
  profile: Record<string, unknown>;
  event: {
    /** Metric name, or `{name}`. */
    metric: string | { name: string };
    properties?: Record<string, unknown>;
    time?: string;
    value?: number;
    value_currency?: string;
    unique_id?: string;
    backfill?: boolean;
  };
}

/** The parts of the destination config the event loader reads. */
export type EventLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'events' | 'maxBytes'>;
};

export const EVENTS_ENDPOINT_KEY = 'POST /api/event-bulk-create-jobs';
const PREFIX = '{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[';
const SUFFIX = ']}}}}';

const ENDPOINT: BulkEndpoint = {
  key: EVENTS_ENDPOINT_KEY,
  entriesPointer: '/data/attributes/events-bulk-create/data',
  body: (entries) => envelope(PREFIX, entries, SUFFIX),
};

/** One `event-bulk-create` entry per event (so a pointer's index is the item's index in the request). */
export function eventEntry(payload: EventPayload): Record<string, unknown> {
  const { metric, properties, ...rest } = payload.event;
  const name = typeof metric === 'string' ? metric : metric.name;
  return {
    type: 'event-bulk-create',
    attributes: {
      profile: { data: { type: 'profile', attributes: payload.profile } },
      events: {
        data: [
          {
            type: 'event',
            attributes: {
              properties: properties ?? {},
              ...rest,
              metric: { data: { type: 'metric', attributes: { name } } },
            },
          },
        ],
      },
    },
  };
}

const IDENTIFIERS = ['id', 'email', 'phone_number', 'external_id', 'anonymous_id', '_kx'] as const;

/** profile identifiers + metric + unique_id; undefined when the event has no unique_id (nothing to collide). */
export function eventDedupKey(payload: EventPayload): string | undefined {
  const uniqueId = payload.event.unique_id;
  if (uniqueId === undefined || uniqueId === null) return undefined;
  const profile = payload.profile;
  const metric = payload.event.metric;
  // Plain concatenation (this runs once per event): \u0000 cannot occur in the parts that matter.
  let key = typeof metric === 'string' ? metric : metric.name;
  key += '\u0000' + String(uniqueId);
  for (const k of IDENTIFIERS) {
    const v = profile[k];
    key += '\u0000' + (v === undefined || v === null ? '' : typeof v === 'string' ? (k === 'email' ? v.toLowerCase() : v) : JSON.stringify(v));
  }
  return key;
}

/** Duplicate events logged one by one; the rest are only counted. */
const MAX_DUPLICATE_WARNINGS = 10;

const ENTRY_HEAD = '{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":';
const ENTRY_EVENT = '}},"events":{"data":[{"type":"event","attributes":{"properties":';

/** `JSON.stringify(eventEntry(payload))`, built without the intermediate objects (same text, same key order). */
export function eventEntryJson(payload: EventPayload, profileJson?: string): string {
  const event = payload.event;
  const metric = event.metric;
  const name = typeof metric === 'string' ? metric : metric.name;
  let out = ENTRY_HEAD + (profileJson ?? JSON.stringify(payload.profile)) + ENTRY_EVENT + JSON.stringify(event.properties ?? {});
  for (const k in event) {
    if (k === 'metric' || k === 'properties') continue;
    const v = (event as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out += (KEY_JSON[k] ?? ',' + JSON.stringify(k) + ':') + JSON.stringify(v);
  }
  return out + ',"metric":{"data":{"type":"metric","attributes":{"name":' + JSON.stringify(name) + '}}}}}]}}}';
}

/** `,"key":` of the event attributes every event has (saves a JSON.stringify per key per event). */
const KEY_JSON: Readonly<Record<string, string>> = Object.assign(Object.create(null) as Record<string, string>, {
  time: ',"time":',
  value: ',"value":',
  value_currency: ',"value_currency":',
  unique_id: ',"unique_id":',
  backfill: ',"backfill":',
});

/**
 * Loads event items through `POST /api/event-bulk-create-jobs`. Two events with the same profile + metric +
 * unique_id never share a request (Klaviyo would refuse the whole request); the later one goes into the next
 * request, where Klaviyo accepts and ignores it, so it is acknowledged like any other item.
 */
export class KlaviyoEventLoader implements Loader {
  readonly #ctx: LoadContext;
  readonly #batcher: Batcher<Entry>;
  #lastProfile: unknown;
  #lastProfileJson = '';

  constructor(config: EventLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    this.#ctx = ctx;
    const sender = client
      ? new BulkSender(client, ENDPOINT, ctx, (entries) => ctx.onAck(entries.map((e) => e.item)))
      : undefined;
    this.#batcher = new Batcher<Entry>({
      maxItems: config.batch.events,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: Buffer.byteLength(PREFIX + SUFFIX),
      concurrency: config.concurrency,
      sizeOf: (entry) => Buffer.byteLength(entry.json),
      keyOf: (entry) => eventDedupKey(entry.item.payload as unknown as EventPayload),
      onDuplicateKey: (entry) => {
        // Klaviyo accepts the request and ignores this event: count it and say so (the first few individually)
        const n = ++ctx.stats.items.duplicates;
        if (n > MAX_DUPLICATE_WARNINGS) return;
        const { first } = entry.item;
        const event = (entry.item.payload as unknown as EventPayload).event;
        ctx.logger.warn('duplicate event: Klaviyo will ignore it (same profile, metric and unique_id as an earlier event of this run)', {
          source: first.source,
          ...(first.line === undefined ? {} : { line: first.line }),
          seq: first.seq,
          metric: typeof event.metric === 'string' ? event.metric : event.metric.name,
          unique_id: event.unique_id,
          ...(n === MAX_DUPLICATE_WARNINGS ? { note: 'further duplicates are only counted (report: items.duplicates)' } : {}),
        });
      },
      send: sendOrPlan(ctx, sender),
      onTooLarge: (entry, bytes) =>
        ctx.onReject([
          itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `event is ${bytes} bytes serialized, more than one request may carry`),
        ]),
    });
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      const payload = item.payload as unknown as EventPayload;
      // the events of one group share their profile object: serialize it once
      if (payload.profile !== this.#lastProfile) {
        this.#lastProfile = payload.profile;
        this.#lastProfileJson = JSON.stringify(payload.profile);
      }
      const json = eventEntryJson(payload, this.#lastProfileJson);
      const accepted = this.#batcher.tryAdd({ item, json });
      if (accepted) await accepted;
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
    this.#ctx.logger.debug('event loader closed');
  }
}
