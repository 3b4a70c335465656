/** Query-string helpers: Klaviyo filter expressions, sparse fieldsets, page size and opaque cursors. */
import { ApiError, invalidParam } from './http.js';

export type FilterOp =
  | 'equals'
  | 'any'
  | 'greater-than'
  | 'greater-or-equal'
  | 'less-than'
  | 'less-or-equal'
  | 'contains'
  | 'starts-with'
  | 'ends-with';

/** One parsed condition: `op(field, value)`; `value` is a string, number, boolean, null, Date ms or an array. */
export interface FilterCondition {
  op: FilterOp;
  field: string;
  value: unknown;
}

const OPS = new Set<string>(['equals', 'any', 'greater-than', 'greater-or-equal', 'less-than', 'less-or-equal', 'contains', 'starts-with', 'ends-with']);

/**
 * Parse `filter` (e.g. `and(equals(email,"a@x.com"),greater-than(created,2024-01-01T00:00:00Z))` or the
 * comma-joined form) into a flat AND list. `allowed` maps field → allowed ops; anything else is a 400.
 */
export function parseFilter(text: string | null, allowed: Record<string, readonly FilterOp[]>): FilterCondition[] {
  if (text === null || text === '') return [];
  const p = new FilterParser(text);
  const out: FilterCondition[] = [];
  p.list(out);
  if (!p.done()) p.fail();
  for (const c of out) {
    const ops = allowed[c.field];
    if (!ops || !ops.includes(c.op)) {
      throw new ApiError(400, invalidParam(`'${c.op}' is not a valid operator for '${c.field}' (or the field cannot be filtered).`, 'filter'));
    }
    if ((c.op === 'any') !== Array.isArray(c.value)) {
      const want = c.op === 'any' ? 'a list of values' : 'a single value';
      throw new ApiError(400, invalidParam(`'${c.op}' on '${c.field}' takes ${want}.`, 'filter'));
    }
  }
  return out;
}

