import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { assertItemKind, type EventPayload, type ItemSpan, type LoadItem } from '../core/record.js';
import { Batcher } from './batcher.js';
import { BulkSender, itemReject, pointerIndex, type BulkEndpoint, type Located, sendOrPlan } from './bulk.js';
import type { JsonApiError, KlaviyoClient } from '../klaviyo/client.js';
import { JsonBytesWriter } from './json-bytes.js';
import type { LoadContext, Loader } from './types.js';

export type { EventPayload } from '../core/record.js';

/** The parts of the destination config the event loader reads. */
export type EventLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency'> & {
  batch: Pick<KlaviyoDestinationConfig['batch'], 'events' | 'maxBytes'>;
};

export const EVENTS_ENDPOINT_KEY = 'POST /api/event-bulk-create-jobs';
const PREFIX = '{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[';
const SUFFIX = ']}}}}';

const ENTRIES_POINTER = '/data/attributes/events-bulk-create/data';

const ENDPOINT: BulkEndpoint<EventEntry> = {
  key: EVENTS_ENDPOINT_KEY,
  entriesPointer: ENTRIES_POINTER,
  body: (entries) => eventsBody(entries),
  locate: (pointer, entries) => locateEvent(pointer, entries),
  alreadyHeld: (error, field) => isHeldEvent(error, field),
  // Klaviyo keeps one event per profile + metric + unique_id: a request whose events all carry one can be sent twice
  idempotent: (entries) => entries.every((e) => e.keyed),
};

/**
 * Whether an error about one event says Klaviyo already holds an event with its profile, metric and `unique_id`
 * (sent by an earlier request: a resumed run re-sends the tail the checkpoint had not passed). Klaviyo documents
 * such a repeat as accepted and ignored (202); an answer refusing it names the event's `unique_id` as a duplicate,
 * or answers 409. Either way the event is where it should be: a duplicate, not a reject.
 */
function isHeldEvent(error: JsonApiError, field: string): boolean {
  if (!/\/unique_id$/.test(field)) return false;
  const text = `${error.code ?? ''} ${error.title ?? ''} ${error.detail ?? ''}`;
  return error.status === 409 || error.status === '409' || /duplicate|already exist/i.test(text);
}

const IDENTIFIERS = ['id', 'email', 'phone_number', 'external_id', 'anonymous_id', '_kx'] as const;

/** The identifiers of a profile as one string (emails lower-cased): the profile part of {@link eventDedupKey}. */
function profileIdentity(profile: Record<string, unknown>): string {
  let key = '';
  for (const k of IDENTIFIERS) {
    const v = profile[k];
    key += '\u0000' + (v === undefined || v === null ? '' : typeof v === 'string' ? (k === 'email' ? v.toLowerCase() : v) : JSON.stringify(v));
  }
  return key;
}

/** metric + unique_id + the profile's identity; undefined when the event has no unique_id (nothing to collide). */
function dedupKey(event: EventPayload['event'], identity: string): string | undefined {
  const uniqueId = event.unique_id;
  if (uniqueId === undefined || uniqueId === null) return undefined;
  const metric = event.metric;
  // Plain concatenation (this runs once per event): \u0000 cannot occur in the parts that matter.
  return (typeof metric === 'string' ? metric : metric.name) + '\u0000' + String(uniqueId) + identity;
}

/** profile identifiers + metric + unique_id; undefined when the event has no unique_id (nothing to collide). */
export function eventDedupKey(payload: EventPayload): string | undefined {
  return dedupKey(payload.event, profileIdentity(payload.profile));
}

/** Duplicate events logged one by one; the rest are only counted. */
const MAX_DUPLICATE_WARNINGS = 10;

/*
 * The request body is built from bytes, not strings. Each event's JSON (`{"type":"event","attributes":{…}}`) and each
 * profile's attributes JSON are written once, straight into UTF-8 (JsonBytesWriter: no intermediate strings), into
 * large shared buffers (off the V8 heap, so the batches in flight cost the garbage collector nothing to keep); an
 * entry keeps only the byte range. Consecutive events of the same profile (an order's `Placed Order` and its
 * `Ordered Product` events) share one `event-bulk-create` entry, whose `events.data` lists them: the profile is sent,
 * and resolved by Klaviyo, once.
 */
const ENTRY_HEAD = '{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":';
const ENTRY_MID = '}},"events":{"data":[';
const ENTRY_TAIL = ']}}}';
const EVENT_HEAD_BYTES = Buffer.from('{"type":"event","attributes":{"properties":');
const EMPTY_OBJECT = Buffer.from('{}');
const PREFIX_BYTES = Buffer.from(PREFIX);
const SUFFIX_BYTES = Buffer.from(SUFFIX);
const HEAD_BYTES = Buffer.from(ENTRY_HEAD);
const MID_BYTES = Buffer.from(ENTRY_MID);
const TAIL_BYTES = Buffer.from(ENTRY_TAIL);
/** Bytes an entry adds around its profile: head, middle, tail and the separating comma. */
const ENTRY_OVERHEAD = HEAD_BYTES.length + MID_BYTES.length + TAIL_BYTES.length + 1;

