/**
 * Suppressions: `POST /api/profile-suppression-bulk-create-jobs` (≤100 emails, or every member of one list or
 * segment). The whole request is validated synchronously (any bad item → 400 with one error per problem); it is
 * applied at once (after every subscribe job accepted before it): a profile found by the email gets the `USER_SUPPRESSED` email suppression (one not found is
 * created and suppressed, as the spec says), and the answer is 202 with the job, already `complete`.
 */
import { isoMicros, ApiError, invalid, type ErrorInit, type Reply } from '../http.js';
import { unknownList } from '../realism.js';
import type { RequestContext, RouteModule } from '../router.js';
import type { GroupRecord, ProfileRecord } from '../state.js';
import { EMAIL_DETAIL, isPlainObject, isValidEmail } from '../validate.js';
import { notFound, requireData } from './common.js';
import { sparseFields } from '../query.js';
import { applyDueConsent } from '../subscriptions.js';

export const MAX_SUPPRESS_PROFILES = 100;
const TYPE = 'profile-suppression-bulk-create-job';
/** The suppression reason of a manual (API) suppression; an unsuppress lifts only this one. */
export const USER_SUPPRESSED = 'USER_SUPPRESSED';

/** The emails of `profiles.data` (problems go to `errors`). */
function readEmails(profiles: unknown, errors: ErrorInit[]): string[] {
  const base = '/data/attributes/profiles/data';
  const data = isPlainObject(profiles) ? profiles.data : undefined;
  if (!Array.isArray(data)) throw new ApiError(400, invalid("'profiles' must contain a 'data' array.", base));
  if (data.length > MAX_SUPPRESS_PROFILES) {
    throw new ApiError(400, invalid(`A suppression request may contain at most ${MAX_SUPPRESS_PROFILES} profiles; got ${data.length}.`, base));
  }
  const emails: string[] = [];
  data.forEach((p, i) => {
    const at = `${base}/${i}`;
    if (!isPlainObject(p)) return void errors.push(invalid('Each profile must be an object.', at));
    if (p.type !== 'profile') errors.push(invalid("'type' must be 'profile'.", `${at}/type`));
    const attrs = p.attributes;
    if (!isPlainObject(attrs)) return void errors.push(invalid("'attributes' is a required field.", `${at}/attributes`));
    for (const k in attrs) if (k !== 'email') errors.push(invalid(`'${k}' is not a valid field for the resource 'profile'.`, `${at}/attributes/${k}`));
    const email = attrs.email;
    if (email === undefined || email === null) errors.push(invalid("'email' is a required field.", `${at}/attributes/email`));
    else if (typeof email !== 'string' || !isValidEmail(email.trim())) errors.push(invalid(EMAIL_DETAIL, `${at}/attributes/email`));
    else emails.push(email.trim());
  });
  return emails;
}

/** The list or segment of `relationships` (null when none). */
function readGroup(ctx: RequestContext, rel: unknown, errors: ErrorInit[]): GroupRecord | null {
  if (rel === undefined || rel === null) return null;
  for (const kind of ['list', 'segment'] as const) {
    const member = isPlainObject(rel) ? rel[kind] : undefined;
    if (member === undefined) continue;
    const d = isPlainObject(member) ? member.data : undefined;
    const at = `/data/relationships/${kind}/data`;
    if (!isPlainObject(d) || d.type !== kind || typeof d.id !== 'string') {
      errors.push(invalid(`'${kind}' must be {data: {type: '${kind}', id}}.`, at));
      return null;
    }
    const group = (kind === 'list' ? ctx.account.lists : ctx.account.segments).get(d.id);
    if (group) return group;
    if (errors.length > 0) return null;
    throw kind === 'list' ? unknownList(ctx.emulator.realism.unknownListStatus, d.id, `${at}/id`) : notFound('segment', d.id);
  }
  return null;
}

function suppress(p: ProfileRecord, now: number): boolean {
  const sub = (p.subscriptions ??= { suppression: [], listSuppressions: [] });
  if (sub.suppression.some((s) => s.reason === USER_SUPPRESSED)) return false;
  sub.suppression.push({ reason: USER_SUPPRESSED, timestamp: now });
  return true;
}

function bulkSuppress(ctx: RequestContext): Reply {
  const data = requireData(ctx.body, TYPE, ['relationships']);
  const attrs = data.attributes;
  if (!isPlainObject(attrs)) throw new ApiError(400, invalid("'attributes' is a required field.", '/data/attributes'));
  const errors: ErrorInit[] = [];
  for (const k in attrs) if (k !== 'profiles') errors.push(invalid(`'${k}' is not a valid field for the resource '${TYPE}'.`, `/data/attributes/${k}`));
  const emails = attrs.profiles === undefined || attrs.profiles === null ? [] : readEmails(attrs.profiles, errors);
  const group = readGroup(ctx, data.relationships, errors);
  if (errors.length === 0 && emails.length === 0 && group === null) {
    errors.push(invalid('Provide profiles by email, or a list or segment whose members to suppress.', '/data/attributes/profiles'));
  }
  if (errors.length > 0) throw new ApiError(400, errors);
  const now = ctx.now();
  const account = ctx.account;
  applyDueConsent(account, now, true); // after the subscribe jobs accepted before it (they would lift it otherwise)
  const targets = emails.map((email) => account.upsertProfile({ strings: { email } }, { clearNulls: false, strictConflicts: false }, now).profile);
  for (const id of group?.members.keys() ?? []) {
    const p = account.profilesById.get(id);
    if (p) targets.push(p);
  }
  let completed = 0;
  for (const p of targets) if (suppress(p, now)) completed++;
  const id = account.ids.ulid(now);
  const self = `${ctx.emulator.baseUrl}/api/${TYPE}s/${id}/`;
  const attributes: Record<string, unknown> = {
    status: 'complete',
    created_at: isoMicros(now),
    total_count: targets.length,
    completed_count: completed,
    completed_at: isoMicros(now),
    skipped_count: targets.length - completed,
  };
  const fields = sparseFields(ctx.query, TYPE);
  if (fields) for (const k of Object.keys(attributes)) if (!fields.has(k)) delete attributes[k];
  const job = { type: TYPE, id, attributes, links: { self } };
  return { status: 202, body: { data: job, links: { self } } };
}

export const suppressionRoutes: RouteModule = [{ method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', handler: bulkSuppress }];
