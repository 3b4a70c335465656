/**
 * Events: `POST /api/events` (202; first unique_id per profile+metric wins), `POST /api/event-bulk-create-jobs`
 * (202; ≤1,000 events; one bad item or an in-request unique_id repeat rejects the whole request), reads.
 */
import { ApiError, invalid, invalidParam, type ErrorInit, type Reply } from '../http.js';
import { pageSize, parseFilter, sparseFields, conditionValues } from '../query.js';
import { eventRuns } from '../event-index.js';
import { dateRange, pageLinks, readKeyCursor, readPage } from '../time-index.js';
import { envelopeParser } from '../json-body.js';
import { eventResource, metricResource, profileResource } from '../resources.js';
import type { RequestContext, RouteModule } from '../router.js';
import { Account, type EventRecord, type ProfileRecord } from '../state.js';
import {
  EVENT_PROFILE,
  EVENT_PROFILE_SINGLE,
  hasIdentifier,
  isPlainObject,
  validateEventAttributes,
  validateProfileAttributes,
  type EventInput,
  type Pointer,
  type ProfileInput,
  type ProfileSchemaOptions,
} from '../validate.js';
import { notFound, requireData } from './common.js';

const MAX_BULK_EVENTS = 1000;
const LENIENT = { clearNulls: false, strictConflicts: false };

interface ProfileRef {
  id?: string;
  input: ProfileInput;
}

/** Validate `profile: {data: {type, id?, attributes}}` at `base`. */
function readProfileRef(v: unknown, base: Pointer, errors: ErrorInit[], schema: ProfileSchemaOptions): ProfileRef | null {
  const data = isPlainObject(v) ? v.data : undefined;
  if (!isPlainObject(data)) {
    errors.push(invalid("'profile' must be {data: {type: 'profile', attributes}}.", `${base}`));
    return null;
  }
  if (data.type !== 'profile') {
    errors.push(invalid("'type' must be 'profile'.", `${base}/data/type`));
    return null;
  }
  const attrsAt = { toString: () => `${base}/data/attributes` };
  const r = validateProfileAttributes(data.attributes ?? {}, attrsAt, schema);
  if (!r.ok) {
    errors.push(...r.errors);
    return null;
  }
  const id = typeof data.id === 'string' && data.id !== '' ? data.id : undefined;
  if (!hasIdentifier(r.value, id)) {
    errors.push(invalid('A profile identifier is required (email, phone_number, external_id, anonymous_id or id).', `${attrsAt}`));
    return null;
  }
  return id === undefined ? { input: r.value } : { id, input: r.value };
}

/** Whether a profile named by `id` exists (a reference without an id always does); else an error at `pointer`. */
function profileExists(account: Account, ref: ProfileRef, pointer: string, errors: ErrorInit[]): boolean {
  if (ref.id === undefined || account.profilesById.has(ref.id)) return true;
  errors.push(invalid(`A profile with id ${ref.id} does not exist.`, pointer));
  return false;
}

/** The profile of a validated reference (see {@link profileExists}; the emulator never deletes a profile). */
function resolveProfile(account: Account, ref: ProfileRef, now: number): ProfileRecord {
  if (ref.id) {
    const p = account.profilesById.get(ref.id);
    if (!p) throw new Error(`profile ${ref.id} vanished after validation`);
    account.applyProfile(p, ref.input, LENIENT, now);
    return p;
  }
  return account.upsertProfile(ref.input, LENIENT, now).profile;
}

/** The existing profile a reference names (by id, else by its identifiers), if any. */
function heldProfile(account: Account, ref: ProfileRef): ProfileRecord | undefined {
  if (ref.id) return account.profilesById.get(ref.id);
  return account.matchProfiles(ref.input)[0];
}

/** Request-local identity of a profile (for in-request unique_id repeats): existing profile id or first identifier. */
function identityKey(account: Account, ref: ProfileRef): string {
  if (ref.id) return `id:${ref.id}`;
  const m = account.matchProfiles(ref.input);
  if (m.length > 0) return `id:${m[0]!.id}`;
  const s = ref.input.strings;
  return s.email ? `e:${s.email.toLowerCase()}` : s.phone_number ? `p:${s.phone_number}` : s.external_id ? `x:${s.external_id}` : `a:${s.anonymous_id}`;
}

/**
 * Whether two `profile` members of bulk entries are the same JSON with only strings, numbers, booleans or null as
 * attribute values: then validating one is validating the other (key order is irrelevant there). Nested attribute
 * objects (properties, location) are not compared: such profiles are validated each time.
 */
