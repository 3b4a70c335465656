/**
 * Lists and segments: `POST/GET /api/lists`, `GET /api/lists/{id}`, members (`…/profiles`, with
 * `joined_group_at`), member ids and add/remove (`…/relationships/profiles`, ≤1000 ids, 204, consent unchanged);
 * `GET /api/segments`, `GET /api/segments/{id}`, `GET /api/segments/{id}/profiles` (segments come from the seed).
 */
import { ApiError, invalid, invalidParam, isoMicros, type ErrorInit, type Reply } from '../http.js';
import { collectionLinks, conditionValues, matchDate, pageSize, parseFilter, readCursor, sparseFields, type FilterCondition } from '../query.js';
import { QUERY_RULES } from '../params.js';
import { dateRange, pageLinks, readKeyCursor, readPage, sortedRun, type SortedRun } from '../time-index.js';
import { profileResource } from '../resources.js';
import type { RequestContext, RouteModule } from '../router.js';
import type { GroupRecord, ProfileRecord } from '../state.js';
import { profileExtras } from '../subscriptions.js';
import { isPlainObject } from '../validate.js';
import { notFound, requireData } from './common.js';
import { includeFlowTriggers } from './flows.js';

export const MAX_LIST_PAGE = 10;
export const MAX_MEMBER_PAGE = 100;
export const MAX_LIST_IDS = 1000;

type Kind = 'list' | 'segment';

function groups(ctx: RequestContext, kind: Kind): Map<string, GroupRecord> {
  return kind === 'list' ? ctx.account.lists : ctx.account.segments;
}

function getGroup(ctx: RequestContext, kind: Kind): GroupRecord {
  const g = groups(ctx, kind).get(ctx.params.id!);
  if (!g) throw notFound(kind, ctx.params.id!);
  return g;
}

function groupResource(g: GroupRecord, kind: Kind, baseUrl: string, fields: Set<string> | null, profileCount: boolean): Record<string, unknown> {
  const self = `${baseUrl}/api/${kind}s/${g.id}/`;
  const attrs: Record<string, unknown> = { name: g.name, created: isoMicros(g.created), updated: isoMicros(g.updated) };
  if (kind === 'list') attrs.opt_in_process = g.optInProcess ?? 'single_opt_in';
  else Object.assign(attrs, { is_active: true, is_processing: false, is_starred: false });
  const picked: Record<string, unknown> = {};
  for (const k in attrs) if (!fields || fields.has(k)) picked[k] = attrs[k];
  if (profileCount) picked.profile_count = g.members.size;
  const rel = (name: string) => ({ links: { self: `${self}relationships/${name}/`, related: `${self}${name}/` } });
  return {
    type: kind,
    id: g.id,
    attributes: picked,
    relationships: { profiles: rel('profiles'), tags: rel('tags'), 'flow-triggers': rel('flow-triggers') },
    links: { self },
  };
}

const GROUP_SORTS = new Set(['created', '-created', 'id', '-id', 'name', '-name', 'updated', '-updated']);

function listGroups(ctx: RequestContext, kind: Kind): Reply {
  const allowed = QUERY_RULES[kind === 'list' ? 'GET /api/lists' : 'GET /api/segments'].filter!;
  const conds = parseFilter(ctx.query.get('filter'), allowed);
  const sort = ctx.query.get('sort');
  if (sort !== null && !GROUP_SORTS.has(sort)) throw new ApiError(400, invalidParam(`'${sort}' is not a valid sort for ${kind}s.`, 'sort'));
  const size = pageSize(ctx.query, MAX_LIST_PAGE, MAX_LIST_PAGE);
  const pos = readCursor(ctx.query);
  let all = [...groups(ctx, kind).values()].filter((g) =>
    conds.every((c) => {
      if (c.field === 'created' || c.field === 'updated') return matchDate(c.field === 'created' ? g.created : g.updated, c);
      if (c.field === 'is_active') return conditionValues(c).includes('true');
      if (c.field === 'is_starred') return conditionValues(c).includes('false');
      return conditionValues(c).includes(c.field === 'id' ? g.id : g.name);
    }),
  );
  if (sort) {
    const desc = sort.startsWith('-');
    const key = (desc ? sort.slice(1) : sort) as 'created' | 'id' | 'name' | 'updated';
    all = all.sort((a, b) => {
      const x = a[key];
      const y = b[key];
      const r = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1;
      return desc ? -r : r;
    });
  }
  const base = ctx.emulator.baseUrl;
  const fields = sparseFields(ctx.query, kind);
  const data = all.slice(pos, pos + size).map((g) => groupResource(g, kind, base, fields, false));
  const included = includeFlowTriggers(ctx, data, kind);
  const links = collectionLinks(base, ctx.path, ctx.query, pos + size < all.length ? pos + size : null);
  return { status: 200, body: included ? { data, links, included } : { data, links } };
}

