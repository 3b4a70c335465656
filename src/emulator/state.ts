/**
 * The emulator's data: one `Account` per API key (isolated), holding profiles (indexed by id, email, phone and
 * external_id: every identity lookup is a Map hit), events with their dedup keys, metrics, lists, segments and
 * bulk-import jobs. Routes manipulate accounts only through these methods so identity rules live in one place.
 */
import { randomUUID } from 'node:crypto';
import { Catalog, type CatalogCounts, type SavedCatalog } from './catalog.js';
import { ApiError, isoMicros, type ErrorInit } from './http.js';
import type { GeneratedEvents, GenerateSpec } from './generated-events.js';
import type { IdGenerator, UlidBlock } from './ids.js';
import { LookupMap } from './lookup-map.js';
import { TimeIndex } from './time-index.js';
import { PROFILE_STRING_FIELDS, type EventInput, type ProfileInput, type ProfileStringField } from './validate.js';

/**
 * Request counters of an account (or of the whole emulator): every `/api` request, those answered 429, per endpoint
 * key, and per endpoint key the requests its rate limits let through (emulator clock, epoch ms of the first and the
 * last; kept only while limits are on). The benchmarks read the windows a run used from them.
 */
export interface RequestCounters {
  total: number;
  throttled: number;
  byEndpoint: Record<string, number>;
  admitted: Record<string, { first: number; last: number; count: number }>;
}

/**
 * A profile's events, for dedup (profile + metric + unique_id, or + second without unique_id): the event itself, an
 * array while there are few, then a map keyed by unique_id or, for events without one, by time. Held under a symbol
 * so state files (JSON) do not carry it; it is rebuilt from the events on load.
 */
export const PROFILE_EVENTS: unique symbol = Symbol('profile events');
type ProfileEventMap = Map<string | number, EventRecord | EventRecord[]>;
const SMALL_EVENT_INDEX = 16;

function addToEventMap(map: ProfileEventMap, rec: EventRecord): void {
  const key = rec.uniqueId ?? rec.time;
  const hit = map.get(key);
  if (hit === undefined) map.set(key, rec);
  else if (Array.isArray(hit)) hit.push(rec);
  else map.set(key, [hit, rec]);
}

export interface ProfileRecord {
  id: string;
  strings: Partial<Record<ProfileStringField, string>>;
  location: Record<string, unknown>;
  properties: Record<string, unknown>;
  created: number;
  updated: number;
  lastEventDate: number | null;
  /** Consent per channel, set by the subscription endpoints (absent = never subscribed anywhere). */
  subscriptions?: SubscriptionRecord;
  /** Its events, for dedup (see PROFILE_EVENTS). */
  [PROFILE_EVENTS]?: EventRecord | EventRecord[] | ProfileEventMap;
}

/** Klaviyo's consent states. */
export type ConsentStatus = 'SUBSCRIBED' | 'UNSUBSCRIBED' | 'NEVER_SUBSCRIBED';

/** Consent of one channel (email marketing, sms marketing, sms transactional). Times are epoch ms. */
export interface ConsentRecord {
  consent: ConsentStatus;
  /** When consent was given (`consented_at` of a historical import, else the request time). */
  timestamp: number | null;
  lastUpdated: number;
  method: string | null;
  methodDetail: string | null;
  customMethodDetail: string | null;
  doubleOptin: boolean | null;
}

/** A profile's subscriptions as stored by the emulator (rendered in Klaviyo's shape by src/emulator/subscriptions.ts). */
export interface SubscriptionRecord {
  email?: ConsentRecord;
  sms?: ConsentRecord;
  smsTransactional?: ConsentRecord;
  /** Global email suppressions (`UNSUBSCRIBE` after a global unsubscribe). */
  suppression: { reason: string; timestamp: number }[];
  /** Per-list email suppressions (unsubscribed from one list only). */
  listSuppressions: { listId: string; reason: string; timestamp: number }[];
}

/** An event as the state file stores it (and as `EventRecord#toJSON` writes it). */
export interface SavedEvent {
  id: string;
  uuid: string;
  metricId: string;
  profileId: string;
  /** Epoch ms, truncated to the second. */
  time: number;
  properties: Record<string, unknown>;
  backfill: boolean;
  received: number;
  value?: number;
  valueCurrency?: string;
  uniqueId?: string;
}

