/**
 * Consent: `POST /api/profile-subscription-bulk-create-jobs` (≤1000 profiles) and
 * `POST /api/profile-subscription-bulk-delete-jobs` (≤100). Both validate the whole request synchronously (any bad
 * item → 400 with one error per problem) and answer 202 with an empty body. A subscribe job is applied
 * `subscriptionDelayMs` later (Klaviyo processes it asynchronously, with no status endpoint); an unsubscribe job is
 * applied at once, after every subscribe job accepted before it.
 *
 * SMS consent for a phone number whose region is not among `smsRegions` (the account's sending numbers) is answered
 * 400 at the profile's `phone_number` since revision 2024-05-15; with an older revision it is accepted and dropped
 * (the email channel of the same profile is still applied), as Klaviyo did.
 */
import { phoneRegion } from '../../klaviyo/sms-regions.js';
import { unknownList } from '../realism.js';
import { ApiError, invalid, type ErrorInit, type Reply } from '../http.js';
import type { RequestContext, RouteModule } from '../router.js';
import type { Account, GroupRecord, ProfileRecord } from '../state.js';
import { applyDueConsent, subscribe, unsubscribe, type ConsentChannel } from '../subscriptions.js';
import { EMAIL_DETAIL, isPlainObject, isValidEmail, isValidPhone, PHONE_DETAIL } from '../validate.js';
import { requireData } from './common.js';

export const MAX_SUBSCRIBE_PROFILES = 1000;
export const MAX_UNSUBSCRIBE_PROFILES = 100;
export const SMS_WITHOUT_PHONE = "'phone_number' must not be empty when the sms channel is included in 'subscriptions'.";
export const EMAIL_WITHOUT_EMAIL = "'email' must not be empty when the email channel is included in 'subscriptions'.";
const LENIENT = { clearNulls: false, strictConflicts: false };
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/;

/** Channel → sub-channels the emulator accepts (`model` = stored; `ignored` = accepted without effect). */
const CHANNELS: Record<string, Record<string, ConsentChannel | 'ignored'>> = {
  email: { marketing: 'email', open_tracking: 'ignored' },
  sms: { marketing: 'sms', transactional: 'smsTransactional' },
  whatsapp: { marketing: 'ignored', transactional: 'ignored', conversational: 'ignored' },
  push: { marketing: 'ignored', tokens: 'ignored' },
};

/** Subscribe has no `whatsapp.conversational` (only unsubscribe does); push takes an `anonymous_id` there. */
const SUBSCRIBE_CHANNELS: Record<string, Record<string, ConsentChannel | 'ignored'>> = {
  ...CHANNELS,
  whatsapp: { marketing: 'ignored', transactional: 'ignored' },
  push: { marketing: 'ignored', tokens: 'ignored', anonymous_id: 'ignored' },
};

/** Attributes of a profile item, per the request schemas. */
const ITEM_ATTRIBUTES = {
  subscribe: ['email', 'phone_number', 'subscriptions', 'age_gated_date_of_birth'],
  unsubscribe: ['email', 'phone_number', 'subscriptions'],
} as const;

interface ChannelChange {
  channel: ConsentChannel;
  consentedAt: number | null;
}

interface ProfileItem {
  id?: string;
  email?: string;
  phone?: string;
  changes: ChannelChange[];
}

interface JobOptions {
  kind: 'subscribe' | 'unsubscribe';
  historical: boolean;
  now: number;
  /** Subscribe: the regions the account can text, and whether SMS consent elsewhere is refused (400) or dropped. */
  sms: { regions: ReadonlySet<string>; refuse: boolean };
}

/** The first revision that answers 400 to SMS consent the account cannot send to (earlier ones drop it). */
const SMS_REGION_REVISION = '2024-05-15';

/** SMS consent for a region outside the account's sending numbers (the wording is ours: Klaviyo's is not published). */
export function smsRegionDetail(region: string | undefined): string {
  return `SMS consent cannot be given for this phone number: the account has no SMS sending number for its region (${region ?? 'unknown'}).`;
}