/** `,"key":` of the event attributes every event has, encoded once. */
const KEY_BYTES = new Map<string, Buffer>(['time', 'value', 'value_currency', 'unique_id', 'backfill'].map((k) => [k, Buffer.from(`,"${k}":`)]));
/** `,"metric":{…}}}` closing an event, per metric name (a run has a handful). */
const METRIC_BYTES = new Map<string, Buffer>();

/**
 * Write one event, `{"type":"event","attributes":{…}}` (properties first, then the other attributes in their order,
 * metric last), into `w` as one value.
 */
function writeEvent(w: JsonBytesWriter, payload: EventPayload): void {
  const event = payload.event;
  const metric = event.metric;
  const name = typeof metric === 'string' ? metric : metric.name;
  w.begin();
  w.bytes(EVENT_HEAD_BYTES);
  if (!w.value(event.properties ?? {})) w.bytes(EMPTY_OBJECT);
  for (const k in event) {
    if (k === 'metric' || k === 'properties') continue;
    const v = event[k as keyof typeof event];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    const mark = w.pos - w.start;
    let key = KEY_BYTES.get(k);
    if (key === undefined) key = Buffer.from(',' + JSON.stringify(k) + ':');
    w.bytes(key);
    if (!w.value(v)) w.pos = w.start + mark; // a toJSON() that returned undefined: no such attribute
  }
  let tail = METRIC_BYTES.get(name);
  if (tail === undefined) {
    tail = Buffer.from(',"metric":{"data":{"type":"metric","attributes":{"name":' + JSON.stringify(name) + '}}}}}');
    if (METRIC_BYTES.size < 1000) METRIC_BYTES.set(name, tail);
  }
  w.bytes(tail);
}

/** Bytes in a writer chunk. */
interface ByteRange {
  chunk: Buffer;
  start: number;
  end: number;
}

/** A profile's attributes JSON, shared by the entries of its events. */
interface ProfileBytes extends ByteRange {
  /** Most bytes this profile adds to a body (head, attributes, middle, tail, comma). */
  entryBytes: number;
}

/**
 * One event: its item without its payload (serialized into a writer chunk), and its profile's bytes. The item keeps
 * the positions and the source record (for a reject) of the event, and nothing else on the V8 heap.
 */
export interface EventEntry extends ByteRange {
  item: ItemSpan<'event'>;
  profile: ProfileBytes;
  /** The event carries a `unique_id` (sending it twice stores it once). */
  keyed: boolean;
}

/**
 * Log a duplicate event (`last`: further ones are only counted). Entries keep no payload: the metric and unique_id
 * are read back from the event's serialized bytes (a few times per run at most).
 */
function warnDuplicate(ctx: LoadContext, entry: EventEntry, last: boolean): void {
  const { first } = entry.item;
  const event = JSON.parse(entry.chunk.toString('utf8', entry.start, entry.end)) as {
    attributes: { unique_id?: unknown; metric: { data: { attributes: { name: string } } } };
  };
  ctx.logger.warn('duplicate event: Klaviyo will ignore it (same profile, metric and unique_id as an earlier event of this run)', {
    source: first.source,
    ...(first.line === undefined ? {} : { line: first.line }),
    seq: first.seq,
    metric: event.attributes.metric.data.attributes.name,
    unique_id: event.attributes.unique_id,
    ...(last ? { note: 'further duplicates are only counted (report: items.duplicates)' } : {}),
  });
}

/** Runs of consecutive entries sharing a profile: `[start index, length]` per JSON:API entry of the body. */
function profileRuns(entries: readonly EventEntry[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < entries.length; i++) {
    if (i > 0 && entries[i]!.profile === entries[i - 1]!.profile) runs[runs.length - 1]![1]++;
    else runs.push([i, 1]);
  }
  return runs;
}

/** The request body: one `event-bulk-create` entry per run of events sharing a profile. */
function eventsBody(entries: readonly EventEntry[]): Buffer {
  let size = PREFIX_BYTES.length + SUFFIX_BYTES.length;
  let prev: ProfileBytes | undefined;
  for (const e of entries) {
    if (e.profile !== prev) {
      if (prev !== undefined) size += TAIL_BYTES.length + 1;
      size += HEAD_BYTES.length + (e.profile.end - e.profile.start) + MID_BYTES.length;
      prev = e.profile;
    } else size += 1;
    size += e.end - e.start;
  }
  if (prev !== undefined) size += TAIL_BYTES.length;
  const out = Buffer.allocUnsafe(size);
  let at = PREFIX_BYTES.copy(out, 0);
  prev = undefined;
  for (const e of entries) {
    if (e.profile !== prev) {
      if (prev !== undefined) {
        at += TAIL_BYTES.copy(out, at);
        out[at++] = 44; // ,
      }
      at += HEAD_BYTES.copy(out, at);
      at += e.profile.chunk.copy(out, at, e.profile.start, e.profile.end);
      at += MID_BYTES.copy(out, at);
      prev = e.profile;
    } else out[at++] = 44;
    at += e.chunk.copy(out, at, e.start, e.end);
  }
  if (prev !== undefined) at += TAIL_BYTES.copy(out, at);
  SUFFIX_BYTES.copy(out, at);
  return out;
}