/**
 * One stored event. Kept small because accounts hold hundreds of thousands of them: the ULID is formatted and the
 * uuid drawn when first read (then kept), the time is held in seconds, absent optional fields are `undefined`.
 */
export class EventRecord {
  #idBlock: UlidBlock | null;
  #idK: number;
  #id: string | undefined;
  #uuid: string | undefined;
  /** Seconds since the epoch (event times are truncated to the second). */
  #sec: number;
  metricId: string;
  profileId: string;
  value: number | undefined;
  valueCurrency: string | undefined;
  uniqueId: string | undefined;
  properties: Record<string, unknown>;
  backfill: boolean;
  /** When the emulator stored it (epoch ms). */
  received: number;

  constructor(
    id: string | UlidBlock,
    metricId: string,
    profileId: string,
    time: number,
    properties: Record<string, unknown>,
    backfill: boolean,
    received: number,
    value?: number,
    valueCurrency?: string,
    uniqueId?: string,
  ) {
    if (typeof id === 'string') {
      this.#idBlock = null;
      this.#idK = 0;
      this.#id = id;
    } else {
      this.#idBlock = id;
      this.#idK = id.size - 1;
      this.#id = undefined;
    }
    this.#uuid = undefined;
    this.#sec = time / 1000;
    this.metricId = metricId;
    this.profileId = profileId;
    this.value = value;
    this.valueCurrency = valueCurrency;
    this.uniqueId = uniqueId;
    this.properties = properties;
    this.backfill = backfill;
    this.received = received;
  }

  /** The event's ULID (monotonic in creation order). */
  get id(): string {
    if (this.#id === undefined) {
      this.#id = this.#idBlock!.format(this.#idK);
      this.#idBlock = null;
    }
    return this.#id;
  }