/** Validate one item of `profiles.data`; problems go to `errors`. */
function readItem(v: unknown, base: string, o: JobOptions, errors: ErrorInit[]): ProfileItem | null {
  const before = errors.length;
  if (!isPlainObject(v)) {
    errors.push(invalid('Each profile must be an object.', base));
    return null;
  }
  if (v.type !== 'profile') errors.push(invalid("'type' must be 'profile'.", `${base}/type`));
  const attrs = v.attributes;
  if (!isPlainObject(attrs)) {
    errors.push(invalid("'attributes' is a required field.", `${base}/attributes`));
    return null;
  }
  const item: ProfileItem = { changes: [] };
  if (o.kind === 'unsubscribe' && v.id !== undefined) errors.push(invalid("'id' is not allowed when unsubscribing; identify profiles by email or phone_number.", `${base}/id`));
  if (o.kind === 'subscribe' && typeof v.id === 'string' && v.id !== '') item.id = v.id;
  for (const k in attrs) {
    if (!(ITEM_ATTRIBUTES[o.kind] as readonly string[]).includes(k)) errors.push(invalid(`'${k}' is not a valid field for the resource 'profile'.`, `${base}/attributes/${k}`));
  }
  const dob = attrs.age_gated_date_of_birth;
  if (o.kind === 'subscribe' && dob !== undefined && dob !== null && (typeof dob !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(dob) || Number.isNaN(Date.parse(dob)))) {
    errors.push(invalid("'age_gated_date_of_birth' must be a date (YYYY-MM-DD).", `${base}/attributes/age_gated_date_of_birth`));
  }
  const email = attrs.email;
  if (email !== undefined && email !== null) {
    if (typeof email !== 'string' || !isValidEmail(email.trim())) errors.push(invalid(EMAIL_DETAIL, `${base}/attributes/email`));
    else item.email = email.trim();
  }
  const phone = attrs.phone_number;
  if (phone !== undefined && phone !== null) {
    if (typeof phone !== 'string' || !isValidPhone(phone.trim())) errors.push(invalid(PHONE_DETAIL, `${base}/attributes/phone_number`));
    else item.phone = phone.trim();
  }
  const subs = attrs.subscriptions;
  const sp = `${base}/attributes/subscriptions`;
  if (subs === undefined || subs === null) errors.push(invalid("'subscriptions' is a required field.", sp));
  else if (!isPlainObject(subs)) errors.push(invalid("'subscriptions' must be an object.", sp));
  else readChannels(subs, base, email, phone, item, o, errors);
  if (o.kind === 'subscribe' && item.phone !== undefined && item.changes.some((c) => c.channel !== 'email')) checkSmsRegion(item, base, o, errors);
  if (item.email === undefined && item.phone === undefined && item.id === undefined && errors.length === before) {
    errors.push(invalid('A profile identifier is required (email or phone_number).', `${base}/attributes`));
  }
  return errors.length > before ? null : item;
}

/** SMS consent for a region the account cannot text: a 400 at the phone number, or (older revisions) dropped. */
function checkSmsRegion(item: ProfileItem, base: string, o: JobOptions, errors: ErrorInit[]): void {
  const region = phoneRegion(item.phone!);
  if (region !== undefined && o.sms.regions.has(region)) return;
  if (o.sms.refuse) errors.push(invalid(smsRegionDetail(region), `${base}/attributes/phone_number`));
  else item.changes = item.changes.filter((c) => c.channel === 'email');
}

/**
 * The channels of an item's `subscriptions` object (at `${base}/attributes/subscriptions`): their changes go to
 * `item.changes`, problems to `errors`. `email` and `phone` are the item's attributes as sent.
 */