function getOne(ctx: RequestContext, kind: Kind): Reply {
  const g = getGroup(ctx, kind);
  const extra = ctx.query.get(`additional-fields[${kind}]`);
  const wanted = extra ? extra.split(',').map((s) => s.trim()) : [];
  for (const f of wanted) {
    if (f !== 'profile_count') throw new ApiError(400, invalidParam(`'${f}' is not a valid additional field for '${kind}'.`, `additional-fields[${kind}]`));
  }
  const resource = groupResource(g, kind, ctx.emulator.baseUrl, sparseFields(ctx.query, kind), wanted.includes('profile_count'));
  const included = includeFlowTriggers(ctx, [resource], kind);
  return { status: 200, body: included ? { data: resource, links: resource.links, included } : { data: resource, links: resource.links } };
}

/** A member: profile id and joined_group_at. */
type Member = readonly [string, number];

/** Members in `(joined_group_at, profile id)` order, per member array (memberEntries keeps one while unchanged). */
const memberRuns = new WeakMap<readonly Member[], SortedRun<Member>>();

function memberRun(entries: readonly Member[]): SortedRun<Member> {
  let run = memberRuns.get(entries);
  if (!run) memberRuns.set(entries, (run = sortedRun([...entries], (m) => m[1], (m) => m[0])));
  return run;
}

/** Members named by an identifier condition (email, phone_number, profile_id), or null when there is none. */
function namedMembers(ctx: RequestContext, g: GroupRecord, conds: FilterCondition[]): SortedRun<Member> | null {
  const account = ctx.account;
  const c = conds.find((x) => x.field === 'email' || x.field === 'phone_number' || x.field === 'profile_id');
  if (!c) return null;
  const out: Member[] = [];
  for (const v of new Set(conditionValues(c))) {
    const p = c.field === 'email' ? account.byEmail.get(v.toLowerCase()) : c.field === 'phone_number' ? account.byPhone.get(v) : account.profilesById.get(v);
    const at = p ? g.members.get(p.id) : undefined;
    if (p && at !== undefined) out.push([p.id, at]);
  }
  return sortedRun(out, (m) => m[1], (m) => m[0]);
}

/** Members of a list/segment, filtered and sorted, with paging. */
function members(ctx: RequestContext, kind: Kind, idsOnly: boolean): Reply {
  const g = getGroup(ctx, kind);
  const account = ctx.account;
  const allowed = QUERY_RULES[kind === 'segment' ? 'GET /api/segments/{id}/profiles' : idsOnly ? 'GET /api/lists/{id}/relationships/profiles' : 'GET /api/lists/{id}/profiles'].filter!;
  const conds = parseFilter(ctx.query.get('filter'), allowed);
  const sort = ctx.query.get('sort');
  if (sort !== null && sort !== 'joined_group_at' && sort !== '-joined_group_at') {
    throw new ApiError(400, invalidParam(`'${sort}' is not a valid sort for ${kind} profiles.`, 'sort'));
  }
  const size = pageSize(ctx.query, 20, MAX_MEMBER_PAGE);
  const fields = sparseFields(ctx.query, 'profile');
  const extras = idsOnly ? undefined : profileExtras(ctx.query);
  const run = namedMembers(ctx, g, conds) ?? memberRun(account.memberEntries(g));
  const rest = conds.filter((c) => c.field !== 'joined_group_at');
  const accept = rest.length > 0 ? ([id, at]: Member) => memberMatches(account.profilesById.get(id), at, rest) : undefined;
  const page = readPage(run, { range: dateRange(conds, 'joined_group_at'), desc: sort === '-joined_group_at', after: readKeyCursor(ctx.query), size, ...(accept ? { accept } : {}) });
  const base = ctx.emulator.baseUrl;
  const data = idsOnly
    ? page.items.map(([id]) => ({ type: 'profile', id }))
    : page.items.flatMap(([id, at]) => {
        const p = account.profilesById.get(id);
        if (!p) return [];
        const extra: Record<string, unknown> = { joined_group_at: isoMicros(at), ...extras?.(p) };
        // joined_group_at is a sparse field like the others (in the spec's fields[profile] enum): a fieldset that
        // does not name it leaves it out, as Klaviyo does
        return [profileResource(p, base, fields, extra)];
      });
  return { status: 200, body: { data, links: pageLinks(base, ctx.path, ctx.query, page.next) } };
}

function memberMatches(p: ProfileRecord | undefined, at: number, conds: FilterCondition[]): boolean {
  if (!p) return false;
  for (const c of conds) {
    if (c.field === 'joined_group_at') {
      if (!matchDate(at, c)) return false;
      continue;
    }
    const vals = conditionValues(c);
    if (c.field === 'profile_id') {
      if (!vals.includes(p.id)) return false;
    } else if (c.field === 'email') {
      const e = p.strings.email?.toLowerCase();
      if (e === undefined || !vals.some((v) => v.toLowerCase() === e)) return false;
    } else if (c.field === 'phone_number') {
      if (p.strings.phone_number === undefined || !vals.includes(p.strings.phone_number)) return false;
    } else {
      return false; // push_token / _kx: not modelled, never match
    }
  }
  return true;
}