  get uuid(): string {
    return (this.#uuid ??= randomUUID());
  }

  /** Epoch ms, truncated to the second. */
  get time(): number {
    return this.#sec * 1000;
  }

  toJSON(): SavedEvent {
    const out: SavedEvent = {
      id: this.id,
      uuid: this.uuid,
      metricId: this.metricId,
      profileId: this.profileId,
      time: this.time,
      properties: this.properties,
      backfill: this.backfill,
      received: this.received,
    };
    if (this.value !== undefined) out.value = this.value;
    if (this.valueCurrency !== undefined) out.valueCurrency = this.valueCurrency;
    if (this.uniqueId !== undefined) out.uniqueId = this.uniqueId;
    return out;
  }

  static fromJSON(e: SavedEvent): EventRecord {
    const rec = new EventRecord(e.id, e.metricId, e.profileId, e.time, e.properties, e.backfill, e.received, e.value, e.valueCurrency, e.uniqueId);
    rec.#uuid = e.uuid;
    return rec;
  }
}

export interface MetricRecord {
  id: string;
  name: string;
  created: number;
  updated: number;
  count: number;
}

/** A list or a segment: members with the time they joined. */
export interface GroupRecord {
  id: string;
  name: string;
  created: number;
  updated: number;
  optInProcess?: 'single_opt_in' | 'double_opt_in';
  /** profile id → joined_group_at (epoch ms); insertion order = join order. */
  members: Map<string, number>;
}

export interface ImportErrorRecord {
  id: string;
  code: string;
  title: string;
  detail: string;
  source: { pointer: string };
  original_payload: unknown;
}

export type JobStatus = 'queued' | 'processing' | 'complete' | 'cancelled';

export interface ImportJobRecord {
  id: string;
  status: JobStatus;
  totalCount: number;
  completedCount: number;
  failedCount: number;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  expiresAt: number | null;
  listIds: string[];
  /** Raw profile resources still to process (emptied when complete). */
  pending: unknown[];
  /** Index of the next profile in `pending` to process. */
  cursor: number;
  errors: ImportErrorRecord[];
  profileIds: string[];
}

/** How an upsert resolves identifiers and nulls. */
export interface UpsertMode {
  /** `null` clears a field (profile-import, PATCH); otherwise nulls are ignored (bulk import, events). */
  clearNulls: boolean;
  /** Identifiers that belong to different profiles → 409 (true) or first match by priority email > phone > external_id wins (false). */
  strictConflicts: boolean;
}

export interface AccountSummary {
  profiles: number;
  events: number;
  eventsByMetric: Record<string, number>;
  duplicateEventsIgnored: number;
  metrics: number;
  lists: { id: string; name: string; members: number }[];
  segments: { id: string; name: string; members: number }[];
  jobs: { total: number; queued: number; processing: number; complete: number; importErrors: number };
  /** Subscribe jobs accepted (202) and not applied yet (see EmulatorOptions.subscriptionDelayMs). */
  subscriptionsPending: number;
  /** Campaigns, flows, templates and their parts held. */
  catalog: CatalogCounts;
}

/** A subscribe job accepted and not applied yet. */
export interface PendingConsent {
  /** When it is applied (emulator clock, ms). */
  dueAt: number;
  apply(): void;
}

export class Account {
  readonly key: string;
  readonly profilesById = new LookupMap<ProfileRecord>();
  /** Creation order, for stable cursor paging without sorting. */
  readonly profileOrder: ProfileRecord[] = [];
  readonly byEmail = new LookupMap<ProfileRecord>();
  readonly byPhone = new LookupMap<ProfileRecord>();
  readonly byExternalId = new LookupMap<ProfileRecord>();
  readonly byAnonymousId = new Map<string, ProfileRecord>();
  /** Events in the order they were stored. */
  readonly events: EventRecord[] = [];
  /** Generated events (src/emulator/generate.ts), held apart from `events` in a compact form. */
  generated: GeneratedEvents | null = null;
  /** Profiles in `(created, id)`, `(updated, id)` and id order, for reads (built on first use, kept valid on writes). */
  readonly profilesByCreated = new TimeIndex<ProfileRecord>((p) => p.created, (p) => p.id, () => this.profileOrder);
  readonly profilesByUpdated = new TimeIndex<ProfileRecord>((p) => p.updated, (p) => p.id, () => this.profileOrder);
  readonly profilesInIdOrder = new TimeIndex<ProfileRecord>(() => 0, (p) => p.id, () => this.profileOrder);
  /** id → event, built on the first lookup by id and maintained from then on. */
  #eventsById: Map<string, EventRecord> | null = null;
  readonly metricsByName = new Map<string, MetricRecord>();
  readonly metricsById = new Map<string, MetricRecord>();
  readonly lists = new Map<string, GroupRecord>();
  readonly segments = new Map<string, GroupRecord>();
  readonly jobs = new Map<string, ImportJobRecord>();
  /** Campaigns, flows and templates (src/emulator/catalog.ts). */
  readonly catalog = new Catalog();
  duplicateEventsIgnored = 0;
  /** Subscribe jobs accepted and not applied yet, in acceptance order (applied when due, FIFO). */
  readonly pendingConsent: PendingConsent[] = [];
  /** The metric of the last event (events of a request mostly share a few metrics). */
  #lastMetric: MetricRecord | null = null;
  /** Request counters for this account. */
  readonly requests: RequestCounters = { total: 0, throttled: 0, byEndpoint: {}, admitted: {} };
  readonly #ids: IdGenerator;
  /** Membership change counters and cached member arrays (join order) for paging without re-copying Maps. */
  readonly #memberVersion = new WeakMap<GroupRecord, number>();
  readonly #memberCache = new WeakMap<GroupRecord, { version: number; entries: [string, number][] }>();

  constructor(key: string, ids: IdGenerator) {
    this.key = key;
    this.#ids = ids;
  }

  get ids(): IdGenerator {
    return this.#ids;
  }

  // ---- profiles ----------------------------------------------------------------------------------------------

  /** Distinct profiles matching the input's identifiers, by priority email, phone, external_id, anonymous_id. */
  matchProfiles(p: ProfileInput): ProfileRecord[] {
    const out: ProfileRecord[] = [];
    const s = p.strings;
    if (s.email) addMatch(out, this.byEmail.get(s.email.toLowerCase()));
    if (s.phone_number) addMatch(out, this.byPhone.get(s.phone_number));
    if (s.external_id) addMatch(out, this.byExternalId.get(s.external_id));
    if (s.anonymous_id) addMatch(out, this.byAnonymousId.get(s.anonymous_id));
    return out;
  }