class FilterParser {
  #s: string;
  #i = 0;
  constructor(s: string) {
    this.#s = s;
  }
  done(): boolean {
    this.#ws();
    return this.#i >= this.#s.length;
  }
  fail(): never {
    throw new ApiError(400, invalidParam(`Invalid filter expression at position ${this.#i}.`, 'filter'));
  }
  #ws(): void {
    while (this.#s[this.#i] === ' ') this.#i++;
  }
  #word(): string {
    this.#ws();
    const start = this.#i;
    while (this.#i < this.#s.length && /[A-Za-z0-9_.\-$]/.test(this.#s[this.#i]!)) this.#i++;
    if (start === this.#i) this.fail();
    return this.#s.slice(start, this.#i);
  }
  #expect(c: string): void {
    this.#ws();
    if (this.#s[this.#i] !== c) this.fail();
    this.#i++;
  }
  list(out: FilterCondition[]): void {
    this.expr(out);
    this.#ws();
    while (this.#s[this.#i] === ',') {
      this.#i++;
      this.expr(out);
      this.#ws();
    }
  }
  expr(out: FilterCondition[]): void {
    const name = this.#word();
    this.#expect('(');
    if (name === 'and') {
      this.list(out);
      this.#expect(')');
      return;
    }
    if (!OPS.has(name)) this.fail();
    const field = this.#word();
    this.#expect(',');
    const value = this.value();
    this.#expect(')');
    out.push({ op: name as FilterOp, field, value });
  }
  value(): unknown {
    this.#ws();
    const c = this.#s[this.#i];
    if (c === '"' || c === "'") {
      let j = this.#i + 1;
      let v = '';
      while (j < this.#s.length && this.#s[j] !== c) {
        if (this.#s[j] === '\\' && j + 1 < this.#s.length) j++;
        v += this.#s[j];
        j++;
      }
      if (j >= this.#s.length) this.fail();
      this.#i = j + 1;
      return v;
    }
    if (c === '[') {
      this.#i++;
      const arr: unknown[] = [];
      this.#ws();
      if (this.#s[this.#i] === ']') {
        this.#i++;
        return arr;
      }
      for (;;) {
        arr.push(this.value());
        this.#ws();
        if (this.#s[this.#i] === ',') this.#i++;
        else if (this.#s[this.#i] === ']') {
          this.#i++;
          return arr;
        } else this.fail();
      }
    }
    const start = this.#i;
    while (this.#i < this.#s.length && !/[,)\]]/.test(this.#s[this.#i]!)) this.#i++;
    const raw = this.#s.slice(start, this.#i).trim();
    if (raw === '') this.fail();
    if (raw === 'null') return null;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    const ms = Date.parse(raw);
    if (!Number.isNaN(ms)) return new Date(ms);
    this.fail();
  }
}

/** Compare a datetime field (epoch ms) with a condition on dates. */
export function matchDate(ms: number, c: FilterCondition): boolean {
  const v = c.value instanceof Date ? c.value.getTime() : typeof c.value === 'string' ? Date.parse(c.value) : NaN;
  if (Number.isNaN(v)) throw new ApiError(400, invalidParam(`'${c.field}' must be compared with a datetime.`, 'filter'));
  switch (c.op) {
    case 'greater-than':
      return ms > v;
    case 'greater-or-equal':
      return ms >= v;
    case 'less-than':
      return ms < v;
    case 'less-or-equal':
      return ms <= v;
    case 'equals':
      return ms === v;
    default:
      return false;
  }
}

/** Values a string condition accepts (`equals` → one, `any` → many). */
export function conditionValues(c: FilterCondition): string[] {
  const vals = Array.isArray(c.value) ? c.value : [c.value];
  return vals.map((v) => (v instanceof Date ? v.toISOString() : String(v)));
}

export function pageSize(query: URLSearchParams, def: number, max: number): number {
  const raw = query.get('page[size]');
  if (raw === null) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ApiError(400, invalidParam(`Page size must be an integer between 1 and ${max}.`, 'page[size]'));
  }
  return n;
}

/** Opaque cursor: base64url of a position number. Accepts a full `links.next` URL too (as the SDK does). */
export function readCursor(query: URLSearchParams): number {
  let raw = query.get('page[cursor]');
  if (raw === null || raw === '') return 0;
  if (raw.startsWith('http')) {
    try {
      raw = new URL(raw).searchParams.get('page[cursor]') ?? '';
    } catch {
      /* fall through */
    }
  }
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const m = /^p:(\d+)$/.exec(text);
  if (!m) throw new ApiError(400, invalidParam('Invalid page cursor.', 'page[cursor]'));
  return Number(m[1]);
}

export function makeCursor(pos: number): string {
  return Buffer.from(`p:${pos}`).toString('base64url');
}

/** Build `links` for a page: `self`, and `next` when `nextPos` is set. */
export function collectionLinks(baseUrl: string, path: string, query: URLSearchParams, nextPos: number | null): Record<string, string> {
  const self = `${baseUrl}${path}/${query.size > 0 ? '?' + query.toString() : ''}`;
  const links: Record<string, string> = { self };
  if (nextPos !== null) {
    const q = new URLSearchParams(query);
    q.set('page[cursor]', makeCursor(nextPos));
    links.next = `${baseUrl}${path}/?${q.toString()}`;
  }
  return links;
}

/** `fields[type]=a,b` → set of fields, or null for all. */
export function sparseFields(query: URLSearchParams, type: string): Set<string> | null {
  const raw = query.get(`fields[${type}]`);
  if (raw === null || raw === '') return null;
  return new Set(raw.split(',').map((s) => s.trim()).filter(Boolean));
}

/**
 * Keep only `fields` of `attrs`. Dotted names keep that nested member (`location.city`,
 * `subscriptions.email.marketing.consent`), merged with siblings asked for in the same set; a dotted name whose
 * parent is asked for as a whole adds nothing.
 */
export function pickFields(attrs: Record<string, unknown>, fields: Set<string> | null): Record<string, unknown> {
  if (!fields) return attrs;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (f.indexOf('.') < 0) {
      if (f in attrs) out[f] = attrs[f];
      continue;
    }
    const parts = f.split('.');
    let covered = false;
    for (let i = 1; i < parts.length && !covered; i++) covered = fields.has(parts.slice(0, i).join('.'));
    if (covered) continue;
    let src: unknown = attrs;
    let o = out;
    for (let i = 0; i < parts.length - 1; i++) {
      src = (src as Record<string, unknown>)[parts[i]!];
      if (src === null || typeof src !== 'object') break;
      o = (o[parts[i]!] ??= {}) as Record<string, unknown>;
    }
    if (src === null || typeof src !== 'object') continue;
    const last = parts[parts.length - 1]!;
    o[last] = (src as Record<string, unknown>)[last] ?? null;
  }
  return out;
}
