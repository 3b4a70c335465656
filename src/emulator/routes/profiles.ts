/** Profiles: create (409 on duplicates), get, patch (null clears, patch_properties), upsert (profile-import), list. */
import { ApiError, invalid, invalidParam, type Reply } from '../http.js';
import { conditionValues, collectionLinks, matchDate, pageSize, parseFilter, readCursor, sparseFields, type FilterCondition } from '../query.js';
import { dateRange, pageLinks, readKeyCursor, readPage, sortedRun } from '../time-index.js';
import { QUERY_RULES } from '../params.js';
import { profileResource } from '../resources.js';
import type { RequestContext, RouteModule } from '../router.js';
import type { Account, ProfileRecord } from '../state.js';
import { hasIdentifier, MAX_PROFILE_BYTES, PROFILE_CREATE, PROFILE_UPSERT, readPatchProperties, validateProfileAttributes, type ProfileInput, type ProfileSchemaOptions } from '../validate.js';
import { notFound, requireData } from './common.js';
import { profileExtras } from '../subscriptions.js';

const IDENTIFIER_MESSAGE = 'A profile must have at least one of email, phone_number, external_id or anonymous_id.';

function readProfile(
  ctx: RequestContext,
  opts: { requireIdentifier: boolean; schema: ProfileSchemaOptions; id: 'forbidden' | 'required' | 'optional' },
): { data: Record<string, unknown>; input: ProfileInput } {
  const data = requireData(ctx.body, 'profile', opts.id === 'forbidden' ? ['id'] : ['id', 'meta']);
  if (opts.id === 'forbidden' && data.id !== undefined) throw new ApiError(400, invalid("'id' is not allowed when creating a profile.", '/data/id'));
  if (opts.id === 'required' && (typeof data.id !== 'string' || data.id === '')) throw new ApiError(400, invalid("'id' is a required field.", '/data/id'));
  if (opts.id === 'optional' && data.id !== undefined && data.id !== null && typeof data.id !== 'string') throw new ApiError(400, invalid("'id' must be a string.", '/data/id'));
  if (data.attributes === undefined) throw new ApiError(400, invalid("'attributes' is a required field.", '/data/attributes'));
  const r = validateProfileAttributes(data.attributes, '/data/attributes', opts.schema);
  if (!r.ok) throw new ApiError(400, r.errors);
  if (JSON.stringify(data).length > MAX_PROFILE_BYTES) throw new ApiError(400, invalid('Profile payload exceeds the 100 KB limit.', '/data'));
  if (opts.requireIdentifier && !hasIdentifier(r.value, data.id)) throw new ApiError(400, invalid(IDENTIFIER_MESSAGE, '/data/attributes'));
  return { data, input: r.value };
}

function one(ctx: RequestContext, p: ProfileRecord, status: number): Reply {
  const extras = profileExtras(ctx.query);
  const resource = profileResource(p, ctx.emulator.baseUrl, sparseFields(ctx.query, 'profile'), extras?.(p));
  return { status, body: { data: resource, links: { self: resource.links && (resource.links as { self: string }).self } } };
}

function getProfile(account: Account, id: string): ProfileRecord {
  const p = account.profilesById.get(id);
  if (!p) throw notFound('profile', id);
  return p;
}

const PROFILE_FILTERS = QUERY_RULES['GET /api/profiles'].filter!;

const SORTS = new Set(['created', '-created', 'email', '-email', 'id', '-id', 'updated', '-updated']);

function matches(p: ProfileRecord, conds: FilterCondition[]): boolean {
  for (const c of conds) {
    if (c.field === 'created' || c.field === 'updated') {
      if (!matchDate(c.field === 'created' ? p.created : p.updated, c)) return false;
    } else {
      const v = c.field === 'id' ? p.id : p.strings[c.field as 'email'];
      const vals = conditionValues(c);
      if (v === undefined) return false;
      if (c.field === 'email' ? !vals.some((x) => x.toLowerCase() === v.toLowerCase()) : !vals.includes(v)) return false;
    }
  }
  return true;
}

