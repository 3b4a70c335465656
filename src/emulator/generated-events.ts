/**
 * Generated events in a compact, column-wise form (src/emulator/generate.ts makes them): per event its second, its
 * metric and its profile in typed arrays (9 bytes an event), everything else (id, uuid, unique_id, properties,
 * value) derived from the seed and the event's position when the event is read. 5,000,000 events take ~45 MB
 * where stored `EventRecord`s with their properties would take gigabytes. The events are held in `(time, id)`
 * order, so they are one sorted run for time-ordered reads; runs per metric and per profile are built on first use.
 * Immutable: accounts generated with the same options share one instance.
 */
import { EventRecord } from './state.js';
import type { SortedRun } from './time-index.js';

/** Resolved generate options (src/emulator/generate.ts). */
export interface GenerateSpec {
  profiles: number;
  events: number;
  members: number;
  years: number;
  seed: number;
  end: string;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Two base-32 digits per entry (00 … ZZ). */
const PAIRS = Array.from({ length: 1024 }, (_, k) => CROCKFORD[k >> 5]! + CROCKFORD[k & 31]!);

/** `n` (a non-negative integer below 2^53) as `digits` (even) Crockford base-32 digits. */
export function base32(n: number, digits: number): string {
  let s = '';
  for (let i = 0; i < digits; i += 2) {
    const q = Math.floor(n / 1024);
    s = PAIRS[n - q * 1024]! + s;
    n = q;
  }
  return s;
}

function unbase32(s: string): number {
  let n = 0;
  for (const c of s) {
    const d = CROCKFORD.indexOf(c);
    if (d < 0) return -1;
    n = n * 32 + d;
  }
  return n;
}

/** A 32-bit hash of two integers (for values derived from the seed and a position). */
export function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

const CODES = Array.from(CROCKFORD, (c) => c.charCodeAt(0));
const ULID_CODES: number[] = new Array<number>(26).fill(48);

/** Write `n` as `digits` base-32 digit codes ending before `end`. */
function putDigits(n: number, digits: number, end: number): void {
  for (let i = end - 1; i >= end - digits; i--) {
    const q = Math.floor(n / 32);
    ULID_CODES[i] = CODES[n - q * 32]!;
    n = q;
  }
}

/**
 * Deterministic ULIDs: the time, 6 digits fixed per kind and seed, then the position (monotonic in it). Built as one
 * flat string (a concatenated one would keep its pieces: hundreds of bytes per id for a million profiles).
 */
export function seededUlid(ms: number, tag: string, i: number): string {
  putDigits(ms, 10, 10);
  for (let k = 0; k < 6; k++) ULID_CODES[10 + k] = tag.charCodeAt(k);
  putDigits(i, 10, 26);
  return String.fromCharCode.apply(null, ULID_CODES);
}

/** The position in a seeded ULID with this tag, or -1. */
export function ulidPosition(id: string, tag: string): number {
  return id.length === 26 && id.slice(10, 16) === tag ? unbase32(id.slice(16)) : -1;
}

/** A product of the generated catalog. */
interface Product {
  ProductID: string;
  SKU: string;
  ProductName: string;
  Categories: string[];
  ItemPrice: number;
  URL: string;
  ImageURL: string;
  Brand: string;
}

const ADJECTIVES = ['Classic', 'Organic', 'Vintage', 'Everyday', 'Premium', 'Compact', 'Wool', 'Linen', 'Ceramic', 'Recycled', 'Bamboo', 'Leather'];
const NOUNS = ['Mug', 'Tote Bag', 'Sweater', 'Notebook', 'Candle', 'Water Bottle', 'Scarf', 'Backpack', 'Tea Set', 'Blanket', 'Sneakers', 'Lamp'];
const CATEGORIES = ['Home', 'Apparel', 'Accessories', 'Kitchen', 'Stationery', 'Outdoor'];
const BRANDS = ['Northwind', 'Acme', 'Fjord & Co', 'Kestrel', 'Lumen'];

function catalog(seed: number): Product[] {
  const out: Product[] = [];
  for (let k = 0; k < 120; k++) {
    const h = mix(seed, 100_000 + k);
    const name = `${ADJECTIVES[h % ADJECTIVES.length]!} ${NOUNS[(h >>> 8) % NOUNS.length]!}`;
    const id = String(1000 + k);
    out.push({
      ProductID: id,
      SKU: `SKU-${id}`,
      ProductName: name,
      Categories: [CATEGORIES[(h >>> 16) % CATEGORIES.length]!],
      ItemPrice: 5 + ((h >>> 4) % 19_500) / 100,
      URL: `https://shop.example.com/products/${id}`,
      ImageURL: `https://shop.example.com/images/${id}.jpg`,
      Brand: BRANDS[(h >>> 20) % BRANDS.length]!,
    });
    Object.freeze(out[k]);
  }
  return out;
}

/** The generated metrics, in metric-index order. */
export const GENERATED_METRICS = ['Placed Order', 'Ordered Product', 'Viewed Product', 'Active on Site'] as const;

/** Columns of the events, in `(time, position)` order. */
export interface EventColumns {
  /** Seconds since the epoch, ascending. */
  sec: Uint32Array;
  /** Index into the metric ids. */
  metric: Uint8Array;
  /** Index into the profile ids. */
  profile: Uint32Array;
}

export class GeneratedEvents implements SortedRun<EventRecord> {
  readonly seed: number;
  readonly cols: EventColumns;
  /** Metric id by metric index. */
  readonly metricIds: readonly string[];
  /** Profile id of a profile index. */
  readonly profileId: (j: number) => string;
  /** When the events were "received" (epoch ms). */
  readonly received: number;
  /** The options that generated them, `end` resolved (a state file stores them instead of the events). */
  readonly spec: GenerateSpec;
  readonly #tag: string;
  readonly #products: Product[];
  #byMetric: Map<string, PositionRun> | null = null;
  #byProfile: { start: Uint32Array; pos: Uint32Array } | null = null;

