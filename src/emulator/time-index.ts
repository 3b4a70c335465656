/**
 * Time-ordered reads that scale: sorted runs of records in `(time, id)` order (ties in time ordered by id, so a read
 * is deterministic), indexes kept valid as records are added or changed, and one page read by binary search plus a
 * merge of the runs (O(log n + page)). Cursors are keys (the last record's time and id), so a page read after
 * writes continues right after the last record the client saw: nothing is skipped or repeated.
 */
import { ApiError, invalidParam } from './http.js';
import type { FilterCondition } from './query.js';

/** Records in `(key, id)` order, by position. */
export interface SortedRun<T> {
  readonly length: number;
  /** Sort key of record `i` (epoch ms). */
  key(i: number): number;
  /** Tie-breaker of record `i` (its id). */
  id(i: number): string;
  item(i: number): T;
}

/** Half-open key range `[lo, hi)` (epoch ms, integers). */
export interface KeyRange {
  lo: number;
  hi: number;
}

/** The position of a record in a read: its key and id. */
export interface CursorKey {
  key: number;
  id: string;
}

const EVERYTHING: KeyRange = { lo: -Infinity, hi: Infinity };

function cmp(k1: number, id1: string, k2: number, id2: string): number {
  return k1 !== k2 ? (k1 < k2 ? -1 : 1) : id1 < id2 ? -1 : id1 > id2 ? 1 : 0;
}

