/**
 * Seed generator: deterministic synthetic data at realistic volumes for tests and benchmarks (`--generate
 * profiles=…,events=…,members=…,years=…,seed=…` or `generate: {…}` in a seed file). The same options give exactly
 * the same profiles, events, list and members (ids included). Profiles are created over the period (more of them
 * recently), some updated later, some with email/SMS consent; events of four metrics (Placed Order, Ordered
 * Product, Viewed Product, Active on Site) with product properties, values and unique_ids, each by a profile that
 * existed then; one list whose members joined over time. Events are held compactly (src/emulator/generated-events.ts)
 * and shared by every account; profiles and the list are real records of each account.
 */
import { z } from 'zod';
import { GENERATED_METRICS, GeneratedEvents, base32, mix, seededUlid, ulidPosition } from './generated-events.js';
import { seededRandom } from './ids.js';
import type { Account, ConsentRecord, ProfileRecord } from './state.js';

/** What to generate (`--generate` keys). */
export interface GenerateOptions {
  /** Profiles. @default 1000 */
  profiles?: number;
  /** Events. @default 10000 */
  events?: number;
  /** Members of the generated list "Generated list" (≤ profiles). @default 0 (no list) */
  members?: number;
  /** Years the data spans (ending at `end`). @default 2 */
  years?: number;
  /** PRNG seed. @default 1 */
  seed?: number;
  /** End of the period (RFC 3339). @default midnight UTC of the emulator's clock when the data is generated */
  end?: string;
  /** Campaigns (with their messages) of the generated catalog (src/emulator/catalog-generate.ts). @default 0 */
  campaigns?: number;
  /** Flows (with actions and messages) of the generated catalog. @default 0 */
  flows?: number;
  /** Templates of the generated catalog. @default 0 */
  templates?: number;
}

const count = (max: number) => z.number().int().min(0).max(max);
/** The `generate` options as the seed file and `--generate` accept them. */
export const generateSchema = z.strictObject({
  profiles: count(5_000_000).optional(),
  events: count(50_000_000).optional(),
  members: count(5_000_000).optional(),
  years: z.number().positive().max(20).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  end: z.iso.datetime({ offset: true }).optional(),
  campaigns: count(1_000_000).optional(),
  flows: count(100_000).optional(),
  templates: count(100_000).optional(),
});

/** `k=v,…` (or JSON) into checked options; throws an Error naming the problem. */
export function parseGenerate(text: string): GenerateOptions {
  const t = text.trim();
  let raw: Record<string, unknown> = {};
  if (t.startsWith('{')) raw = JSON.parse(t) as Record<string, unknown>;
  else {
    for (const part of t.split(',')) {
      if (!part.trim()) continue;
      const eq = part.indexOf('=');
      const k = part.slice(0, Math.max(eq, 0)).trim();
      const v = part.slice(eq + 1).trim();
      if (eq < 0 || !k || !v) throw new Error(`Expected \`key=value\` in generate options, got \`${part.trim()}\``);
      raw[k] = k === 'end' ? v : Number(v);
    }
  }
  return checkGenerate(raw);
}

/** Checked generate options; throws an Error naming the first problem. */
export function checkGenerate(value: unknown): GenerateOptions {
  const r = generateSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const what = issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')} (allowed: ${Object.keys(generateSchema.shape).join(', ')})` : `${issue.path.join('.')}: ${issue.message}`;
    throw new Error(`Bad generate options: ${what}`);
  }
  const o = r.data;
  if ((o.members ?? 0) > (o.profiles ?? DEFAULTS.profiles)) throw new Error('Bad generate options: members must not exceed profiles');
  return o;
}

const DEFAULTS = { profiles: 1000, events: 10_000, members: 0, years: 2, seed: 1, campaigns: 0, flows: 0, templates: 0 };
const DAY = 86_400_000;
/** Growth: the fraction `u` of the population/time maps to `u^GROWTH` of the period (more data recently). */
const GROWTH = 0.8;
/** Metric weights, in GENERATED_METRICS order. */
const METRIC_WEIGHTS = [0.1, 0.15, 0.35, 0.4];