function readChannels(subs: Record<string, unknown>, base: string, email: unknown, phone: unknown, item: ProfileItem, o: JobOptions, errors: ErrorInit[]): void {
  const sp = `${base}/attributes/subscriptions`;
  for (const ch in subs) {
    const sub = o.kind === 'subscribe' ? SUBSCRIBE_CHANNELS[ch] : CHANNELS[ch];
    const chv = subs[ch];
    if (!sub) {
      errors.push(invalid(`'${ch}' is not a valid subscription channel.`, `${sp}/${ch}`));
      continue;
    }
    if (!isPlainObject(chv)) {
      errors.push(invalid(`'${ch}' must be an object.`, `${sp}/${ch}`));
      continue;
    }
    if (ch === 'sms' && (typeof phone !== 'string' || phone.trim() === '')) {
      errors.push(invalid(SMS_WITHOUT_PHONE, `${base}/attributes/phone_number`));
    }
    if (ch === 'email' && (email === undefined || email === null || email === '') && !item.id) {
      errors.push(invalid(EMAIL_WITHOUT_EMAIL, `${base}/attributes/email`));
    }
    for (const key in chv) {
      const target = sub[key];
      const pp = `${sp}/${ch}/${key}`;
      if (!target) {
        errors.push(invalid(`'${key}' is not a valid field for the '${ch}' channel.`, pp));
        continue;
      }
      if (key === 'tokens' || key === 'anonymous_id') continue;
      const param = chv[key];
      if (!isPlainObject(param)) {
        errors.push(invalid(`'${key}' must be an object.`, pp));
        continue;
      }
      const consentedAt = readConsent(param, key, pp, o, errors);
      if (target !== 'ignored') item.changes.push({ channel: target, consentedAt });
    }
  }
}

/** The `consent` and `consented_at` of one sub-channel (`key`, at `pp`): the consent time, null when none. */
function readConsent(param: Record<string, unknown>, key: string, pp: string, o: JobOptions, errors: ErrorInit[]): number | null {
  const wanted = o.kind === 'subscribe' ? 'SUBSCRIBED' : 'UNSUBSCRIBED';
  if (param.consent === undefined) errors.push(invalid("'consent' is a required field.", `${pp}/consent`));
  else if (param.consent !== wanted) errors.push(invalid(`'consent' must be one of: ${wanted}.`, `${pp}/consent`));
  let consentedAt: number | null = null;
  const at = param.consented_at;
  if (o.kind === 'subscribe' && at !== undefined && at !== null) {
    const ms = typeof at === 'string' && ISO_DATETIME.test(at) ? Date.parse(at) : NaN;
    if (!o.historical) {
      errors.push(invalid("'consented_at' may only be provided when 'historical_import' is true.", `${pp}/consented_at`));
    } else if (Number.isNaN(ms)) errors.push(invalid("'consented_at' must be a valid ISO 8601 datetime.", `${pp}/consented_at`));
    else if (ms > o.now) errors.push(invalid("'consented_at' must be in the past.", `${pp}/consented_at`));
    else consentedAt = ms;
  } else if (o.kind === 'subscribe' && o.historical && key !== 'open_tracking') {
    errors.push(invalid("'consented_at' is required when 'historical_import' is true.", `${pp}/consented_at`));
  }
  return consentedAt;
}