function sameProfile(a: unknown, b: unknown, depth = 0): boolean {
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  let n = 0;
  for (const k in a) {
    const x = a[k];
    // depth 0: {data}, 1: {type, id, attributes}, 2: the attributes
    if (x !== b[k] && (depth >= 2 || !sameProfile(x, b[k], depth + 1))) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

/** (identity, metric, unique_id) triples seen in one request, chained by unique_id: no key string per event. */
class SeenUniqueIds {
  readonly #head = new Map<string, number>();
  readonly #identity: string[] = [];
  readonly #metric: string[] = [];
  readonly #next: number[] = [];

  /** True when the triple was added before; otherwise adds it. */
  check(identity: string, metric: string, uniqueId: string): boolean {
    const head = this.#head.get(uniqueId);
    for (let k = head ?? -1; k >= 0; k = this.#next[k]!) {
      if (this.#identity[k] === identity && this.#metric[k] === metric) return true;
    }
    this.#head.set(uniqueId, this.#identity.length);
    this.#identity.push(identity);
    this.#metric.push(metric);
    this.#next.push(head ?? -1);
    return false;
  }
}

const BULK_ROOT = '/data/attributes/events-bulk-create/data';

/** Pointer of an event's attributes in a bulk request, rendered only for errors. */
class BulkEventPointer {
  entry = 0;
  event = 0;
  toString(): string {
    return `${BULK_ROOT}/${this.entry}/attributes/events/data/${this.event}/attributes`;
  }
}

function createEvent(ctx: RequestContext): Reply {
  const data = requireData(ctx.body, 'event');
  const attrs = data.attributes;
  const now = ctx.now();
  const errors: ErrorInit[] = [];
  const ev = validateEventAttributes(attrs, '/data/attributes', now, errors, true);
  let ref: ProfileRef | null = null;
  if (isPlainObject(attrs)) {
    if (attrs.profile === undefined) errors.push(invalid("'profile' is a required field.", '/data/attributes/profile'));
    else ref = readProfileRef(attrs.profile, '/data/attributes/profile', errors, EVENT_PROFILE_SINGLE);
  }
  if (ref && !profileExists(ctx.account, ref, '/data/attributes/profile/data/id', errors)) ref = null;
  if (errors.length > 0 || !ev || !ref) throw new ApiError(400, errors.length > 0 ? errors : [invalid('Invalid event.', '/data')]);
  const account = ctx.account;
  const event = ev;
  const profileRef = ref;
  // stored once the 202 is on its way, as for bulk jobs
  return { status: 202, after: () => account.addEvent(resolveProfile(account, profileRef, now), event, now) };
}

function bulkCreate(ctx: RequestContext): Reply {
  const entries = bulkEntries(ctx.body);
  const now = ctx.now();
  const account = ctx.account;
  // duplicateEvents 'reject': an event the profile already holds (sent by an earlier request) refuses the request
  const bulk = new BulkEvents(account, now, ctx.emulator.duplicateEvents === 'reject');
  for (let i = 0; i < entries.length; i++) bulk.entry(i, entries[i]);
  if (bulk.errors.length > 0) throw new ApiError(400, bulk.errors);
  const { events, refs } = bulk;
  // Accepted: like Klaviyo's job queue, the events are stored once the 202 is on its way (every later request sees
  // them). Every entry has events here; its profile is resolved before them. Consecutive entries with the same
  // profile share one ProfileRef: applying the same input again right after would change nothing.
  const apply = (): void => {
    let lastRef: ProfileRef | null = null;
    let profile: ProfileRecord | null = null;
    for (let k = 0; k < events.length; k++) {
      const ref = refs[k]!;
      if (ref !== lastRef || profile === null) profile = resolveProfile(account, ref, now);
      lastRef = ref;
      account.addEvent(profile, events[k]!, now);
    }
  };
  return { status: 202, after: apply };
}

/** The entries of a bulk create job's body: a non-empty array holding at most MAX_BULK_EVENTS events in all. */
function bulkEntries(body: unknown): unknown[] {
  const data = requireData(body, 'event-bulk-create-job');
  const attrs = data.attributes;
  const root = BULK_ROOT;
  const entries = isPlainObject(attrs) && isPlainObject(attrs['events-bulk-create']) ? attrs['events-bulk-create'].data : undefined;
  if (!Array.isArray(entries)) throw new ApiError(400, invalid("'events-bulk-create' must contain a 'data' array.", root));
  if (entries.length === 0) throw new ApiError(400, invalid('At least one event is required.', root));
  let total = 0;
  for (const e of entries) {
    const evs = isPlainObject(e) && isPlainObject(e.attributes) && isPlainObject(e.attributes.events) ? e.attributes.events.data : undefined;
    if (Array.isArray(evs)) total += evs.length;
  }
  if (total > MAX_BULK_EVENTS) throw new ApiError(400, invalid(`A bulk create request may contain at most ${MAX_BULK_EVENTS} events; got ${total}.`, root));
  return entries;
}

/** Validates the entries of one bulk create request in order: its valid events with their profiles, and its errors. */
class BulkEvents {
  readonly errors: ErrorInit[] = [];
  /** The valid events in order, with their entry's profile. */
  readonly events: EventInput[] = [];
  readonly refs: ProfileRef[] = [];
  readonly #seen = new SeenUniqueIds();
  readonly #at = new BulkEventPointer();
  // consecutive entries usually repeat the same profile: its validation and identity are reused
  #prevProfile: unknown = undefined;
  #prevRef: ProfileRef | null = null;
  #prevIdKey = '';
  /** The profile of the entry being read (null: none valid) and its identity key. */
  #ref: ProfileRef | null = null;
  #idKey = '';

  readonly #account: Account;
  readonly #now: number;
  /** An event the profile already holds refuses the request. */
  readonly #strict: boolean;

  constructor(account: Account, now: number, strict: boolean) {
    this.#account = account;
    this.#now = now;
    this.#strict = strict;
  }

  /** Entry `i` of the request. */
  entry(i: number, entry: unknown): void {
    const root = BULK_ROOT;
    const errors = this.errors;
    if (!isPlainObject(entry) || entry.type !== 'event-bulk-create') {
      errors.push(invalid("Each item must be {type: 'event-bulk-create', attributes}.", isPlainObject(entry) ? `${root}/${i}/type` : `${root}/${i}`));
      return;
    }
    const ea = entry.attributes;
    if (!isPlainObject(ea)) {
      errors.push(invalid("'attributes' must be an object.", `${root}/${i}/attributes`));
      return;
    }
    for (const k in ea) {
      if (k !== 'profile' && k !== 'events' && k !== 'backfill') errors.push(invalid(`'${k}' is not a valid field for the resource 'event-bulk-create'.`, `${root}/${i}/attributes/${k}`));
    }
    const entryBackfill = ea.backfill;
    if (entryBackfill !== undefined && entryBackfill !== null && typeof entryBackfill !== 'boolean') errors.push(invalid("'backfill' must be a boolean.", `${root}/${i}/attributes/backfill`));
    this.#profile(i, ea.profile);
    const evs = isPlainObject(ea.events) ? ea.events.data : undefined;
    if (!Array.isArray(evs) || evs.length === 0) {
      errors.push(invalid("'events' must contain a non-empty 'data' array.", `${root}/${i}/attributes/events/data`));
      return;
    }
    this.#at.entry = i;
    for (let j = 0; j < evs.length; j++) this.#event(i, j, evs[j], entryBackfill === true);
  }

  /** Sets `#ref` and `#idKey` to the profile of entry `i` (the previous entry's when it names the same one). */
  #profile(i: number, profile: unknown): void {
    const root = BULK_ROOT;
    if (profile === undefined) {
      this.errors.push(invalid("'profile' is a required field.", `${root}/${i}/attributes/profile`));
      this.#ref = null;
      this.#idKey = '';
    } else if (this.#prevRef !== null && sameProfile(profile, this.#prevProfile)) {
      this.#ref = this.#prevRef;
      this.#idKey = this.#prevIdKey;
    } else {
      let ref = readProfileRef(profile, { toString: () => `${root}/${i}/attributes/profile` }, this.errors, EVENT_PROFILE);
      if (ref && !profileExists(this.#account, ref, `${root}/${i}/attributes/profile/data/id`, this.errors)) ref = null;
      this.#ref = ref;
      this.#idKey = ref ? identityKey(this.#account, ref) : '';
      this.#prevProfile = profile;
      this.#prevRef = ref;
      this.#prevIdKey = this.#idKey;
    }
  }

  /** Event `j` of entry `i` (`entryBackfill`: the entry's backfill is true). */
  #event(i: number, j: number, item: unknown, entryBackfill: boolean): void {
    const root = BULK_ROOT;
    const errors = this.errors;
    if (!isPlainObject(item) || item.type !== 'event') {
      errors.push(invalid("'type' must be 'event'.", `${root}/${i}/attributes/events/data/${j}/type`));
      return;
    }
    this.#at.event = j;
    const ev = validateEventAttributes(item.attributes, this.#at, this.#now, errors, false);
    if (!ev) return;
    // the entry's backfill is the default of its events (an event's own backfill wins)
    if (entryBackfill && (item.attributes as Record<string, unknown>).backfill == null) ev.backfill = true;
    const ref = this.#ref;
    if (ref && ev.uniqueId !== undefined && this.#seen.check(this.#idKey, ev.metricName, ev.uniqueId)) {
      errors.push(invalid(`Duplicate unique_id '${ev.uniqueId}' for the same profile and metric in this request; no events were processed.`, `${root}/${i}/attributes/events/data/${j}/attributes/unique_id`));
      return;
    }
    if (ref && ev.uniqueId !== undefined && this.#strict && this.#account.holdsEvent(heldProfile(this.#account, ref), ev.metricName, ev.uniqueId)) {
      errors.push(invalid(`An event with unique_id '${ev.uniqueId}' already exists for this profile and metric; no events were processed.`, `${root}/${i}/attributes/events/data/${j}/attributes/unique_id`));
      return;
    }
    if (ref) {
      this.events.push(ev);
      this.refs.push(ref);
    }
  }
}

const EVENT_FILTERS = {
  metric_id: ['equals'],
  profile_id: ['equals'],
  datetime: ['greater-than', 'greater-or-equal', 'less-than', 'less-or-equal'],
  timestamp: ['greater-than', 'greater-or-equal', 'less-than', 'less-or-equal'],
} as const;

function listEvents(ctx: RequestContext): Reply {
  const conds = parseFilter(ctx.query.get('filter'), EVENT_FILTERS);
  const size = pageSize(ctx.query, 200, 1000);
  const after = readKeyCursor(ctx.query);
  const sort = ctx.query.get('sort');
  if (sort !== null && !['datetime', '-datetime', 'timestamp', '-timestamp'].includes(sort)) {
    throw new ApiError(400, invalidParam(`'${sort}' is not a valid sort for events.`, 'sort'));
  }
  const one = (field: string): string | null => {
    const c = conds.find((x) => x.field === field);
    return c ? conditionValues(c)[0]! : null;
  };
  const dt = dateRange(conds, 'datetime');
  const ts = dateRange(conds, 'timestamp', 1000);
  const range = { lo: Math.max(dt.lo, ts.lo), hi: Math.min(dt.hi, ts.hi) };
  const { runs, accept } = eventRuns(ctx.account, one('metric_id'), one('profile_id'));
  // two equals conditions on one field: only events matching both (none unless the values are equal)
  const extra = conds.filter((c) => c.field === 'metric_id' || c.field === 'profile_id');
  const check = extra.length > 2 || new Set(extra.map((c) => c.field)).size < extra.length
    ? (e: EventRecord) => extra.every((c) => conditionValues(c).includes(c.field === 'metric_id' ? e.metricId : e.profileId)) && (accept?.(e) ?? true)
    : accept;
  const page = readPage(runs, { range, desc: sort !== null && sort.startsWith('-'), after, size, ...(check ? { accept: check } : {}) });
  const base = ctx.emulator.baseUrl;
  const body: Record<string, unknown> = {
    data: page.items.map((e) => eventResource(e, base, sparseFields(ctx.query, 'event'))),
    links: pageLinks(base, ctx.path, ctx.query, page.next),
  };
  const included = includes(ctx, page.items);
  if (included) body.included = included;
  return { status: 200, body };
}

/** A stored or generated event by id. */
function eventById(account: Account, id: string): EventRecord | undefined {
  const e = account.eventsById.get(id);
  if (e !== undefined || account.generated === null) return e;
  const i = account.generated.position(id);
  return i < 0 ? undefined : account.generated.item(i);
}

function includes(ctx: RequestContext, events: EventRecord[]): unknown[] | null {
  const inc = ctx.query.get('include');
  if (!inc) return null;
  const wanted = new Set(inc.split(','));
  for (const w of wanted) if (w !== 'metric' && w !== 'profile' && w !== 'attributions') throw new ApiError(400, invalidParam(`'${w}' is not an allowed include parameter for this resource.`, 'include'));
  const out: unknown[] = [];
  const base = ctx.emulator.baseUrl;
  if (wanted.has('metric')) {
    for (const id of new Set(events.map((e) => e.metricId))) {
      const m = ctx.account.metricsById.get(id);
      if (m) out.push(metricResource(m, base, sparseFields(ctx.query, 'metric')));
    }
  }
  if (wanted.has('profile')) {
    for (const id of new Set(events.map((e) => e.profileId))) {
      const p = ctx.account.profilesById.get(id);
      if (p) out.push(profileResource(p, base, sparseFields(ctx.query, 'profile')));
    }
  }
  return out;
}

export const eventRoutes: RouteModule = [
  { method: 'POST', path: '/api/events', handler: createEvent },
  { method: 'POST', path: '/api/event-bulk-create-jobs', handler: bulkCreate, parseBody: envelopeParser('event-bulk-create-job', 'events-bulk-create', 'event-bulk-create') },
  { method: 'GET', path: '/api/events', handler: listEvents },
  {
    method: 'GET',
    path: '/api/events/{id}',
    handler(ctx) {
      const e = eventById(ctx.account, ctx.params.id!);
      if (!e) throw notFound('event', ctx.params.id!);
      const body: Record<string, unknown> = { data: eventResource(e, ctx.emulator.baseUrl, sparseFields(ctx.query, 'event')) };
      const included = includes(ctx, [e]);
      if (included) body.included = included;
      return { status: 200, body };
    },
  },
];
