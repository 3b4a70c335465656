import { EtlError } from '../core/errors.js';
import type { SourcePosition, SourceRecord } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import type { EndpointKey } from '../klaviyo/endpoints.js';
import { indexIncluded, type ApiResource, type IncludedIndex, type ResourcePlan } from './klaviyo-resources.js';

/*
 * Partitioned cursors: a Klaviyo collection read as several time ranges at once.
 *
 * Plan: per stream (a metric, a channel), the first and last time come from one sorted page of size 1 each: the
 * stream starts as one range [first, last]. Workers (at most `concurrency` requests in flight, every request paced
 * by the client's rate limiter) each read one range at a time, page after page, sorted by time. While a worker
 * would otherwise sit idle, a range whose page has a next link is split at that page boundary: the range goes on
 * as a fresh query from the page's last instant (`lo` = that instant, the ids already read at it in `skip`) up to
 * the first of equal shares of what is left, one more share per idle worker, each a new range; so every worker has
 * a range after the first page (not after log2(concurrency) rounds of pages, each a latency long: at 250 ms and 30
 * workers that took over a second, most of an L endpoint's first burst windows), and a range that turns out large
 * is split again when a worker goes idle. A split point is a whole second. Bounds
 * are sent as whole seconds (`open` resources only take greater-than / less-than); records outside [lo, hi) are
 * dropped client-side, so loose filters never repeat a record.
 *
 * Output: pages go through a bounded queue (memory stays flat) and the generator yields the records of one page
 * after another, in the order pages arrive; each record carries `part`, the ISO start of its range as first planned
 * (a range split off starts its own part), which sorts in time order. Destinations write parts apart and join them
 * in key order, so the published output is in time order whatever range answered first.
 *
 * Resume: the `cursor` of every record holds the state of all ranges not yet done when it was yielded (bounds,
 * part, the page to yield next, ids at the lower bound) plus the record's own range, page index and id: a resumed
 * run reads every range from where it stopped and skips, on the record's page, through that record.
 */

/** One range of the committed state (what has been yielded). */
export interface RangeState {
  /** Stream index. */
  s: number;
  /** Output part key: ISO start of the range as first planned. */
  part: string;
  /** Lower bound (inclusive), microseconds since the epoch; null: none. */
  lo: number | null;
  /** Upper bound (exclusive), microseconds; null: none. */
  hi: number | null;
  /** Path + query of the next page to yield; absent: the range's first page, built from its bounds. */
  page?: string;
  /** Ids at instant `lo` already yielded (a range restarted at a page boundary). */
  skip?: string[];
}

/** The position cursor of a record read through ranges. */
export interface RangeCursor {
  v: 2;
  /** Every range not yet done when the record was yielded. */
  ranges: RangeState[];
  /** Index in `ranges` of the record's range. */
  r: number;
  /** 0-based index of the record in its page. */
  index: number;
  id: string;
  /** The run's last instant (as Klaviyo wrote it): the watermark when the run completes. */
  last: string | null;
  /** Ids yielded at exactly `last`. */
  top: string[];
}

/** How the reader is set up. */
export interface RangeReaderOptions {
  client: () => KlaviyoClient;
  plan: ResourcePlan;
  /** Ranges read at once. */
  concurrency: number;
  /** Lower / upper bounds of this run (microseconds; upper exclusive). */
  lower?: number;
  upper?: number;
  /** A record the previous run exported (the watermark's instant and ids): dropped. */
  covered?: (key: number, id: string) => boolean;
  /** Ids the previous watermark holds at `key` (kept in this run's watermark when its last instant is the same). */
  previousTop?: { key: number; ids: string[] };
  /** Resume after this record. */
  resume?: RangeCursor;
  firstSeq: number;
  limit?: number;
  signal?: AbortSignal;
  /** What a page failure says it was reading (`the events`). */
  what: string;
}

interface Page {
  data: ApiResource[];
  included: unknown;
  next: string | undefined;
}

interface Kept {
  index: number;
  id: string;
  resource: ApiResource;
  iso: string;
  /** instantKey(iso), once per record. */
  key: number | undefined;
}

