/**
 * Bulk profile import jobs: `POST /api/profile-bulk-import-jobs` validates the envelope synchronously (≤10,000
 * profiles, types, lists) and answers 202 with a `queued` job; profiles are validated and upserted
 * asynchronously (src/emulator/jobs.ts), invalid ones becoming import-errors.
 */
import { ApiError, invalid, invalidParam, type Reply } from '../http.js';
import { jobResource } from '../jobs.js';
import { collectionLinks, conditionValues, pageSize, parseFilter, pickFields, readCursor, sparseFields } from '../query.js';
import { profileResource } from '../resources.js';
import type { RequestContext, RouteModule } from '../router.js';
import type { ImportJobRecord } from '../state.js';
import { hasIdentifier, isPlainObject, validateProfileAttributes } from '../validate.js';
import { unknownList } from '../realism.js';
import { notFound, requireData } from './common.js';

const MAX_PROFILES = 10_000;

function getJob(ctx: RequestContext, id: string): ImportJobRecord {
  const job = ctx.account.jobs.get(id);
  if (!job) throw notFound('profile-bulk-import-job', id);
  return job;
}

/** Whether a bulk import item passes the checks its job would make (attributes, an identifier). */
function profileIsValid(item: unknown, i: number): boolean {
  const p = item as { id?: unknown; attributes?: unknown };
  const r = validateProfileAttributes(p.attributes, `/data/attributes/profiles/data/${i}/attributes`);
  return r.ok && hasIdentifier(r.value, p.id);
}

function createJob(ctx: RequestContext): Reply {
  const data = requireData(ctx.body, 'profile-bulk-import-job', ['relationships']);
  const attrs = data.attributes;
  if (!isPlainObject(attrs)) throw new ApiError(400, invalid("'attributes' is a required field.", '/data/attributes'));
  const profiles = isPlainObject(attrs.profiles) ? attrs.profiles.data : undefined;
  if (!Array.isArray(profiles)) throw new ApiError(400, invalid("'profiles' must contain a 'data' array.", '/data/attributes/profiles/data'));
  if (profiles.length === 0) throw new ApiError(400, invalid('At least one profile is required.', '/data/attributes/profiles/data'));
  if (profiles.length > MAX_PROFILES) {
    throw new ApiError(400, invalid(`A bulk import job may contain at most ${MAX_PROFILES} profiles; got ${profiles.length}.`, '/data/attributes/profiles/data'));
  }
  const errors = [];
  for (let i = 0; i < profiles.length; i++) {
    const p = profiles[i];
    if (!isPlainObject(p)) errors.push(invalid('Each profile must be an object.', `/data/attributes/profiles/data/${i}`));
    else if (p.type !== 'profile') errors.push(invalid("'type' must be 'profile'.", `/data/attributes/profiles/data/${i}/type`));
    else if (!isPlainObject(p.attributes)) errors.push(invalid("'attributes' must be an object.", `/data/attributes/profiles/data/${i}/attributes`));
  }
  if (errors.length > 0) throw new ApiError(400, errors);
  if (ctx.emulator.realism.invalidProfile === 'request' && profiles.some((p, i) => !profileIsValid(p, i))) {
    // observed: one malformed profile refuses the whole request, with no pointer to it
    throw new ApiError(400, { code: 'invalid', title: 'Invalid input.', detail: 'The payload provided in the request is invalid.', source: { pointer: '/data' } });
  }
  const listIds: string[] = [];
  const rel = data.relationships;
  if (rel !== undefined) {
    const lists = isPlainObject(rel) && isPlainObject(rel.lists) ? rel.lists.data : undefined;
    if (!Array.isArray(lists)) throw new ApiError(400, invalid("'lists' must contain a 'data' array.", '/data/relationships/lists/data'));
    lists.forEach((l, i) => {
      if (!isPlainObject(l) || l.type !== 'list' || typeof l.id !== 'string') {
        throw new ApiError(400, invalid("Each list must be {type: 'list', id}.", `/data/relationships/lists/data/${i}`));
      }
      if (!ctx.account.lists.has(l.id)) throw unknownList(ctx.emulator.realism.unknownListStatus, l.id, `/data/relationships/lists/data/${i}/id`);
      listIds.push(l.id);
    });
  }
  const now = ctx.now();
  const job: ImportJobRecord = {
    id: ctx.account.ids.ulid(now),
    status: 'queued',
    totalCount: profiles.length,
    completedCount: 0,
    failedCount: 0,
    createdAt: now,
    startedAt: null,
    completedAt: null,
    expiresAt: null,
    listIds,
    pending: profiles,
    cursor: 0,
    errors: [],
    profileIds: [],
  };
  ctx.account.jobs.set(job.id, job);
  ctx.emulator.enqueueJob(ctx.account, job);
  const resource = jobResource(job, ctx.emulator.baseUrl, sparseFields(ctx.query, 'profile-bulk-import-job'));
  return { status: 202, body: { data: resource, links: resource.links } };
}