/** Candidates from the identifier indexes (O(1) per value), or null when no identifier condition is present. */
function indexed(account: Account, conds: FilterCondition[]): ProfileRecord[] | null {
  for (const c of conds) {
    const vals = conditionValues(c);
    let get: ((v: string) => ProfileRecord | undefined) | null = null;
    if (c.field === 'id') get = (v) => account.profilesById.get(v);
    else if (c.field === 'email') get = (v) => account.byEmail.get(v.toLowerCase());
    else if (c.field === 'phone_number') get = (v) => account.byPhone.get(v);
    else if (c.field === 'external_id') get = (v) => account.byExternalId.get(v);
    else if (c.field === 'anonymous_id') get = (v) => account.byAnonymousId.get(v);
    if (!get) continue;
    const out: ProfileRecord[] = [];
    for (const v of vals) {
      const p = get(v);
      if (p && !out.includes(p)) out.push(p);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return null;
}

/** The `(key, id)` order of a profile sort other than email: the time it sorts by (none: id order). */
const SORT_KEYS: Record<string, ((p: ProfileRecord) => number) | undefined> = { created: (p) => p.created, updated: (p) => p.updated, id: () => 0 };

function listProfiles(ctx: RequestContext): Reply {
  const account = ctx.account;
  const conds = parseFilter(ctx.query.get('filter'), PROFILE_FILTERS);
  const size = pageSize(ctx.query, 20, 100);
  const sort = ctx.query.get('sort');
  if (sort !== null && !SORTS.has(sort)) throw new ApiError(400, invalidParam(`'${sort}' is not a valid sort for profiles.`, 'sort'));
  const fields = sparseFields(ctx.query, 'profile');
  const extras = profileExtras(ctx.query);
  const base = ctx.emulator.baseUrl;
  const render = (page: ProfileRecord[]) => page.map((p) => profileResource(p, base, fields, extras?.(p)));
  const candidates = indexed(account, conds);
  const field = sort === null ? 'id' : sort.replace(/^-/, '');
  if (field === 'email') {
    // sorted by email on each read (position cursor): identifier lookups and email order are not indexed by time
    const pos = readCursor(ctx.query);
    const desc = sort!.startsWith('-');
    const all = (candidates ?? account.profileOrder).filter((p) => matches(p, conds)).sort((a, b) => {
      const x = a.strings.email ?? '';
      const y = b.strings.email ?? '';
      const r = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1;
      return desc ? -r : r;
    });
    const next = pos + size < all.length ? pos + size : null;
    return { status: 200, body: { data: render(all.slice(pos, pos + size)), links: collectionLinks(base, ctx.path, ctx.query, next) } };
  }
  const keyOf = SORT_KEYS[field]!;
  const run = candidates
    ? sortedRun(candidates, keyOf, (p) => p.id)
    : (field === 'created' ? account.profilesByCreated : field === 'updated' ? account.profilesByUpdated : account.profilesInIdOrder).run();
  // a date filter on the sort's own field is a range of the run; other conditions are checked per profile
  const range = field === 'created' || field === 'updated' ? dateRange(conds, field) : undefined;
  const rest = conds.filter((c) => c.field !== field);
  const page = readPage(run, { ...(range ? { range } : {}), desc: sort !== null && sort.startsWith('-'), after: readKeyCursor(ctx.query), size, ...(rest.length > 0 ? { accept: (p: ProfileRecord) => matches(p, rest) } : {}) });
  return { status: 200, body: { data: render(page.items), links: pageLinks(base, ctx.path, ctx.query, page.next) } };
}

export const profileRoutes: RouteModule = [
  {
    method: 'POST',
    path: '/api/profiles',
    handler(ctx) {
      const { input } = readProfile(ctx, { requireIdentifier: true, schema: PROFILE_CREATE, id: 'forbidden' });
      const existing = ctx.account.conflictFor(undefined, input);
      if (existing) {
        throw new ApiError(409, {
          code: 'duplicate_profile',
          detail: 'A profile already exists with one of these identifiers.',
          source: { pointer: '/data/attributes' },
          meta: { duplicate_profile_id: existing.id },
        });
      }
      return one(ctx, ctx.account.createProfile(input, ctx.now()), 201);
    },
  },
  {
    method: 'GET',
    path: '/api/profiles/{id}',
    handler: (ctx) => one(ctx, getProfile(ctx.account, ctx.params.id!), 200),
  },
  {
    method: 'PATCH',
    path: '/api/profiles/{id}',
    handler(ctx) {
      const { data, input } = readProfile(ctx, { requireIdentifier: false, schema: PROFILE_CREATE, id: 'required' });
      if (data.id !== ctx.params.id) {
        throw new ApiError(409, { code: 'conflict', detail: "The 'id' in the body does not match the id in the URL.", source: { pointer: '/data/id' } });
      }
      const p = getProfile(ctx.account, ctx.params.id!);
      const other = ctx.account.conflictFor(p, input);
      if (other) {
        throw new ApiError(409, {
          code: 'duplicate_profile',
          detail: 'A profile already exists with one of these identifiers.',
          source: { pointer: '/data/attributes' },
          meta: { duplicate_profile_id: other.id },
        });
      }
      const patch = readPatchProperties(data.meta);
      const now = ctx.now();
      ctx.account.applyProfile(p, input, { clearNulls: true, strictConflicts: true }, now);
      if (patch) p.properties = patch(p.properties);
      return one(ctx, p, 200);
    },
  },
  {
    method: 'POST',
    path: '/api/profile-import',
    handler(ctx) {
      const { data, input } = readProfile(ctx, { requireIdentifier: true, schema: PROFILE_UPSERT, id: 'optional' });
      const id = typeof data.id === 'string' && data.id !== '' ? data.id : undefined;
      const patch = readPatchProperties(data.meta);
      const { profile, created } = ctx.account.upsertProfile(input, { clearNulls: true, strictConflicts: true }, ctx.now(), id);
      if (patch) profile.properties = patch(profile.properties);
      return one(ctx, profile, created ? 201 : 200);
    },
  },
  { method: 'GET', path: '/api/profiles', handler: listProfiles },
];