/** A fetched page on its way to the generator, with the state its range moves to once it is yielded. */
interface PageItem {
  range: RangeState;
  records: Kept[];
  included: unknown;
  /** `included` by type and id, built when the page's first record is yielded. */
  index?: IncludedIndex;
  after: { done: true } | { done?: false; page?: string; lo?: number | null; skip?: string[] };
}

const SECOND = 1_000_000;
/**
 * A range split after its stream's first split gets at least this many pages a share, as estimated (see
 * #splitPoints): 100,000 members took ~1,120 requests at 2, ~1,070 at 4 (1,002 pages and edges at least).
 */
const MIN_PAGES_PER_SHARE = 4;
/**
 * Records of fetched pages waiting for the generator before workers stop asking for more (at least 2 pages: events
 * at 1,000 per page; members and profiles at 100: 20). The queue fills when the consumer is the slower side, and
 * that is when a longer one helps: the tiers' allowance comes in windows (an L endpoint spends its minute's 700 in
 * ~10 s, then waits), and a page not asked for while the consumer catches up is allowance the window takes with it;
 * the consumer catches up while the client waits for the next window. With 2 pages, the members export's workers
 * spent a third of their time waiting for the consumer in a run's first seconds (code not yet optimized), ~20
 * requests/s of L's 75. Memory: at most this + `concurrency` pages.
 */
const QUEUED_RECORDS = 2_000;
/** …and at most this many pages (pages of 10 lists or templates: 20, not 200). */
const MAX_QUEUED_PAGES = 20;

/**
 * An ISO 8601 date-time with an offset → microseconds since the epoch (Date.parse stops at milliseconds).
 * Undefined for a value that is not one.
 */
export function instantKey(iso: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/i.exec(iso);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]!.length === 5 ? m[3]!.slice(0, 3) + ':' + m[3]!.slice(3) : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const micros = Number(((m[2] ?? '') + '000000').slice(0, 6));
  return ms * 1000 + micros;
}