  #index(field: ProfileStringField): Map<string, ProfileRecord> | null {
    switch (field) {
      case 'email':
        return this.byEmail;
      case 'phone_number':
        return this.byPhone;
      case 'external_id':
        return this.byExternalId;
      case 'anonymous_id':
        return this.byAnonymousId;
      default:
        return null;
    }
  }

  static #indexKey(field: ProfileStringField, v: string): string {
    return field === 'email' ? v.toLowerCase() : v;
  }

  /** The profile holding identifier `field=value`, other than `self`. */
  identifierOwner(field: ProfileStringField, value: string, self?: ProfileRecord): ProfileRecord | undefined {
    const owner = this.#index(field)?.get(Account.#indexKey(field, value));
    return owner === self ? undefined : owner;
  }

  createProfile(p: ProfileInput, now: number): ProfileRecord {
    const rec: ProfileRecord = {
      id: this.#ids.ulid(now),
      strings: {},
      location: {},
      properties: {},
      created: now,
      updated: now,
      lastEventDate: null,
    };
    this.profilesById.set(rec.id, rec);
    this.profileOrder.push(rec);
    this.profilesByCreated.touch(rec);
    this.profilesInIdOrder.touch(rec);
    this.applyProfile(rec, p, { clearNulls: false, strictConflicts: false }, now);
    return rec;
  }

  /**
   * Write `p` onto `rec`. Identifier values owned by another profile are skipped when not strict (the caller has
   * checked conflicts when strict).
   */
  applyProfile(rec: ProfileRecord, p: ProfileInput, mode: UpsertMode, now: number): void {
    for (const field of PROFILE_STRING_FIELDS) {
      const v = p.strings[field];
      if (v === undefined) continue;
      if (v === null) {
        if (!mode.clearNulls) continue;
        const old = rec.strings[field];
        if (old !== undefined) this.#index(field)?.delete(Account.#indexKey(field, old));
        delete rec.strings[field];
        continue;
      }
      const idx = this.#index(field);
      if (idx) {
        const k = Account.#indexKey(field, v);
        const owner = idx.get(k);
        if (owner && owner !== rec) continue;
        const old = rec.strings[field];
        if (old !== undefined) idx.delete(Account.#indexKey(field, old));
        idx.set(k, rec);
      }
      rec.strings[field] = v;
    }
    rec.location = mergeObject(rec.location, p.location, mode.clearNulls);
    rec.properties = mergeObject(rec.properties, p.properties, mode.clearNulls);
    rec.updated = now;
    this.profilesByUpdated.touch(rec);
  }

  /** First identifier in `p` owned by a profile other than `rec` (for 409s). */
  conflictFor(rec: ProfileRecord | undefined, p: ProfileInput): ProfileRecord | undefined {
    for (const field of ['email', 'phone_number', 'external_id', 'anonymous_id'] as const) {
      const v = p.strings[field];
      if (typeof v === 'string') {
        const owner = this.identifierOwner(field, v, rec);
        if (owner) return owner;
      }
    }
    return undefined;
  }

  /**
   * Create-or-update by identifiers (and optional id). Throws ApiError 409 `duplicate_profile` in strict mode when
   * identifiers point at different profiles, 404 when `id` is unknown.
   */
  upsertProfile(p: ProfileInput, mode: UpsertMode, now: number, id?: string): { profile: ProfileRecord; created: boolean } {
    let target: ProfileRecord | undefined;
    if (id) {
      target = this.profilesById.get(id);
      if (!target) throw new ApiError(404, { code: 'not_found', detail: `A profile with id ${id} does not exist.`, source: { pointer: '/data/id' } });
    } else {
      const matches = this.matchProfiles(p);
      if (matches.length > 1 && mode.strictConflicts) throw duplicate(matches[1]!.id);
      target = matches[0];
    }
    if (!target) return { profile: this.createProfile(p, now), created: true };
    if (mode.strictConflicts) {
      const other = this.conflictFor(target, p);
      if (other) throw duplicate(other.id);
    }
    this.applyProfile(target, p, mode, now);
    return { profile: target, created: false };
  }

  // ---- metrics & events --------------------------------------------------------------------------------------

  metric(name: string, now: number): MetricRecord {
    const last = this.#lastMetric;
    if (last !== null && last.name === name) return last;
    let m = this.metricsByName.get(name);
    if (!m) {
      let id = this.#ids.shortId();
      while (this.metricsById.has(id)) id = this.#ids.shortId();
      m = { id, name, created: now, updated: now, count: 0 };
      this.metricsByName.set(name, m);
      this.metricsById.set(id, m);
    }
    this.#lastMetric = m;
    return m;
  }

  /** Dedup key of an event: unique_id when present, else its second. */
  static eventKey(profileId: string, metricName: string, e: { uniqueId?: string | undefined; time: number }): string {
    return e.uniqueId !== undefined ? `${profileId}\u0000${metricName}\u0000u${e.uniqueId}` : `${profileId}\u0000${metricName}\u0000t${e.time}`;
  }

  /** Events by id (the index is built on first use). */
  get eventsById(): ReadonlyMap<string, EventRecord> {
    if (this.#eventsById === null) {
      const map = new Map<string, EventRecord>();
      for (const e of this.events) map.set(e.id, e);
      this.#eventsById = map;
    }
    return this.#eventsById;
  }

  /** Whether `profile` already has an event of metric `metricId` with this unique_id (else: this time, no unique_id). */
  static #hasEvent(profile: ProfileRecord, metricId: string, uniqueId: string | undefined, time: number): boolean {
    const index = profile[PROFILE_EVENTS];
    if (index === undefined) return false;
    if (index instanceof EventRecord) return index.uniqueId === uniqueId && index.metricId === metricId && (uniqueId !== undefined || index.time === time);
    if (Array.isArray(index)) {
      for (const e of index) if (e.uniqueId === uniqueId && e.metricId === metricId && (uniqueId !== undefined || e.time === time)) return true;
      return false;
    }
    const hit = index.get(uniqueId ?? time);
    if (hit === undefined) return false;
    if (!Array.isArray(hit)) return hit.metricId === metricId && hit.uniqueId === uniqueId;
    for (const e of hit) if (e.metricId === metricId && e.uniqueId === uniqueId) return true;
    return false;
  }

  /** The stored events of `profile` (in no particular order; generated events are not included). */
  eventsOf(profile: ProfileRecord): EventRecord[] {
    const index = profile[PROFILE_EVENTS];
    if (index === undefined) return [];
    if (index instanceof EventRecord) return [index];
    if (Array.isArray(index)) return [...index];
    return [...index.values()].flat();
  }

  /** Whether `profile` (when there is one) holds an event of metric `metricName` with this unique_id. */
  holdsEvent(profile: ProfileRecord | undefined, metricName: string, uniqueId: string): boolean {
    const m = this.metricsByName.get(metricName);
    return profile !== undefined && m !== undefined && (Account.#hasEvent(profile, m.id, uniqueId, 0) || this.generated?.holds(profile.id, m.id, uniqueId) === true);
  }

  static #indexEvent(profile: ProfileRecord, rec: EventRecord): void {
    const index = profile[PROFILE_EVENTS];
    if (index === undefined) profile[PROFILE_EVENTS] = rec;
    else if (index instanceof EventRecord) profile[PROFILE_EVENTS] = [index, rec];
    else if (!Array.isArray(index)) addToEventMap(index, rec);
    else if (index.length < SMALL_EVENT_INDEX) index.push(rec);
    else {
      const map: ProfileEventMap = new Map();
      for (const e of index) addToEventMap(map, e);
      addToEventMap(map, rec);
      profile[PROFILE_EVENTS] = map;
    }
  }

  /** Record an event for a profile unless its dedup key was seen; returns false for a duplicate (counted). */
  addEvent(profile: ProfileRecord, e: EventInput, now: number): boolean {
    const m = this.metric(e.metricName, now);
    const uid = e.uniqueId;
    if (Account.#hasEvent(profile, m.id, uid, e.time) || (uid !== undefined && this.generated?.holds(profile.id, m.id, uid) === true)) {
      this.duplicateEventsIgnored++;
      return false;
    }
    m.count++;
    const rec = new EventRecord(this.#ids.reserve(e.time), m.id, profile.id, e.time, e.properties, e.backfill, now, e.value, e.valueCurrency, uid);
    this.#store(profile, rec);
    if (profile.lastEventDate === null || e.time > profile.lastEventDate) profile.lastEventDate = e.time;
    return true;
  }

  #store(profile: ProfileRecord | undefined, rec: EventRecord): void {
    this.events.push(rec);
    // an event of an unknown profile (only possible in a hand-edited state file) can never be matched again
    if (profile !== undefined) Account.#indexEvent(profile, rec);
    if (this.#eventsById !== null) this.#eventsById.set(rec.id, rec);
  }

  // ---- lists & segments --------------------------------------------------------------------------------------

  createGroup(kind: 'list' | 'segment', name: string, now: number, id?: string): GroupRecord {
    const map = kind === 'list' ? this.lists : this.segments;
    let gid = id ?? this.#ids.shortId();
    while (!id && map.has(gid)) gid = this.#ids.shortId();
    const g: GroupRecord = { id: gid, name, created: now, updated: now, members: new Map() };
    if (kind === 'list') g.optInProcess = 'single_opt_in';
    map.set(gid, g);
    return g;
  }

  /** Add a profile to a list/segment; keeps the original joined_group_at when already a member. */
  addMember(group: GroupRecord, profileId: string, now: number): void {
    if (!group.members.has(profileId)) {
      group.members.set(profileId, now);
      this.#memberVersion.set(group, (this.#memberVersion.get(group) ?? 0) + 1);
    }
  }

  /** Remove a profile from a list/segment; returns whether it was a member. */
  removeMember(group: GroupRecord, profileId: string): boolean {
    const had = group.members.delete(profileId);
    if (had) this.#memberVersion.set(group, (this.#memberVersion.get(group) ?? 0) + 1);
    return had;
  }

  /** Members as `[profileId, joined_group_at]` in join order (cached until the membership changes). */
  memberEntries(group: GroupRecord): readonly [string, number][] {
    const version = this.#memberVersion.get(group) ?? 0;
    const cached = this.#memberCache.get(group);
    if (cached && cached.version === version && cached.entries.length === group.members.size) return cached.entries;
    const entries = [...group.members.entries()];
    this.#memberCache.set(group, { version, entries });
    return entries;
  }

  // ---- summary & persistence -----------------------------------------------------------------------------------

  summary(): AccountSummary {
    const eventsByMetric: Record<string, number> = {};
    for (const m of this.metricsByName.values()) if (m.count > 0) eventsByMetric[m.name] = m.count;
    const jobs = { total: this.jobs.size, queued: 0, processing: 0, complete: 0, importErrors: 0 };
    for (const j of this.jobs.values()) {
      if (j.status === 'queued') jobs.queued++;
      else if (j.status === 'processing') jobs.processing++;
      else if (j.status === 'complete') jobs.complete++;
      jobs.importErrors += j.errors.length;
    }
    const group = (g: GroupRecord) => ({ id: g.id, name: g.name, members: g.members.size });
    return {
      profiles: this.profilesById.size,
      events: this.events.length + (this.generated?.length ?? 0),
      eventsByMetric,
      duplicateEventsIgnored: this.duplicateEventsIgnored,
      metrics: this.metricsByName.size,
      lists: [...this.lists.values()].map(group),
      segments: [...this.segments.values()].map(group),
      jobs,
      subscriptionsPending: this.pendingConsent.length,
      catalog: this.catalog.counts(),
    };
  }

  toJSON(): SavedAccount {
    const groups = (m: Map<string, GroupRecord>) =>
      [...m.values()].map((g) => ({ ...g, members: [...g.members.entries()] }));
    return {
      key: this.key,
      profiles: this.profileOrder,
      events: this.events.map((e) => e.toJSON()),
      eventKeys: this.events.map((e) => Account.eventKey(e.profileId, this.metricsById.get(e.metricId)?.name ?? '', e)),
      metrics: [...this.metricsByName.values()],
      lists: groups(this.lists),
      segments: groups(this.segments),
      jobs: [...this.jobs.values()],
      duplicateEventsIgnored: this.duplicateEventsIgnored,
      catalog: this.catalog.toJSON(),
      ...(this.generated ? { generated: this.generated.spec } : {}),
    };
  }

  static fromJSON(saved: SavedAccount, ids: IdGenerator): Account {
    const a = new Account(saved.key, ids);
    for (const p of saved.profiles) {
      a.profilesById.set(p.id, p);
      a.profileOrder.push(p);
      for (const field of ['email', 'phone_number', 'external_id', 'anonymous_id'] as const) {
        const v = p.strings[field];
        if (v !== undefined) a.#index(field)!.set(Account.#indexKey(field, v), p);
      }
    }
    for (const m of saved.metrics) {
      a.metricsByName.set(m.name, m);
      a.metricsById.set(m.id, m);
    }
    // the dedup index is rebuilt from the events (`eventKeys` holds exactly their keys)
    for (const e of saved.events) a.#store(a.profilesById.get(e.profileId), EventRecord.fromJSON(e));
    for (const g of saved.lists) a.lists.set(g.id, { ...g, members: new Map(g.members) });
    for (const g of saved.segments) a.segments.set(g.id, { ...g, members: new Map(g.members) });
    for (const j of saved.jobs) a.jobs.set(j.id, j);
    a.duplicateEventsIgnored = saved.duplicateEventsIgnored;
    a.catalog.load(saved.catalog);
    return a;
  }
}