/** Everything generated for one set of options (shared by accounts). */
export interface GeneratedData {
  seed: number;
  start: number;
  end: number;
  /** Per profile (index order = created order): created and updated (ms), last event (s, 0: none). */
  created: Float64Array;
  updated: Float64Array;
  lastEvent: Uint32Array;
  events: GeneratedEvents;
  /** Events per metric index. */
  metricCounts: Uint32Array;
  metricIds: string[];
  /** List members: profile indexes in join order and when each joined (ms). */
  memberProfile: Uint32Array;
  memberJoined: Float64Array;
  listId: string;
  profileId: (j: number) => string;
  /** The 6 digits of the profile ids that mark them generated (src/emulator/generated-events.ts, seededUlid). */
  profileTag: string;
}

const cache = new Map<string, GeneratedData>();

/** The data of `options` (generated once per distinct options and end, then reused). */
export function generateData(options: GenerateOptions, now: number): GeneratedData {
  const o = { ...DEFAULTS, ...options };
  const end = options.end !== undefined ? Date.parse(options.end) : Math.floor(now / DAY) * DAY;
  const key = JSON.stringify([o.profiles, o.events, o.members, o.years, o.seed, end]);
  let data = cache.get(key);
  if (!data) {
    if (cache.size >= 2) cache.delete(cache.keys().next().value!);
    data = build(o, end);
    cache.set(key, data);
  }
  return data;
}

function shortId(seed: number, salt: number): string {
  const ALNUM = 'ABCDEFGHIJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  let s = '';
  for (let i = 0; i < 6; i++) s += ALNUM[mix(seed, salt * 16 + i) % ALNUM.length]!;
  return s;
}

function build(o: Required<Omit<GenerateOptions, 'end'>>, end: number): GeneratedData {
  const span = Math.round(o.years * 365.25 * DAY);
  const start = end - span;
  const rand = seededRandom(o.seed);
  const n = o.profiles;
  const created = new Float64Array(n);
  const updated = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const u = j === 0 ? 0 : (j + rand()) / n;
    created[j] = start + Math.floor(span * u ** GROWTH);
    updated[j] = rand() < 0.5 ? created[j]! : created[j]! + Math.floor(rand() * (end - created[j]!));
  }
  const profileTag = base32(mix(o.seed, 1) >>> 2, 6);
  const profileId = (j: number) => seededUlid(created[j]!, profileTag, j);
  const metricIds = GENERATED_METRICS.map((_, m) => shortId(o.seed, m + 1));
  const { cols, metricCounts, lastEvent } = buildEvents(o.events, n, start, span, rand);
  const events = new GeneratedEvents({ ...o, end: new Date(end).toISOString() }, cols, metricIds, profileId, base32(mix(o.seed, 2) >>> 2, 6), end);
  const { memberProfile, memberJoined } = buildMembers(o.members, n, created, end, rand);
  return { seed: o.seed, start, end, created, updated, lastEvent, events, metricCounts, metricIds, memberProfile, memberJoined, listId: shortId(o.seed, 99), profileId, profileTag };
}