const EVENT_POINTER = /^\/attributes\/events\/data\/(\d+)(?:\/|$)/;

/**
 * The entries a pointer names in a body built by {@link eventsBody}: `…/data/{i}/attributes/events/data/{j}/…` is
 * the j-th event of the i-th profile run; any other pointer into entry i (its profile, the entry itself) names every
 * event of that run.
 */
function locateEvent(pointer: string | undefined, entries: readonly EventEntry[]): Located | undefined {
  const mapped = pointerIndex(ENTRIES_POINTER, pointer);
  if (mapped === undefined) return undefined;
  const run = profileRuns(entries)[mapped.index];
  if (run === undefined) return undefined;
  const [first, length] = run;
  const event = EVENT_POINTER.exec(mapped.field);
  if (event !== null) {
    const j = Number(event[1]);
    return j < length ? { indexes: [first + j], field: mapped.field } : undefined;
  }
  return { indexes: Array.from({ length }, (_, k) => first + k), field: mapped.field };
}

/**
 * Loads event items through `POST /api/event-bulk-create-jobs`. Two events with the same profile + metric +
 * unique_id never share a request (Klaviyo would refuse the whole request); the later one goes into the next
 * request, where Klaviyo accepts and ignores it, so it is acknowledged like any other item.
 */
export class KlaviyoEventLoader implements Loader {
  readonly #ctx: LoadContext;
  readonly #batcher: Batcher<EventEntry>;
  readonly #writer = new JsonBytesWriter();
  #lastProfile: unknown;
  #profileBytes: ProfileBytes | undefined;
  #identity = '';

  constructor(config: EventLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined) {
    this.#ctx = ctx;
    const sender = client
      ? new BulkSender<EventEntry>(client, ENDPOINT, ctx, (entries) => ctx.onAck(entries.map((e) => e.item)))
      : undefined;
    this.#batcher = new Batcher<EventEntry>({
      maxItems: config.batch.events,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: PREFIX_BYTES.length + SUFFIX_BYTES.length,
      concurrency: config.concurrency,
      // an upper bound: the profile part is counted for every event, though consecutive events of a profile share it
      sizeOf: (entry) => entry.end - entry.start + entry.profile.entryBytes,
      onDuplicateKey: (entry) => {
        // Klaviyo accepts the request and ignores this event: count it and say so (the first few individually)
        const n = ++ctx.stats.items.duplicates;
        if (n <= MAX_DUPLICATE_WARNINGS) warnDuplicate(ctx, entry, n === MAX_DUPLICATE_WARNINGS);
      },
      send: sendOrPlan(ctx, sender, ENDPOINT),
      onTooLarge: (entry, bytes) =>
        ctx.onReject([
          itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `event is ${bytes} bytes serialized, more than one request may carry`),
        ]),
    });
  }

  async write(items: LoadItem[]): Promise<void> {
    const w = this.#writer;
    for (const item of items) {
      assertItemKind(item, 'event');
      const payload = item.payload;
      // the events of one group share their profile object: serialize it once; an equal profile right after it
      // (same customer on consecutive rows) shares its bytes too, so both events go into one entry
      if (payload.profile !== this.#lastProfile || this.#profileBytes === undefined) {
        this.#lastProfile = payload.profile;
        w.begin();
        w.value(payload.profile);
        const last = this.#profileBytes;
        const length = w.pos - w.start;
        if (last !== undefined && last.end - last.start === length && w.chunk.compare(last.chunk, last.start, last.end, w.start, w.pos) === 0) {
          w.pos = w.start; // the same bytes as the previous profile's: keep those
        } else {
          this.#profileBytes = { chunk: w.chunk, start: w.start, end: w.pos, entryBytes: length + ENTRY_OVERHEAD };
          this.#identity = profileIdentity(payload.profile);
        }
      }
      writeEvent(w, payload);
      // The entry keeps the item without its payload (already serialized): a batch in flight then holds the
      // positions and the source record (for a reject) of each event, and nothing else on the V8 heap. The record is
      // its source text when the source keeps it (one string), else its row.
      const entry: EventEntry = {
        item:
          item.raw !== undefined
            ? { kind: 'event', first: item.first, last: item.last, raw: item.raw }
            : item.row !== undefined
              ? { kind: 'event', first: item.first, last: item.last, row: item.row }
              : { kind: 'event', first: item.first, last: item.last },
        chunk: w.chunk,
        start: w.start,
        end: w.pos,
        profile: this.#profileBytes!,
        keyed: payload.event.unique_id !== undefined,
      };
      const accepted = this.#batcher.tryAdd(entry, dedupKey(payload.event, this.#identity));
      if (accepted) await accepted;
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
    this.#ctx.logger.debug('event loader closed');
  }
}