export interface SavedAccount {
  key: string;
  profiles: ProfileRecord[];
  events: SavedEvent[];
  /** Dedup keys of the events (derived from them; kept in the file for readers of older versions). */
  eventKeys: string[];
  metrics: MetricRecord[];
  lists: (Omit<GroupRecord, 'members'> & { members: [string, number][] })[];
  segments: (Omit<GroupRecord, 'members'> & { members: [string, number][] })[];
  jobs: ImportJobRecord[];
  duplicateEventsIgnored: number;
  /** Absent in files written before the emulator held a catalog. */
  catalog?: SavedCatalog;
  /** Options of the account's generated events (they are generated again on load, not stored). */
  generated?: GenerateSpec;
}

function addMatch(out: ProfileRecord[], r: ProfileRecord | undefined): void {
  if (r && !out.includes(r)) out.push(r);
}

function duplicate(id: string): ApiError {
  const e: ErrorInit = {
    code: 'duplicate_profile',
    title: 'Conflict.',
    detail: 'A profile already exists with one of these identifiers.',
    source: { pointer: '/data/attributes' },
    meta: { duplicate_profile_id: id },
  };
  return new ApiError(409, e);
}

function mergeObject(
  current: Record<string, unknown>,
  patch: Record<string, unknown> | null | undefined,
  clearNulls: boolean,
): Record<string, unknown> {
  if (patch === undefined) return current;
  if (patch === null) return clearNulls ? {} : current;
  const out = { ...current };
  for (const k in patch) {
    const v = patch[k];
    if (v === null) {
      if (clearNulls) delete out[k];
    } else out[k] = v;
  }
  return out;
}

/** The profile as Klaviyo's `attributes` (every standard field present, null when unset). */
export function profileAttributes(p: ProfileRecord): Record<string, unknown> {
  const s = p.strings;
  const loc = p.location;
  return {
    email: s.email ?? null,
    phone_number: s.phone_number ?? null,
    external_id: s.external_id ?? null,
    anonymous_id: s.anonymous_id ?? null,
    first_name: s.first_name ?? null,
    last_name: s.last_name ?? null,
    organization: s.organization ?? null,
    locale: s.locale ?? null,
    title: s.title ?? null,
    image: s.image ?? null,
    created: isoMicros(p.created),
    updated: isoMicros(p.updated),
    last_event_date: p.lastEventDate === null ? null : isoMicros(p.lastEventDate),
    location: {
      address1: loc.address1 ?? null,
      address2: loc.address2 ?? null,
      city: loc.city ?? null,
      country: loc.country ?? null,
      latitude: loc.latitude ?? null,
      longitude: loc.longitude ?? null,
      region: loc.region ?? null,
      zip: loc.zip ?? null,
      timezone: loc.timezone ?? null,
      ip: loc.ip ?? null,
    },
    properties: p.properties,
  };
}