  constructor(spec: GenerateSpec, cols: EventColumns, metricIds: readonly string[], profileId: (j: number) => string, tag: string, received: number) {
    this.spec = spec;
    this.seed = spec.seed;
    this.cols = cols;
    this.metricIds = metricIds;
    this.profileId = profileId;
    this.#tag = tag;
    this.received = received;
    this.#products = catalog(spec.seed);
  }

  get length(): number {
    return this.cols.sec.length;
  }

  key(i: number): number {
    return this.cols.sec[i]! * 1000;
  }

  id(i: number): string {
    return seededUlid(this.cols.sec[i]! * 1000, this.#tag, i);
  }

  /** The position of a generated event id, or -1. */
  position(id: string): number {
    const i = ulidPosition(id, this.#tag);
    return i >= 0 && i < this.length && this.id(i) === id ? i : -1;
  }

  /** Event `i` as a stored event (a new object on every call). */
  item(i: number): EventRecord {
    const m = this.cols.metric[i]!;
    const { properties, value, uniqueId } = this.#details(i, m);
    const h = mix(this.seed ^ 0x5bd1e995, i);
    const b = hex(mix(h, 1));
    const c = hex(mix(h, 2));
    const uuid = `${hex(h)}-${b.slice(0, 4)}-4${b.slice(5)}-a${c.slice(1, 4)}-${c.slice(4)}${hex(mix(h, 3))}`;
    const time = this.key(i);
    return EventRecord.fromJSON({
      id: seededUlid(time, this.#tag, i),
      uuid,
      metricId: this.metricIds[m]!,
      profileId: this.profileId(this.cols.profile[i]!),
      time,
      properties,
      backfill: false,
      received: this.received,
      value,
      valueCurrency: value === undefined ? undefined : 'USD',
      uniqueId,
    });
  }

  /** Properties, value and unique_id of event `i` of metric index `m`. */
  #details(i: number, m: number): { properties: Record<string, unknown>; value?: number; uniqueId: string } {
    const h = mix(this.seed, i);
    const products = this.#products;
    const p = products[h % products.length]!;
    const uid = `${this.seed}-${i}`;
    switch (GENERATED_METRICS[m]) {
      case 'Placed Order': {
        const n = 1 + ((h >>> 12) % 3);
        const items = Array.from({ length: n }, (_, k) => {
          const x = products[(h + k * 37) % products.length]!;
          return { ProductID: x.ProductID, ProductName: x.ProductName, Categories: x.Categories, Brand: x.Brand, ItemPrice: x.ItemPrice, Quantity: 1 + ((h >>> (16 + k)) & 1) };
        });
        const value = Math.round(items.reduce((s, x) => s + x.ItemPrice * x.Quantity, 0) * 100) / 100;
        const orderId = `ORD-${uid}`;
        const properties = { OrderId: orderId, ItemNames: items.map((x) => x.ProductName), Categories: [...new Set(items.flatMap((x) => x.Categories))], Brands: [...new Set(items.map((x) => x.Brand))], DiscountCode: (h & 7) === 0 ? 'WELCOME10' : null, Items: items };
        return { properties, value, uniqueId: orderId };
      }
      case 'Ordered Product': {
        const quantity = 1 + ((h >>> 12) % 3);
        return { properties: { ...p, OrderId: `ORD-${this.seed}-${(h >>> 3) % (i + 1)}`, Quantity: quantity }, value: Math.round(p.ItemPrice * quantity * 100) / 100, uniqueId: `OP-${uid}` };
      }
      case 'Viewed Product':
        // the catalog's own (frozen) product: properties are copied, never changed, when an event is read
        return { properties: p as unknown as Record<string, unknown>, uniqueId: `VP-${uid}` };
      default:
        return { properties: { page: (h & 3) === 0 ? 'https://shop.example.com/' : p.URL, $session_id: `s-${this.seed}-${(h >>> 2) % 1_000_000}` }, uniqueId: `AS-${uid}` };
    }
  }

  /** Whether a generated event of this profile and metric has this unique_id (for dedup of events sent later). */
  holds(profileId: string, metricId: string, uniqueId: string): boolean {
    const m = /^(?:ORD|OP|VP|AS)-(\d+)-(\d+)$/.exec(uniqueId);
    const i = m && Number(m[1]) === this.seed ? Number(m[2]) : -1;
    if (!(i >= 0 && i < this.length)) return false;
    const metric = this.cols.metric[i]!;
    return this.metricIds[metric] === metricId && this.profileId(this.cols.profile[i]!) === profileId && this.#details(i, metric).uniqueId === uniqueId;
  }

  /** The events of one metric as a sorted run (empty for an unknown metric). */
  metricRun(metricId: string): SortedRun<EventRecord> {
    if (this.#byMetric === null) {
      const counts = new Uint32Array(this.metricIds.length);
      for (const m of this.cols.metric) counts[m]!++;
      const lists = Array.from(counts, (c) => new Uint32Array(c));
      const fill = new Uint32Array(this.metricIds.length);
      const metric = this.cols.metric;
      for (let i = 0; i < metric.length; i++) lists[metric[i]!]![fill[metric[i]!]!++] = i;
      this.#byMetric = new Map(this.metricIds.map((id, m) => [id, new PositionRun(this, lists[m]!)]));
    }
    return this.#byMetric.get(metricId) ?? new PositionRun(this, new Uint32Array(0));
  }

  /** The events of one profile as a sorted run (empty for a profile without generated events). */
  profileRun(profileId: string): SortedRun<EventRecord> {
    if (this.#byProfile === null) {
      const profile = this.cols.profile;
      let n = 0;
      for (const j of profile) if (j + 1 > n) n = j + 1;
      const start = new Uint32Array(n + 1);
      for (const j of profile) start[j + 1]!++;
      for (let j = 0; j < n; j++) start[j + 1]! += start[j]!;
      const fill = start.slice(0, n);
      const pos = new Uint32Array(profile.length);
      for (let i = 0; i < profile.length; i++) pos[fill[profile[i]!]!++] = i;
      this.#byProfile = { start, pos };
    }
    const { start, pos } = this.#byProfile;
    const n = start.length - 1;
    // a generated profile id holds its position (seededUlid): no map from id to position
    const j = n > 0 ? ulidPosition(profileId, this.profileId(0).slice(10, 16)) : -1;
    const mine = j >= 0 && j < n && this.profileId(j) === profileId;
    return new PositionRun(this, mine ? pos.subarray(start[j]!, start[j + 1]!) : new Uint32Array(0));
  }
}

/** A subset of the generated events (ascending positions) as a sorted run. */
class PositionRun implements SortedRun<EventRecord> {
  readonly #all: GeneratedEvents;
  readonly #pos: Uint32Array;
  constructor(all: GeneratedEvents, pos: Uint32Array) {
    this.#all = all;
    this.#pos = pos;
  }
  get length(): number {
    return this.#pos.length;
  }
  key(i: number): number {
    return this.#all.key(this.#pos[i]!);
  }
  id(i: number): string {
    return this.#all.id(this.#pos[i]!);
  }
  item(i: number): EventRecord {
    return this.#all.item(this.#pos[i]!);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
