/**
 * Helpers shared by the catalog routes (campaigns, flows, templates): filtering, sorting and paging a collection
 * by the spec's rules (QUERY_RULES), relationship objects, and compound documents (`include`).
 */
import type { EndpointKey } from '../../klaviyo/endpoints.js';
import { ApiError, invalidParam, type Reply } from '../http.js';
import { QUERY_RULES } from '../params.js';
import { collectionLinks, conditionValues, matchDate, pageSize, parseFilter, readCursor, type FilterCondition } from '../query.js';
import type { RequestContext } from '../router.js';

/** A field's value for filters and sorts: dates are epoch ms (listed in `dates`). */
export type FieldValue = string | number | boolean | null;

export interface CollectionSpec<T> {
  endpoint: EndpointKey;
  /** Value of a filter/sort field of an item. */
  get(item: T, field: string): FieldValue;
  /** Fields holding dates (epoch ms), compared as datetimes. */
  dates: ReadonlySet<string>;
  /** Conditions the handler applies itself (kept out of the generic matching). */
  skip?: ReadonlySet<string>;
  /** The handler's own selection, from the parsed conditions (may throw a 400). */
  where?(conds: FilterCondition[]): (item: T) => boolean;
}

function matches(v: FieldValue, c: FilterCondition, isDate: boolean): boolean {
  if (isDate) return typeof v === 'number' && matchDate(v, c);
  if (typeof v === 'boolean') {
    if (typeof c.value !== 'boolean') throw new ApiError(400, invalidParam(`'${c.field}' must be compared with true or false.`, 'filter'));
    return v === c.value;
  }
  if (v === null) return false;
  const s = String(v);
  const vals = conditionValues(c);
  switch (c.op) {
    case 'contains':
      return s.includes(vals[0]!);
    case 'starts-with':
      return s.startsWith(vals[0]!);
    case 'ends-with':
      return s.endsWith(vals[0]!);
    default:
      return vals.includes(s);
  }
}

/** Compare two sort values: nulls last, then numbers/strings ascending. */
function compare(a: FieldValue, b: FieldValue): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

/**
 * The page of `items` a collection request asks for: `filter` parsed against the endpoint's rules (with the
 * handler's own selection), `sort` (ties by id), `page[size]` and `page[cursor]`, with `links`.
 */
export function collectionPage<T extends { id: string }>(
  ctx: RequestContext,
  items: Iterable<T>,
  spec: CollectionSpec<T>,
): { page: T[]; links: Record<string, string> } {
  const rules = QUERY_RULES[spec.endpoint];
  const conds = parseFilter(ctx.query.get('filter'), rules.filter ?? {});
  const active = conds.filter((c) => !spec.skip?.has(c.field));
  const where = spec.where?.(conds) ?? (() => true);
  let all = [...items].filter((x) => where(x) && active.every((c) => matches(spec.get(x, c.field), c, spec.dates.has(c.field))));
  const sort = ctx.query.get('sort');
  if (sort) {
    const desc = sort.startsWith('-');
    const field = desc ? sort.slice(1) : sort;
    all = all.sort((a, b) => {
      const r = compare(spec.get(a, field), spec.get(b, field)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
      return desc ? -r : r;
    });
  }
  const size = pageSize(ctx.query, rules.page!.def, rules.page!.max);
  const pos = readCursor(ctx.query);
  const links = collectionLinks(ctx.emulator.baseUrl, ctx.path, ctx.query, pos + size < all.length ? pos + size : null);
  return { page: all.slice(pos, pos + size), links };
}

/** A relationship object: `data` (when given) and its `self`/`related` links. */
export function relationship(self: string, name: string, data?: unknown): Record<string, unknown> {
  const links = { self: `${self}relationships/${name}/`, related: `${self}${name}/` };
  return data === undefined ? { links } : { data, links };
}

/** The `include` values asked for. */
export function includes(ctx: RequestContext): Set<string> {
  const raw = ctx.query.get('include');
  return new Set(raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : []);
}

/** Collects included resources once each (by type and id). */
export class Included {
  readonly #seen = new Set<string>();
  readonly items: Record<string, unknown>[] = [];

  add(resource: Record<string, unknown>): void {
    const key = `${String(resource.type)} ${String(resource.id)}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.items.push(resource);
  }
}

/** A collection reply, with `included` when something was asked to be included. */
export function collectionReply(data: unknown[], links: Record<string, string>, included: Included | null): Reply {
  const body: Record<string, unknown> = { data, links };
  if (included) body.included = included.items;
  return { status: 200, body };
}

/** A single-resource reply (`links` = the resource's own), with `included` when asked. */
export function resourceReply(resource: Record<string, unknown>, included: Included | null): Reply {
  const body: Record<string, unknown> = { data: resource, links: resource.links };
  if (included) body.included = included.items;
  return { status: 200, body };
}