/** A whole-second key → `2026-01-01T00:00:00+00:00` (the form Klaviyo's filter examples use). */
function filterTime(key: number): string {
  return new Date(Math.floor(key / SECOND) * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

const floorSec = (key: number): number => Math.floor(key / SECOND) * SECOND;
const ceilSec = (key: number): number => Math.ceil(key / SECOND) * SECOND;

/** Part key of a range starting at `lo`: ISO, fixed width, so keys sort in time order (stream index after `~`). */
function partKey(lo: number | null, stream: number, streams: number): string {
  const iso = lo === null ? '0000-00-00T00:00:00.000Z' : new Date(Math.floor(lo / 1000)).toISOString();
  return streams > 1 ? `${iso}~${String(stream).padStart(3, '0')}` : iso;
}

/** Wakes every waiter on each `notify`. */
class Notifier {
  #waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** Reads a resource as time ranges at once; `records()` yields one record at a time. */
export class RangeReader {
  readonly #o: RangeReaderOptions;
  /** Committed state: ranges not done, in the order they were planned or split off. */
  #ranges: RangeState[] = [];
  /** Ranges no worker has taken yet (their first page not fetched). */
  #pending: RangeState[] = [];
  /** Streams split at least once (see #splitPoints). */
  readonly #spread = new Set<number>();
  #queue: PageItem[] = [];
  #busy = 0;
  #workers = 0;
  #failure: unknown;
  #stopped = false;
  readonly #changed = new Notifier();
  #version = 0;
  #last: string | null = null;
  #lastKey: number | undefined;
  #top: string[] = [];
  /** Resume: skip through this record of the first page its range yields. */
  #resumeAt: { range: RangeState; index: number; id: string } | undefined;
  #complete = false;

  constructor(options: RangeReaderOptions) {
    this.#o = options;
  }

  /** The run's last instant and the ids yielded at it, once every range is done; undefined before or when empty. */
  result(): { complete: boolean; last: string | null; ids: string[] } {
    return { complete: this.#complete, last: this.#last, ids: [...this.#top].sort() };
  }

  async *records(): AsyncGenerator<SourceRecord> {
    for await (const batch of this.batches()) yield* batch;
  }

  /**
   * The records one page at a time (the runner takes these: one promise per page instead of one per record, over
   * two generator layers). A page's records are made when it is taken, against the committed state then: a range
   * split off while the page is processed has yielded nothing yet, so a cursor without it is as exact.
   */
  async *batches(): AsyncGenerator<SourceRecord[]> {
    await this.#start();
    const workers = Array.from({ length: this.#o.concurrency }, () => this.#work());
    let seq = this.#o.firstSeq;
    let yielded = 0;
    let snapVersion = -1;
    let snap: RangeState[] = [];
    try {
      for (;;) {
        const item = await this.#take();
        if (item === undefined) break;
        if (this.#o.signal?.aborted) return;
        const left = this.#o.limit === undefined ? item.records.length : Math.min(item.records.length, this.#o.limit - yielded);
        if (snapVersion !== this.#version) {
          snap = this.#ranges.map((r) => ({ ...r }));
          snapVersion = this.#version;
        }
        const r = this.#ranges.indexOf(item.range);
        const batch: SourceRecord[] = [];
        for (let i = 0; i < left; i++) batch.push(this.#record(item, item.records[i]!, snap, r, seq++));
        yielded += batch.length;
        if (batch.length > 0) yield batch;
        if (left < item.records.length) return; // the limit: the page is not done
        this.#completePage(item);
      }
      if (this.#failure !== undefined) throw this.#failure;
      if (!this.#o.signal?.aborted) this.#complete = true;
    } finally {
      this.#stopped = true;
      this.#changed.notify();
      await Promise.allSettled(workers);
    }
  }

  #record(item: PageItem, rec: Kept, snap: RangeState[], r: number, seq: number): SourceRecord {
    const key = rec.key;
    if (key !== undefined && key === this.#lastKey && !this.#top.includes(rec.id)) this.#top = [...this.#top, rec.id];
    const cursor: RangeCursor = { v: 2, ranges: snap, r, index: rec.index, id: rec.id, last: this.#last, top: this.#top };
    const pos: SourcePosition = { seq, source: this.#o.plan.source, cursor: cursor as unknown as Record<string, unknown> };
    item.index ??= indexIncluded(item.included);
    const row = this.#o.plan.row(rec.resource, item.index);
    const out: SourceRecord = { pos, row };
    if (this.#o.plan.time) out.part = item.range.part;
    if (!rec.id || (this.#o.plan.time && key === undefined)) {
      out.error = { code: 'INVALID_VALUE', message: rec.id ? `record without a valid ${this.#o.plan.time!.field}` : 'record without an id' };
    }
    return out;
  }

  /** The range's page was yielded: its committed state moves on. */
  #completePage(item: PageItem): void {
    const r = item.range;
    const after = item.after;
    if (after.done) {
      const i = this.#ranges.indexOf(r);
      if (i >= 0) this.#ranges.splice(i, 1);
    } else {
      if (after.page === undefined) delete r.page;
      else r.page = after.page;
      if (after.lo !== undefined) r.lo = after.lo;
      if (after.skip === undefined) delete r.skip;
      else r.skip = after.skip;
    }
    this.#version++;
    this.#changed.notify();
  }

  async #take(): Promise<PageItem | undefined> {
    for (;;) {
      if (this.#failure !== undefined || this.#o.signal?.aborted) return undefined;
      const item = this.#queue.shift();
      if (item) {
        this.#changed.notify();
        return item;
      }
      if (this.#workers === 0) return undefined;
      await this.#changed.wait();
    }
  }

  // ---------------------------------------------------------------- planning

  async #start(): Promise<void> {
    const resume = this.#o.resume;
    if (resume) {
      this.#ranges = resume.ranges.map((r) => ({ ...r, ...(r.skip ? { skip: [...r.skip] } : {}) }));
      this.#last = resume.last;
      this.#lastKey = resume.last === null ? undefined : instantKey(resume.last);
      this.#top = [...resume.top];
      const at = this.#ranges[resume.r];
      if (at) this.#resumeAt = { range: at, index: resume.index, id: resume.id };
    } else {
      await this.#plan();
    }
    this.#pending = [...this.#ranges];
  }

  async #plan(): Promise<void> {
    const { plan, lower, upper } = this.#o;
    const streams = plan.streams.length;
    if (!plan.time) {
      this.#ranges = plan.streams.map((_, s) => ({ s, part: partKey(null, s, streams), lo: null, hi: null }));
      return;
    }
    for (let s = 0; s < streams; s++) {
      const first = await this.#edge(s, lower, upper, false);
      if (first === undefined) continue;
      const last = await this.#edge(s, lower, upper, true);
      if (last === undefined) continue;
      const lastKey = instantKey(last)!;
      if (this.#lastKey === undefined || lastKey > this.#lastKey) {
        this.#lastKey = lastKey;
        this.#last = last;
      }
      // one range per stream: workers split it at page boundaries while some of them would sit idle
      const lo = floorSec(instantKey(first)!);
      this.#ranges.push({ s, part: partKey(lo, s, streams), lo, hi: lastKey + 1 });
    }
    const prev = this.#o.previousTop;
    if (prev && prev.key === this.#lastKey) this.#top = [...prev.ids];
  }

  /** The first (or last) time of a stream within the run's bounds: one sorted page of size 1. */
  async #edge(s: number, lower: number | undefined, upper: number | undefined, last: boolean): Promise<string | undefined> {
    const field = this.#o.plan.time!.field;
    const path = this.#path(s, lower ?? null, upper ?? null, 1, `${last ? '-' : ''}${field}`);
    const page = await this.#fetch(path);
    for (const r of page.data) {
      const iso = r.attributes?.[field];
      const key = typeof iso === 'string' ? instantKey(iso) : undefined;
      if (key === undefined) continue;
      if ((lower !== undefined && key < lower) || (upper !== undefined && key >= upper)) continue;
      return iso as string;
    }
    // a loose bound (a whole second) let in a record outside the run's bounds: ask for every record at that edge
    if (page.data.length === 0) return undefined;
    return this.#edgeSlow(s, lower, upper, last);
  }

  /** {@link #edge} when the first sorted record lies outside the exact bounds: walk the sorted pages. */
  async #edgeSlow(s: number, lower: number | undefined, upper: number | undefined, last: boolean): Promise<string | undefined> {
    const field = this.#o.plan.time!.field;
    let path: string | undefined = this.#path(s, lower ?? null, upper ?? null, this.#o.plan.pageSize ?? 100, `${last ? '-' : ''}${field}`);
    while (path !== undefined) {
      const page = await this.#fetch(path);
      for (const r of page.data) {
        const iso = r.attributes?.[field];
        const key = typeof iso === 'string' ? instantKey(iso) : undefined;
        if (key === undefined || (lower !== undefined && key < lower) || (upper !== undefined && key >= upper)) continue;
        return iso as string;
      }
      path = page.next;
    }
    return undefined;
  }

  /** Path + query of a range's first page (sorted ascending) or of an edge query. */
  #path(s: number, lo: number | null, hi: number | null, size: number | undefined, sort?: string): string {
    const { plan } = this.#o;
    const params = new URLSearchParams();
    if (size !== undefined) params.set('page[size]', String(size));
    const conds: string[] = [];
    const stream = plan.streams[s];
    if (stream?.filter) conds.push(stream.filter);
    const time = plan.time;
    if (time) {
      params.set('sort', sort ?? time.field);
      if (lo !== null) {
        conds.push(time.ops === 'range' ? `greater-or-equal(${time.field},${filterTime(lo)})` : `greater-than(${time.field},${filterTime(floorSec(lo) - SECOND)})`);
      }
      if (hi !== null && time.ops !== 'lower') conds.push(`less-than(${time.field},${filterTime(ceilSec(hi))})`);
    }
    if (conds.length > 0) params.set('filter', conds.join(','));
    for (const [k, v] of Object.entries(plan.params)) params.set(k, v);
    return `${plan.path}?${params.toString()}`;
  }

  async #fetch(path: string, endpoint: EndpointKey = this.#o.plan.endpoint): Promise<Page> {
    const response = await this.#o.client().request(endpoint, { path });
    if (!response.ok) {
      const detail = response.errors.map((e) => e.detail ?? e.title ?? e.code).join('; ') || `status ${response.status}`;
      throw new EtlError(response.status === 404 ? 'SOURCE_NOT_FOUND' : 'KLAVIYO_REQUEST_REJECTED', `Klaviyo answered ${response.status} reading ${this.#o.what}: ${detail}`, {
        context: { component: 'source', source: this.#o.plan.source, status: response.status },
      });
    }
    const body = response.body as { data?: unknown; included?: unknown; links?: { next?: unknown } } | undefined;
    const data = Array.isArray(body?.data) ? (body.data as ApiResource[]) : [];
    const next = typeof body?.links?.next === 'string' && body.links.next !== '' ? relative(body.links.next) : undefined;
    return { data, included: body?.included, next };
  }

  // ---------------------------------------------------------------- workers

  /** One worker: takes pending ranges and reads each to its end. */
  async #work(): Promise<void> {
    this.#workers++;
    try {
      for (;;) {
        if (this.#stopped || this.#failure !== undefined || this.#o.signal?.aborted) return;
        const range = this.#pending.shift();
        if (range) {
          this.#busy++;
          try {
            await this.#readRange(range);
          } finally {
            this.#busy--;
          }
          continue;
        }
        if (this.#busy === 0) return; // nothing pending and nobody left to split a range off
        await this.#changed.wait();
      }
    } catch (error) {
      this.#failure ??= error;
    } finally {
      this.#workers--;
      this.#changed.notify();
    }
  }

  /** Reads one range page by page, handing each page to the queue. */
  async #readRange(range: RangeState): Promise<void> {
    const time = this.#o.plan.time;
    let lo = range.lo;
    let skip = new Set(range.skip ?? []);
    let path = range.page ?? this.#path(range.s, lo, range.hi, this.#o.plan.pageSize);
    // ids read at the highest instant of this range so far (a restart from that instant skips them)
    let tieKey = lo ?? -1;
    let tieIds = new Set(skip);
    /** The first instant of the page just read (how much time a page spans, see #splitPoints). */
    let pageFirst: number | undefined;
    const maxQueue = Math.max(2, Math.min(MAX_QUEUED_PAGES, Math.floor(QUEUED_RECORDS / (this.#o.plan.pageSize ?? 100))));
    for (;;) {
      while (this.#queue.length >= maxQueue && !this.#stopped) await this.#changed.wait();
      if (this.#stopped || this.#failure !== undefined || this.#o.signal?.aborted) return;
      const page = await this.#fetch(path);
      if (this.#o.plan.expand) {
        const included = Array.isArray(page.included) ? (page.included as ApiResource[]) : [];
        page.included = included;
        await this.#o.plan.expand({ included }, (endpoint, p) => this.#fetch(p, endpoint));
      }
      const records: Kept[] = [];
      let ended = false;
      pageFirst = undefined;
      for (let index = 0; index < page.data.length; index++) {
        const resource = page.data[index]!;
        const id = typeof resource.id === 'string' ? resource.id : '';
        const at = time ? resource.attributes?.[time.field] : undefined;
        const iso = typeof at === 'string' ? at : '';
        const key = time ? instantKey(iso) : undefined;
        if (key !== undefined) {
          if (lo !== null && key < lo) continue;
          if (range.hi !== null && key >= range.hi) {
            ended = true; // sorted ascending: nothing after it belongs to the range
            break;
          }
          if (key === lo && skip.has(id)) continue;
          pageFirst ??= key;
          if (key > tieKey) {
            tieKey = key;
            tieIds.clear(); // one set for the range (a split copies it): not a new one per record
          }
          if (key === tieKey) tieIds.add(id);
          if (this.#o.covered?.(key, id)) continue;
        }
        records.push({ index, id, resource, iso, key });
      }
      const resumeAt = this.#resumeAt;
      if (resumeAt?.range === range) {
        this.#resumeAt = undefined;
        const byId = resumeAt.id ? records.findIndex((r) => r.id === resumeAt.id) : -1;
        const through = byId >= 0 ? byId : records.findLastIndex((r) => r.index <= resumeAt.index);
        records.splice(0, through + 1);
      }
      const item: PageItem = { range, records, included: page.included, after: { done: true } };
      if (!ended && page.next !== undefined) {
        const points = this.#splitPoints(range, lo, tieKey, pageFirst);
        if (points.length > 0) {
          // this range goes on from the page's last instant up to the first point; new ranges take [point, next point)
          const hi = range.hi;
          points.forEach((at, i) => {
            const child: RangeState = { s: range.s, part: partKey(at, range.s, this.#o.plan.streams.length), lo: at, hi: points[i + 1] ?? hi };
            this.#ranges.push(child);
            this.#pending.push(child);
          });
          range.hi = points[0]!;
          this.#version++;
          lo = tieKey;
          skip = new Set(tieIds);
          path = this.#path(range.s, lo, range.hi, this.#o.plan.pageSize);
          item.after = { lo, skip: [...skip].sort() };
        } else {
          path = page.next;
          item.after = { page: page.next };
        }
      }
      this.#queue.push(item);
      this.#changed.notify();
      if (item.after.done) return;
    }
  }

  /**
   * Where to split a range whose page ended at `tieKey` with more to come (the page began at `pageFirst`): whole
   * seconds cutting what is left into equal shares, one more share per idle worker, but (after the stream's first
   * split) no more shares than leave MIN_PAGES_PER_SHARE pages each, as far as the page's span tells: each range
   * ends on a partial page, an extra request, and requests are what the tiers count (splitting into every idle
   * worker each time took 15% more requests than pages). None: keep reading it whole.
   */
  #splitPoints(range: RangeState, lo: number | null, tieKey: number, pageFirst: number | undefined): number[] {
    const time = this.#o.plan.time;
    if (!time || time.ops === 'lower' || range.hi === null) return [];
    const idle = this.#o.concurrency - this.#busy;
    if (this.#pending.length > 0 || idle <= 0) return []; // no worker would take it
    if (lo !== null && tieKey <= lo) return []; // no progress since the range (re)started
    const pageSpan = pageFirst === undefined ? 0 : tieKey - pageFirst;
    // A stream's first split takes every idle worker whatever the estimate: records are seldom spread evenly over
    // time (members join more recently, the first page spans months), the start is when requests in flight count
    // most, and at worst it costs one request per worker.
    const first = !this.#spread.has(range.s);
    const pagesLeft = pageSpan > 0 && !first ? (range.hi - tieKey) / pageSpan : Infinity;
    const shares = Math.min(idle + 1, Math.floor(pagesLeft / MIN_PAGES_PER_SHARE));
    if (shares >= 2) this.#spread.add(range.s);
    const from = Math.floor(tieKey / SECOND);
    const to = Math.ceil(range.hi / SECOND);
    const points: number[] = [];
    for (let i = 1; i < shares; i++) {
      const at = Math.floor(from + ((to - from) * i) / shares) * SECOND;
      if (at > tieKey && at < range.hi && at > (points.at(-1) ?? -Infinity)) points.push(at);
    }
    return points;
  }
}

/** A full `links.next` URL → its path and query (the client adds the origin; the origin is never stored). */
function relative(link: string): string {
  try {
    const u = new URL(link);
    return u.pathname + u.search;
  } catch {
    return link;
  }
}

/** The range cursor of a record's position, if it holds one. */
export function readRangeCursor(pos: SourcePosition | undefined): RangeCursor | undefined {
  const c = pos?.cursor as Partial<RangeCursor> | undefined;
  if (!c || c.v !== 2 || !Array.isArray(c.ranges) || typeof c.r !== 'number' || typeof c.index !== 'number') return undefined;
  return {
    v: 2,
    ranges: c.ranges,
    r: c.r,
    index: c.index,
    id: typeof c.id === 'string' ? c.id : '',
    last: typeof c.last === 'string' ? c.last : null,
    top: Array.isArray(c.top) ? c.top.filter((x): x is string => typeof x === 'string') : [],
  };
}