function createList(ctx: RequestContext): Reply {
  const data = requireData(ctx.body, 'list');
  const attrs = data.attributes;
  if (!isPlainObject(attrs)) throw new ApiError(400, invalid("'attributes' is a required field.", '/data/attributes'));
  const errors: ErrorInit[] = [];
  const name = attrs.name;
  if (name === undefined || name === null) errors.push(invalid("'name' is a required field.", '/data/attributes/name'));
  else if (typeof name !== 'string' || name.trim() === '') errors.push(invalid("'name' must be a non-empty string.", '/data/attributes/name'));
  const opt = attrs.opt_in_process;
  if (opt !== undefined && opt !== null && opt !== 'single_opt_in' && opt !== 'double_opt_in') {
    errors.push(invalid("'opt_in_process' must be one of: double_opt_in, single_opt_in.", '/data/attributes/opt_in_process'));
  }
  for (const k in attrs) {
    if (k !== 'name' && k !== 'opt_in_process') errors.push(invalid(`'${k}' is not a valid field for the resource 'list'.`, `/data/attributes/${k}`));
  }
  if (errors.length > 0) throw new ApiError(400, errors);
  const g = ctx.account.createGroup('list', name as string, ctx.now());
  if (opt === 'double_opt_in') g.optInProcess = 'double_opt_in';
  const resource = groupResource(g, 'list', ctx.emulator.baseUrl, sparseFields(ctx.query, 'list'), false);
  return { status: 201, body: { data: resource, links: resource.links } };
}

/** `{data: [{type: 'profile', id}]}` (≤1000) → existing profile ids; unknown ids → 404. */
function readIds(ctx: RequestContext): string[] {
  const body = ctx.body;
  if (!isPlainObject(body) || body.data === undefined) throw new ApiError(400, invalid("'data' is a required field.", '/data'));
  const data = body.data;
  if (!Array.isArray(data)) throw new ApiError(400, invalid("'data' must be an array of {type: 'profile', id}.", '/data'));
  if (data.length > MAX_LIST_IDS) throw new ApiError(400, invalid(`At most ${MAX_LIST_IDS} profiles may be given; got ${data.length}.`, '/data'));
  const errors: ErrorInit[] = [];
  const ids: string[] = [];
  data.forEach((d, i) => {
    if (!isPlainObject(d)) errors.push(invalid("Each item must be {type: 'profile', id}.", `/data/${i}`));
    else if (d.type !== 'profile') errors.push(invalid("'type' must be 'profile'.", `/data/${i}/type`));
    else if (typeof d.id !== 'string' || d.id === '') errors.push(invalid("'id' is a required field.", `/data/${i}/id`));
    else ids.push(d.id);
  });
  if (errors.length > 0) throw new ApiError(400, errors);
  // observed: unknown ids → 400 `Invalid profile IDs: {'…'}` at `/data/` (nothing is changed)
  const missing = [...new Set(ids.filter((id) => !ctx.account.profilesById.has(id)))];
  if (missing.length > 0) {
    throw new ApiError(400, invalid(`Invalid profile IDs: {${missing.map((id) => `'${id}'`).join(', ')}}`, '/data/'));
  }
  return ids;
}

export const listRoutes: RouteModule = [
  { method: 'POST', path: '/api/lists', handler: createList },
  { method: 'GET', path: '/api/lists', handler: (ctx) => listGroups(ctx, 'list') },
  { method: 'GET', path: '/api/lists/{id}', handler: (ctx) => getOne(ctx, 'list') },
  { method: 'GET', path: '/api/lists/{id}/profiles', handler: (ctx) => members(ctx, 'list', false) },
  { method: 'GET', path: '/api/lists/{id}/relationships/profiles', handler: (ctx) => members(ctx, 'list', true) },
  {
    method: 'POST',
    path: '/api/lists/{id}/relationships/profiles',
    handler(ctx) {
      const g = getGroup(ctx, 'list');
      const now = ctx.now();
      for (const id of readIds(ctx)) ctx.account.addMember(g, id, now);
      return { status: 204 };
    },
  },
  {
    method: 'DELETE',
    path: '/api/lists/{id}/relationships/profiles',
    handler(ctx) {
      const g = getGroup(ctx, 'list');
      for (const id of readIds(ctx)) ctx.account.removeMember(g, id);
      return { status: 204 };
    },
  },
  { method: 'GET', path: '/api/segments', handler: (ctx) => listGroups(ctx, 'segment') },
  { method: 'GET', path: '/api/segments/{id}', handler: (ctx) => getOne(ctx, 'segment') },
  { method: 'GET', path: '/api/segments/{id}/profiles', handler: (ctx) => members(ctx, 'segment', false) },
];