function readJob(ctx: RequestContext, kind: JobOptions['kind']): { items: ProfileItem[]; list: GroupRecord | null; customSource: string | null; historical: boolean } {
  const type = kind === 'subscribe' ? 'profile-subscription-bulk-create-job' : 'profile-subscription-bulk-delete-job';
  const max = kind === 'subscribe' ? MAX_SUBSCRIBE_PROFILES : MAX_UNSUBSCRIBE_PROFILES;
  const data = requireData(ctx.body, type, ['relationships']);
  const attrs = data.attributes;
  if (!isPlainObject(attrs)) throw new ApiError(400, invalid("'attributes' is a required field.", '/data/attributes'));
  const errors: ErrorInit[] = [];
  let historical = false;
  let customSource: string | null = null;
  const jobAttributes = kind === 'subscribe' ? ['profiles', 'custom_source', 'historical_import'] : ['profiles'];
  for (const k in attrs) if (!jobAttributes.includes(k)) errors.push(invalid(`'${k}' is not a valid field for the resource '${type}'.`, `/data/attributes/${k}`));
  if (kind === 'subscribe') {
    const h = attrs.historical_import;
    if (h !== undefined && h !== null && typeof h !== 'boolean') errors.push(invalid("'historical_import' must be a boolean.", '/data/attributes/historical_import'));
    historical = h === true;
    const cs = attrs.custom_source;
    if (cs !== undefined && cs !== null && typeof cs !== 'string') errors.push(invalid("'custom_source' must be a string.", '/data/attributes/custom_source'));
    if (typeof cs === 'string') customSource = cs;
  }
  const profiles = isPlainObject(attrs.profiles) ? attrs.profiles.data : undefined;
  if (!Array.isArray(profiles)) throw new ApiError(400, invalid("'profiles' must contain a 'data' array.", '/data/attributes/profiles/data'));
  if (profiles.length === 0) throw new ApiError(400, invalid('At least one profile is required.', '/data/attributes/profiles/data'));
  if (profiles.length > max) {
    throw new ApiError(400, invalid(`A ${kind} request may contain at most ${max} profiles; got ${profiles.length}.`, '/data/attributes/profiles/data'));
  }
  const revision = String(ctx.req.headers.revision ?? '').slice(0, 10);
  const o: JobOptions = { kind, historical, now: ctx.now(), sms: { regions: ctx.emulator.smsRegions, refuse: revision >= SMS_REGION_REVISION } };
  const items: ProfileItem[] = [];
  profiles.forEach((p, i) => {
    const item = readItem(p, `/data/attributes/profiles/data/${i}`, o, errors);
    if (item) items.push(item);
  });
  let list: GroupRecord | null = null;
  const rel = data.relationships;
  if (rel !== undefined && rel !== null) {
    const ld = isPlainObject(rel) && isPlainObject(rel.list) ? rel.list.data : undefined;
    if (!isPlainObject(ld) || ld.type !== 'list' || typeof ld.id !== 'string') {
      errors.push(invalid("'list' must be {data: {type: 'list', id}}.", '/data/relationships/list/data'));
    } else {
      list = ctx.account.lists.get(ld.id) ?? null;
      if (!list && errors.length === 0) {
        throw unknownList(ctx.emulator.realism.unknownListStatus, ld.id, '/data/relationships/list/data/id');
      }
    }
  }
  for (const item of items) {
    if (item.id && !ctx.account.profilesById.has(item.id)) {
      errors.push(invalid(`A profile with id ${item.id} does not exist.`, `/data/attributes/profiles/data/${profiles.findIndex((p) => isPlainObject(p) && p.id === item.id)}/id`));
    }
  }
  if (errors.length > 0) throw new ApiError(400, errors);
  return { items, list, customSource, historical };
}

function resolve(account: Account, item: ProfileItem, now: number): ProfileRecord {
  const strings: { email?: string; phone_number?: string } = {};
  if (item.email !== undefined) strings.email = item.email;
  if (item.phone !== undefined) strings.phone_number = item.phone;
  if (item.id) {
    const p = account.profilesById.get(item.id)!;
    account.applyProfile(p, { strings }, LENIENT, now);
    return p;
  }
  return account.upsertProfile({ strings }, LENIENT, now).profile;
}

function bulkSubscribe(ctx: RequestContext): Reply {
  const { items, list, customSource, historical } = readJob(ctx, 'subscribe');
  const accepted = ctx.now();
  const doubleOptin = !historical && list?.optInProcess === 'double_opt_in';
  const account = ctx.account;
  const apply = (): void => {
    const now = Math.max(accepted, ctx.now());
    for (const item of items) {
      const p = resolve(account, item, now);
      for (const c of item.changes) {
        subscribe(p, c.channel, { consentedAt: c.consentedAt, now: accepted, customSource, doubleOptin, listId: list?.id ?? null });
      }
      if (list && account.lists.get(list.id) === list) account.addMember(list, p.id, now);
    }
  };
  const delay = ctx.emulator.subscriptionDelayMs;
  if (delay === 0) apply();
  else account.pendingConsent.push({ dueAt: accepted + delay, apply });
  return { status: 202 };
}

function bulkUnsubscribe(ctx: RequestContext): Reply {
  const { items, list } = readJob(ctx, 'unsubscribe');
  const now = ctx.now();
  applyDueConsent(ctx.account, now, true); // after the subscribe jobs accepted before it
  for (const item of items) {
    const p = resolve(ctx.account, item, now);
    // Spec warning: profiles not in the given list are unsubscribed globally.
    const member = list !== null && ctx.account.removeMember(list, p.id);
    for (const c of item.changes) unsubscribe(p, c.channel, now, member ? list.id : null);
  }
  return { status: 202 };
}

export const subscriptionRoutes: RouteModule = [
  { method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', handler: bulkSubscribe },
  { method: 'POST', path: '/api/profile-subscription-bulk-delete-jobs', handler: bulkUnsubscribe },
];