/** Event columns in time order: times by sorted exponential spacings, each by a profile created by then. */
function buildEvents(count: number, profiles: number, start: number, span: number, rand: () => number) {
  const sec = new Uint32Array(count);
  const metric = new Uint8Array(count);
  const profile = new Uint32Array(count);
  const metricCounts = new Uint32Array(GENERATED_METRICS.length);
  const lastEvent = new Uint32Array(profiles);
  if (count > 0 && profiles === 0) throw new Error('Bad generate options: events need profiles');
  const gaps = new Float64Array(count + 1);
  let total = 0;
  for (let i = 0; i <= count; i++) total += gaps[i] = -Math.log(1 - rand());
  const startSec = Math.ceil(start / 1000);
  const spanSec = Math.floor((start + span) / 1000) - startSec;
  let acc = 0;
  for (let i = 0; i < count; i++) {
    acc += gaps[i]!;
    const f = acc / total;
    const s = startSec + Math.floor(spanSec * f ** GROWTH);
    sec[i] = s;
    const avail = Math.min(profiles, Math.max(1, Math.floor(profiles * f)));
    const j = Math.floor(rand() * avail);
    profile[i] = j;
    lastEvent[j] = s;
    const r = rand();
    let m = 0;
    for (let w = METRIC_WEIGHTS[0]!; r >= w && m < METRIC_WEIGHTS.length - 1; w += METRIC_WEIGHTS[++m]!);
    metric[i] = m;
    metricCounts[m]!++;
  }
  return { cols: { sec, metric, profile }, metricCounts, lastEvent };
}

/** `count` profiles spread evenly over the index range, each joining between its creation and `end`. */
function buildMembers(count: number, profiles: number, created: Float64Array, end: number, rand: () => number) {
  const joinedOf = new Float64Array(count);
  const order = new Uint32Array(count);
  for (let k = 0; k < count; k++) {
    const j = Math.floor((k * profiles) / count);
    joinedOf[k] = created[j]! + Math.floor(rand() * (end - created[j]!));
    order[k] = k;
  }
  order.sort((a, b) => joinedOf[a]! - joinedOf[b]! || a - b);
  const memberProfile = new Uint32Array(count);
  const memberJoined = new Float64Array(count);
  order.forEach((k, i) => {
    memberProfile[i] = Math.floor((k * profiles) / count);
    memberJoined[i] = joinedOf[k]!;
  });
  return { memberProfile, memberJoined };
}

/** Generated phone numbers: +1 415 followed by PHONE_BASE + the profile's position (7 digits). */
const PHONE_BASE = 2_000_000;
const FIRST = ['Ava', 'Liam', 'Mia', 'Noah', 'Emma', 'Lucas', 'Sofia', 'Omar', 'Yuki', 'Ines', 'Mateo', 'Chloe', 'Ravi', 'Lena', 'Kofi', 'Hana'];
const LAST = ['Smith', 'Garcia', 'Chen', 'Muller', 'Okafor', 'Rossi', 'Dubois', 'Tanaka', 'Silva', 'Novak', 'Jensen', 'Kowalski'];
const PLACES = [
  ['Boston', 'Massachusetts', 'United States', 'America/New_York'],
  ['Austin', 'Texas', 'United States', 'America/Chicago'],
  ['Seattle', 'Washington', 'United States', 'America/Los_Angeles'],
  ['Toronto', 'Ontario', 'Canada', 'America/Toronto'],
  ['London', 'England', 'United Kingdom', 'Europe/London'],
  ['Berlin', 'Berlin', 'Germany', 'Europe/Berlin'],
  ['Sydney', 'New South Wales', 'Australia', 'Australia/Sydney'],
  ['Lyon', 'Auvergne-Rhône-Alpes', 'France', 'Europe/Paris'],
] as const;
/** Shared, frozen location and property objects (the emulator replaces, never mutates, them on writes). */
const LOCATIONS = PLACES.map(([city, region, country, timezone]) => Object.freeze({ city, region, country, timezone }));
const PROPERTIES = Array.from({ length: 24 }, (_, k) =>
  Object.freeze({ signup_source: ['Shopify', 'Popup', 'Checkout', 'Import'][k % 4]!, vip: k % 6 === 0, favorite_category: ['Home', 'Apparel', 'Kitchen'][k % 3]!, loyalty_tier: ['bronze', 'silver', 'gold'][Math.floor(k / 8)]! }),
);