/** First position whose `(key, id)` is ≥ `(key, id)` (`strict`: >). */
function bound<T>(run: SortedRun<T>, key: number, id: string, strict: boolean): number {
  let lo = 0;
  let hi = run.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(run.key(mid), run.id(mid), key, id);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A run over parallel arrays (keys, items) with ids read from the items. */
export class ArrayRun<T> implements SortedRun<T> {
  readonly keys: ArrayLike<number>;
  readonly items: readonly T[];
  readonly #idOf: (t: T) => string;
  constructor(keys: ArrayLike<number>, items: readonly T[], idOf: (t: T) => string) {
    this.keys = keys;
    this.items = items;
    this.#idOf = idOf;
  }
  get length(): number {
    return this.items.length;
  }
  key(i: number): number {
    return this.keys[i]!;
  }
  id(i: number): string {
    return this.#idOf(this.items[i]!);
  }
  item(i: number): T {
    return this.items[i]!;
  }
}

/** `items` sorted by `(keyOf, idOf)` as a run (the input array is sorted in place). */
export function sortedRun<T>(items: T[], keyOf: (t: T) => number, idOf: (t: T) => string): ArrayRun<T> {
  let sorted = true;
  for (let i = 1; i < items.length && sorted; i++) sorted = cmp(keyOf(items[i - 1]!), idOf(items[i - 1]!), keyOf(items[i]!), idOf(items[i]!)) <= 0;
  if (!sorted) items.sort((a, b) => cmp(keyOf(a), idOf(a), keyOf(b), idOf(b)));
  return new ArrayRun(Float64Array.from(items, keyOf), items, idOf);
}

/**
 * An index of records by a time that can change (a profile's `updated`): built from `source` on first use, then
 * kept valid by `touch` (a record added or whose key changed): the touched records are moved to their place on the
 * next read (one O(n) merge, not a re-sort).
 */
export class TimeIndex<T> {
  readonly #keyOf: (t: T) => number;
  readonly #idOf: (t: T) => string;
  readonly #source: () => T[];
  #run: ArrayRun<T> | null = null;
  readonly #touched = new Set<T>();

  constructor(keyOf: (t: T) => number, idOf: (t: T) => string, source: () => T[]) {
    this.#keyOf = keyOf;
    this.#idOf = idOf;
    this.#source = source;
  }

  /** `item` was added or its key changed (nothing to do while the index is not built). */
  touch(item: T): void {
    if (this.#run !== null) this.#touched.add(item);
  }

  /** The records in order, with every touch applied. */
  run(): SortedRun<T> {
    if (this.#run === null) this.#run = sortedRun(this.#source().slice(), this.#keyOf, this.#idOf);
    else if (this.#touched.size > 0) this.#run = this.#merge(this.#run);
    return this.#run;
  }

  #merge(old: ArrayRun<T>): ArrayRun<T> {
    const touched = new Set(this.#touched);
    this.#touched.clear();
    const fresh = sortedRun([...touched], this.#keyOf, this.#idOf);
    const keys: number[] = [];
    const items: T[] = [];
    let j = 0;
    for (let i = 0; i < old.length; i++) {
      const t = old.items[i]!;
      if (touched.has(t)) continue;
      const k = old.keys[i]!;
      while (j < fresh.length && cmp(fresh.keys[j]!, fresh.id(j), k, this.#idOf(t)) < 0) {
        keys.push(fresh.keys[j]!);
        items.push(fresh.items[j++]!);
      }
      keys.push(k);
      items.push(t);
    }
    for (; j < fresh.length; j++) {
      keys.push(fresh.keys[j]!);
      items.push(fresh.items[j]!);
    }
    return new ArrayRun(keys, items, this.#idOf);
  }
}

/** One page of a read. */
export interface Page<T> {
  items: T[];
  /** Cursor of the next page, or null at the end. */
  next: CursorKey | null;
}

/** What a page read asks for. */
export interface PageQuery<T> {
  range?: KeyRange;
  desc?: boolean;
  /** Continue strictly after this record (in the read's direction). */
  after?: CursorKey | null;
  size: number;
  /** Conditions the runs do not encode (checked per record). */
  accept?: (t: T) => boolean;
}

/**
 * One page of `runs` merged in `(key, id)` order (descending with `desc`): the first `size` accepted records in
 * `range` after the cursor; `next` is set when an accepted record follows the page.
 */
export function readPage<T>(runOrRuns: SortedRun<T> | readonly SortedRun<T>[], q: PageQuery<T>): Page<T> {
  const runs = Array.isArray(runOrRuns) ? (runOrRuns as readonly SortedRun<T>[]) : [runOrRuns as SortedRun<T>];
  const range = q.range ?? EVERYTHING;
  const desc = q.desc === true;
  const after = q.after ?? null;
  const pos: number[] = [];
  const stop: number[] = [];
  for (const run of runs) {
    const lo = range.lo === -Infinity ? 0 : bound(run, range.lo, '', false);
    const hi = range.hi === Infinity ? run.length : bound(run, range.hi, '', false);
    if (!desc) {
      pos.push(after ? Math.max(lo, bound(run, after.key, after.id, true)) : lo);
      stop.push(hi);
    } else {
      pos.push((after ? Math.min(hi, bound(run, after.key, after.id, false)) : hi) - 1);
      stop.push(lo - 1);
    }
  }
  const items: T[] = [];
  let last: CursorKey | null = null;
  for (;;) {
    let best = -1;
    for (let r = 0; r < runs.length; r++) {
      if (pos[r] === stop[r]) continue;
      if (best < 0) best = r;
      else {
        const c = cmp(runs[r]!.key(pos[r]!), runs[r]!.id(pos[r]!), runs[best]!.key(pos[best]!), runs[best]!.id(pos[best]!));
        if (desc ? c > 0 : c < 0) best = r;
      }
    }
    if (best < 0) return { items, next: null };
    const run = runs[best]!;
    const i = pos[best]!;
    pos[best] = desc ? i - 1 : i + 1;
    const item = run.item(i);
    if (q.accept && !q.accept(item)) continue;
    if (items.length === q.size) return { items, next: last };
    items.push(item);
    last = { key: run.key(i), id: run.id(i) };
  }
}

/** The key range of date conditions (`greater-than(f, t)` …) on one field; `scale` turns a number into ms. */
export function dateRange(conds: readonly FilterCondition[], field: string, scale = 1): KeyRange {
  const r: KeyRange = { lo: -Infinity, hi: Infinity };
  for (const c of conds) {
    if (c.field !== field) continue;
    const v = c.value instanceof Date ? c.value.getTime() : typeof c.value === 'number' ? c.value * scale : NaN;
    if (Number.isNaN(v)) throw new ApiError(400, invalidParam(`'${c.field}' must be compared with a datetime.`, 'filter'));
    if (c.op === 'greater-than') r.lo = Math.max(r.lo, Math.floor(v) + 1);
    else if (c.op === 'greater-or-equal') r.lo = Math.max(r.lo, Math.ceil(v));
    else if (c.op === 'less-than') r.hi = Math.min(r.hi, Math.ceil(v));
    else if (c.op === 'less-or-equal') r.hi = Math.min(r.hi, Math.floor(v) + 1);
  }
  return r;
}

/** A key cursor as the opaque `page[cursor]` value. */
export function makeKeyCursor(k: CursorKey): string {
  return Buffer.from(`k:${k.key}:${k.id}`).toString('base64url');
}

/** The key cursor of a request (`page[cursor]`, bare or inside a full `links.next` URL), or null on the first page. */
export function readKeyCursor(query: URLSearchParams): CursorKey | null {
  let raw = query.get('page[cursor]');
  if (raw === null || raw === '') return null;
  if (raw.startsWith('http')) {
    try {
      raw = new URL(raw).searchParams.get('page[cursor]') ?? '';
    } catch {
      /* fall through: not a cursor */
    }
  }
  const m = /^k:(-?\d+):(.+)$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!m) throw new ApiError(400, invalidParam('Invalid page cursor.', 'page[cursor]'));
  return { key: Number(m[1]), id: m[2]! };
}

/** `links` of a page: `self`, and `next` (the request with the next page's cursor) unless it is the last page. */
export function pageLinks(baseUrl: string, path: string, query: URLSearchParams, next: CursorKey | null): Record<string, string> {
  const links: Record<string, string> = { self: `${baseUrl}${path}/${query.size > 0 ? '?' + query.toString() : ''}` };
  if (next !== null) {
    const q = new URLSearchParams(query);
    q.set('page[cursor]', makeKeyCursor(next));
    links.next = `${baseUrl}${path}/?${q.toString()}`;
  }
  return links;
}