function listJobs(ctx: RequestContext): Reply {
  const conds = parseFilter(ctx.query.get('filter'), { status: ['equals', 'any'] });
  const sort = ctx.query.get('sort');
  if (sort !== null && sort !== 'created_at' && sort !== '-created_at') throw new ApiError(400, invalidParam(`'${sort}' is not a valid sort.`, 'sort'));
  const size = pageSize(ctx.query, 20, 100);
  const pos = readCursor(ctx.query);
  let jobs = [...ctx.account.jobs.values()].filter((j) => conds.every((c) => conditionValues(c).includes(j.status)));
  if (sort === '-created_at') jobs = jobs.reverse();
  const page = jobs.slice(pos, pos + size);
  const base = ctx.emulator.baseUrl;
  return { status: 200, body: { data: page.map((j) => jobResource(j, base, sparseFields(ctx.query, 'profile-bulk-import-job'))), links: collectionLinks(base, ctx.path, ctx.query, pos + size < jobs.length ? pos + size : null) } };
}

function jobProfiles(ctx: RequestContext, idsOnly: boolean): Reply {
  const job = getJob(ctx, ctx.params.id!);
  const size = pageSize(ctx.query, 20, 100);
  const pos = readCursor(ctx.query);
  const ids = [...new Set(job.profileIds)];
  const page = ids.slice(pos, pos + size);
  const base = ctx.emulator.baseUrl;
  const fields = sparseFields(ctx.query, 'profile');
  const data = idsOnly
    ? page.map((id) => ({ type: 'profile', id }))
    : page.flatMap((id) => {
        const p = ctx.account.profilesById.get(id);
        return p ? [profileResource(p, base, fields)] : [];
      });
  return { status: 200, body: { data, links: collectionLinks(base, ctx.path, ctx.query, pos + size < ids.length ? pos + size : null) } };
}

export const bulkImportRoutes: RouteModule = [
  { method: 'POST', path: '/api/profile-bulk-import-jobs', handler: createJob },
  { method: 'GET', path: '/api/profile-bulk-import-jobs', handler: listJobs },
  {
    method: 'GET',
    path: '/api/profile-bulk-import-jobs/{job_id}',
    handler(ctx) {
      const resource = jobResource(getJob(ctx, ctx.params.job_id!), ctx.emulator.baseUrl, sparseFields(ctx.query, 'profile-bulk-import-job'));
      return { status: 200, body: { data: resource, links: resource.links } };
    },
  },
  {
    method: 'GET',
    path: '/api/profile-bulk-import-jobs/{id}/import-errors',
    handler(ctx) {
      const job = getJob(ctx, ctx.params.id!);
      const size = pageSize(ctx.query, 20, 100);
      const pos = readCursor(ctx.query);
      const page = job.errors.slice(pos, pos + size);
      const fields = sparseFields(ctx.query, 'import-error');
      const base = ctx.emulator.baseUrl;
      return {
        status: 200,
        body: {
          data: page.map((e) => ({
            type: 'import-error',
            id: e.id,
            attributes: pickFields({ code: e.code, title: e.title, detail: e.detail, source: e.source, original_payload: e.original_payload }, fields),
          })),
          links: collectionLinks(base, ctx.path, ctx.query, pos + size < job.errors.length ? pos + size : null),
        },
      };
    },
  },
  { method: 'GET', path: '/api/profile-bulk-import-jobs/{id}/profiles', handler: (ctx) => jobProfiles(ctx, false) },
  { method: 'GET', path: '/api/profile-bulk-import-jobs/{id}/relationships/profiles', handler: (ctx) => jobProfiles(ctx, true) },
];