function consent(at: number): ConsentRecord {
  return { consent: 'SUBSCRIBED', timestamp: at, lastUpdated: at, method: 'FORM', methodDetail: 'Generated signup form', customMethodDetail: null, doubleOptin: false };
}

/** Profile `j` as a stored record. */
function profileRecord(d: GeneratedData, j: number, member: boolean): ProfileRecord {
  const h = mix(d.seed ^ 0x27d4eb2f, j);
  const first = FIRST[h % FIRST.length]!;
  const last = LAST[(h >>> 4) % LAST.length]!;
  const strings: ProfileRecord['strings'] = { email: `${first}.${last}.${j}@example.com`.toLowerCase(), first_name: first, last_name: last };
  if ((h >>> 8) % 10 < 3) strings.phone_number = `+1415${PHONE_BASE + j}`;
  if ((h >>> 12) % 10 < 4) strings.external_id = `cust-${d.seed}-${j}`;
  const created = d.created[j]!;
  const rec: ProfileRecord = {
    id: d.profileId(j),
    strings,
    location: LOCATIONS[(h >>> 16) % LOCATIONS.length]!,
    properties: PROPERTIES[(h >>> 20) % PROPERTIES.length]!,
    created,
    updated: d.updated[j]!,
    lastEventDate: d.lastEvent[j] ? d.lastEvent[j]! * 1000 : null,
  };
  const c = (h >>> 24) % 100;
  if (member || c < 25) rec.subscriptions = { email: consent(created), suppression: [], listSuppressions: [] };
  else if (c < 30) {
    rec.subscriptions = { email: { ...consent(created), consent: 'UNSUBSCRIBED', method: 'API' }, suppression: [{ reason: 'UNSUBSCRIBE', timestamp: created }], listSuppressions: [] };
  }
  if (strings.phone_number !== undefined && (h >>> 28) < 5) (rec.subscriptions ??= { suppression: [], listSuppressions: [] }).sms = consent(created);
  return rec;
}

/** Add the generated profiles, metrics, list and events of `d` to a new account. */
export function applyGenerated(account: Account, d: GeneratedData): void {
  GENERATED_METRICS.forEach((name, m) => {
    const id = d.metricIds[m]!;
    const rec = { id, name, created: d.start, updated: d.start, count: d.metricCounts[m]! };
    account.metricsByName.set(name, rec);
    account.metricsById.set(id, rec);
  });
  const isMember = new Uint8Array(d.created.length);
  for (const j of d.memberProfile) isMember[j] = 1;
  const base = account.profileOrder.length;
  for (let j = 0; j < d.created.length; j++) account.profileOrder.push(profileRecord(d, j, isMember[j] === 1));
  // identity lookups computed from the key (no map entry per generated profile)
  const n = d.created.length;
  const at = (j: number) => (j >= 0 && j < n ? account.profileOrder[base + j] : undefined);
  account.profilesById.setFallback((id) => {
    const p = at(ulidPosition(id, d.profileTag));
    return p?.id === id ? p : undefined;
  }, n);
  const match = (re: RegExp, field: 'email' | 'phone_number' | 'external_id', offset = 0) => (key: string) => {
    const m = re.exec(key);
    const p = m ? at(Number(m[1]) - offset) : undefined;
    return p?.strings[field] === key ? p : undefined;
  };
  account.byEmail.setFallback(match(/\.(\d+)@example\.com$/, 'email'), 0);
  account.byPhone.setFallback(match(/^\+1415(\d{7})$/, 'phone_number', PHONE_BASE), 0);
  account.byExternalId.setFallback(match(new RegExp(`^cust-${d.seed}-(\\d+)$`), 'external_id'), 0);
  if (d.memberProfile.length > 0) {
    const list = account.createGroup('list', 'Generated list', d.start, d.listId);
    for (let k = 0; k < d.memberProfile.length; k++) list.members.set(d.profileId(d.memberProfile[k]!), d.memberJoined[k]!);
  }
  account.generated = d.events;
}
