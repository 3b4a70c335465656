/**
 * Hand-written validation of profile and event payloads (no zod on the hot path: the emulator must accept
 * tens of thousands of events per second). Each check produces a Klaviyo-style `invalid` error with a pointer.
 */
import { isValidPhoneNumber } from 'libphonenumber-js';
import { ApiError, invalid, type ErrorInit } from './http.js';

export const MAX_STRING_BYTES = 100 * 1024;
export const MAX_PROFILE_BYTES = 100 * 1024;
export const MAX_EVENT_PROPERTIES = 400;
export const MIN_EVENT_TIME = Date.UTC(1990, 0, 1);
export const PHONE_DETAIL = 'Invalid phone number format (Example of a valid format: +12345678901)';
export const EMAIL_DETAIL = 'Invalid email address';

/**
 * Where a payload sits in the request body: a JSON pointer, or an object that renders one when an error needs it
 * (bulk requests validate thousands of items and build no pointer string for the valid ones).
 */
export type Pointer = string | { toString(): string };

/** Plain string attributes of a profile. */
export const PROFILE_STRING_FIELDS = [
  'email',
  'phone_number',
  'external_id',
  'anonymous_id',
  'first_name',
  'last_name',
  'organization',
  'locale',
  'title',
  'image',
] as const;
export type ProfileStringField = (typeof PROFILE_STRING_FIELDS)[number];
const STRING_FIELD_SET = new Set<string>(PROFILE_STRING_FIELDS);
/**
 * Which attributes beyond the common profile ones an operation's schema has: `_kx` (accepted and ignored) on
 * profile-import, bulk import and events; `anonymous_id` only on events' profiles; `meta` inside the attributes of
 * `POST /api/events`' profile (OnsiteProfileMeta; ignored). Everything else outside the schema is a 400.
 */
export interface ProfileSchemaOptions {
  kx?: boolean;
  anonymousId?: boolean;
  meta?: boolean;
}
/** `POST /api/profiles`, `PATCH /api/profiles/{id}`. */
export const PROFILE_CREATE: ProfileSchemaOptions = {};
/** `POST /api/profile-import`, bulk import items. */
export const PROFILE_UPSERT: ProfileSchemaOptions = { kx: true };
/** Profiles inside events (bulk entries have `meta` beside `attributes`, not inside). */
export const EVENT_PROFILE: ProfileSchemaOptions = { kx: true, anonymousId: true };
export const EVENT_PROFILE_SINGLE: ProfileSchemaOptions = { kx: true, anonymousId: true, meta: true };
export const LOCATION_FIELDS = new Set(['address1', 'address2', 'city', 'country', 'latitude', 'longitude', 'region', 'zip', 'timezone', 'ip']);

/** Validated, normalised profile attributes. `undefined` = absent; `null` = explicit null. */
export interface ProfileInput {
  strings: Partial<Record<ProfileStringField, string | null>>;
  location?: Record<string, unknown> | null;
  properties?: Record<string, unknown> | null;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const EMAIL_RE = /^[^\s@"(),:;<>[\]\\]+@[^\s@"(),:;<>[\]\\]+\.[A-Za-z0-9-]{2,}$/;
export function isValidEmail(email: string): boolean {
  return email.length <= 254 && EMAIL_RE.test(email) && !email.includes('..');
}

const E164_RE = /^\+[1-9]\d{6,14}$/;
const phoneCache = new Map<string, boolean>();
export function isValidPhone(phone: string): boolean {
  if (!E164_RE.test(phone)) return false;
  let ok = phoneCache.get(phone);
  if (ok === undefined) {
    ok = isValidPhoneNumber(phone);
    if (phoneCache.size > 100_000) phoneCache.clear();
    phoneCache.set(phone, ok);
  }
  return ok;
}

/** UTF-8 length of a string, cheap for ASCII-only short strings. */
function tooLong(s: string): boolean {
  return s.length > MAX_STRING_BYTES / 4 && Buffer.byteLength(s, 'utf8') > MAX_STRING_BYTES;
}

/**
 * Klaviyo's limit on nesting inside event properties ("10 nesting levels", Klaviyo's Events API docs, developers.klaviyo.com): a property
 * value may hold objects and arrays nested at most 10 deep (`{"a":{…}}` is one level). The emulator applies the
 * same limit to profile properties, where Klaviyo documents none.
 */
export const MAX_PROPERTY_NESTING = 10;

/** What is wrong with a value inside properties: a string over 100 KB, or containers nested too deep. */
type ValueProblem = 'long' | 'deep' | null;

/**
 * The first problem inside a property value whose containers would be at nesting `level` (1 for a value directly in
 * the properties object). The walk stops below `MAX_PROPERTY_NESTING`, so its recursion is bounded.
 */
function valueProblem(value: unknown, level: number): ValueProblem {
  if (typeof value === 'string') return tooLong(value) ? 'long' : null;
  if (typeof value !== 'object' || value === null) return null;
  if (level > MAX_PROPERTY_NESTING) return 'deep';
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = valueProblem(value[i], level + 1);
      if (p) return p;
    }
    return null;
  }
  for (const k in value) {
    const p = valueProblem((value as Record<string, unknown>)[k], level + 1);
    if (p) return p;
  }
  return null;
}

/** The pointer (under `path`) of the first problem `valueProblem` finds, with the problem; null when none. */
function findProblem(value: unknown, path: string, level: number): { pointer: string; problem: 'long' | 'deep' } | null {
  if (typeof value === 'string') return tooLong(value) ? { pointer: path, problem: 'long' } : null;
  if (typeof value !== 'object' || value === null) return null;
  if (level > MAX_PROPERTY_NESTING) return { pointer: path, problem: 'deep' };
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [k, v] of entries) {
    const found = findProblem(v, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, level + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Check the values of a properties object (profile or event properties, `patch_properties.append`): strings at
 * most 100 KB, nesting at most `MAX_PROPERTY_NESTING`. Returns the error at the first problem, or null. A valid
 * object costs one bounded walk and builds no pointer.
 */
export function propertiesError(props: Record<string, unknown>, path: Pointer): ErrorInit | null {
  let bad = false;
  for (const k in props) {
    if (valueProblem(props[k], 1)) {
      bad = true;
      break;
    }
  }
  if (!bad) return null;
  const found = findProblem(props, `${path}`, 0)!;
  return found.problem === 'long'
    ? invalid('Strings must be at most 100 KB.', found.pointer)
    : invalid(`Properties must not be nested more than ${MAX_PROPERTY_NESTING} levels deep.`, found.pointer);
}

/**
 * Validate profile `attributes` at `base` (e.g. `/data/attributes`). Returns the normalised input or the list of
 * errors (one per bad field).
 */
export function validateProfileAttributes(
  attrs: unknown,
  base: Pointer,
  schema: ProfileSchemaOptions = PROFILE_UPSERT,
): { ok: true; value: ProfileInput } | { ok: false; errors: ErrorInit[] } {
  if (!isPlainObject(attrs)) return { ok: false, errors: [invalid('Attributes must be an object.', `${base}`)] };
  const errors: ErrorInit[] = [];
  const value: ProfileInput = { strings: {} };
  for (const key in attrs) {
    const v = attrs[key];
    if (key === 'anonymous_id' && !schema.anonymousId) {
      errors.push(invalid(`'${key}' is not a valid field for the resource 'profile'.`, `${base}/${key}`));
    } else if (STRING_FIELD_SET.has(key)) {
      if (v === null) {
        value.strings[key as ProfileStringField] = null;
        continue;
      }
      if (typeof v !== 'string') {
        errors.push(invalid(`'${key}' must be a string.`, `${base}/${key}`));
        continue;
      }
      if (tooLong(v)) {
        errors.push(invalid(`'${key}' must be at most 100 KB.`, `${base}/${key}`));
        continue;
      }
      let s = v;
      if (key === 'email') {
        s = v.trim();
        if (s === '') {
          value.strings.email = null;
          continue;
        }
        if (!isValidEmail(s)) {
          errors.push(invalid(EMAIL_DETAIL, `${base}/${key}`));
          continue;
        }
      } else if (key === 'phone_number') {
        s = v.trim();
        if (s === '') {
          value.strings.phone_number = null;
          continue;
        }
        if (!isValidPhone(s)) {
          errors.push(invalid(PHONE_DETAIL, `${base}/${key}`));
          continue;
        }
      }
      value.strings[key as ProfileStringField] = s;
    } else if (key === 'properties') {
      if (v === null) value.properties = null;
      else if (!isPlainObject(v)) errors.push(invalid("'properties' must be an object.", `${base}/${key}`));
      else {
        const problem = propertiesError(v, `${base}/${key}`);
        if (problem) errors.push(problem);
        else value.properties = v;
      }
    } else if (key === 'location') {
      if (v === null) value.location = null;
      else if (!isPlainObject(v)) errors.push(invalid("'location' must be an object.", `${base}/${key}`));
      else {
        for (const lk in v) {
          if (!LOCATION_FIELDS.has(lk)) errors.push(invalid(`'${lk}' is not a valid field for 'location'.`, `${base}/${key}/${lk}`));
          else {
            const lv = v[lk];
            const numeric = lk === 'latitude' || lk === 'longitude';
            if (lv !== null && typeof lv !== 'string' && !(numeric && typeof lv === 'number')) {
              errors.push(invalid(`'${lk}' must be a ${numeric ? 'number or string' : 'string'}.`, `${base}/${key}/${lk}`));
            }
          }
        }
        value.location = v;
      }
    } else if (key === '_kx' && schema.kx) {
      if (v !== null && typeof v !== 'string') errors.push(invalid(`'_kx' must be a string.`, `${base}/${key}`));
    } else if (key === 'meta' && schema.meta) {
      if (v !== null && !isPlainObject(v)) errors.push(invalid(`'meta' must be an object.`, `${base}/${key}`));
    } else {
      errors.push(invalid(`'${key}' is not a valid field for the resource 'profile'.`, `${base}/${key}`));
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

/** True when the input carries at least one identifier Klaviyo can resolve a profile by. */
export function hasIdentifier(p: ProfileInput, id?: unknown): boolean {
  const s = p.strings;
  return Boolean(s.email || s.phone_number || s.external_id || s.anonymous_id || (typeof id === 'string' && id));
}

/** A validated event (bulk or single), ready to apply. */
export interface EventInput {
  metricName: string;
  properties: Record<string, unknown>;
  /** Epoch ms truncated to the second. */
  time: number;
  value?: number;
  valueCurrency?: string;
  uniqueId?: string;
  backfill: boolean;
}

/** First attribute of a metric other than `name` / `service`, or null. */
function badMetricKey(attrs: Record<string, unknown>): string | null {
  for (const k in attrs) if (k !== 'name' && k !== 'service') return k;
  return null;
}

/** The last time string parsed (the events of one order share their time): its text and epoch ms (NaN = invalid). */
let lastTimeText = '';
let lastTimeMs = NaN;

/** An ISO 8601 date or datetime as epoch ms (no zone = UTC); NaN when it is not one. */
function parseIsoTime(t: unknown): number {
  if (typeof t !== 'string') return NaN;
  if (t === lastTimeText) return lastTimeMs;
  const ms = ISO_RE.test(t) ? Date.parse(t.length === 10 ? t + 'T00:00:00Z' : /[zZ]|[+-]\d{2}:?\d{2}$/.test(t.slice(10)) ? t : t + 'Z') : NaN;
  lastTimeText = t;
  lastTimeMs = ms;
  return ms;
}

/** The last currency code checked and its upper-case form (events of a feed share their currency). */
let lastCurrency: string | null = null;
let lastCurrencyUpper = '';

/** A 3-letter currency code in upper case, or null when `cur` is not one. */
function currencyCode(cur: string): string | null {
  if (cur === lastCurrency) return lastCurrencyUpper;
  if (!/^[A-Za-z]{3}$/.test(cur)) return null;
  lastCurrency = cur;
  lastCurrencyUpper = cur.toUpperCase();
  return lastCurrencyUpper;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** The attributes of an event: properties, time, value, value_currency, unique_id, backfill, metric, profile. */
function isEventField(k: string): boolean {
  switch (k) {
    case 'properties':
    case 'time':
    case 'value':
    case 'value_currency':
    case 'unique_id':
    case 'backfill':
    case 'metric':
    case 'profile':
      return true;
    default:
      return false;
  }
}

/**
 * Validate event attributes at `base`. `needProfile` is false for bulk entries (the profile sits on the entry).
 * Errors are pushed to `errors`; returns the event or null.
 */
export function validateEventAttributes(
  attrs: unknown,
  base: Pointer,
  now: number,
  errors: ErrorInit[],
  allowProfile: boolean,
): EventInput | null {
  if (!isPlainObject(attrs)) {
    errors.push(invalid('Attributes must be an object.', `${base}`));
    return null;
  }
  const before = errors.length;
  for (const k in attrs) {
    if (!isEventField(k) || (k === 'profile' && !allowProfile)) {
      errors.push(invalid(`'${k}' is not a valid field for the resource 'event'.`, `${base}/${k}`));
    }
  }
  // metric
  let metricName = '';
  const metric = attrs.metric;
  const mData = isPlainObject(metric) ? metric.data : undefined;
  const mAttrs = isPlainObject(mData) ? mData.attributes : undefined;
  const name = isPlainObject(mAttrs) ? mAttrs.name : undefined;
  if (metric === undefined) errors.push(invalid("'metric' is a required field.", `${base}/metric`));
  else if (isPlainObject(mData) && mData.type !== 'metric') errors.push(invalid("'type' must be 'metric'.", `${base}/metric/data/type`));
  else if (isPlainObject(mAttrs) && badMetricKey(mAttrs) !== null) {
    errors.push(invalid(`'${badMetricKey(mAttrs)!}' is not a valid field for the resource 'metric'.`, `${base}/metric/data/attributes/${badMetricKey(mAttrs)!}`));
  } else if (typeof name !== 'string' || name.trim() === '') {
    errors.push(invalid('A metric name is required.', `${base}/metric/data/attributes/name`));
  } else if (name.length >= 128) {
    errors.push(invalid('Metric name must be fewer than 128 characters.', `${base}/metric/data/attributes/name`));
  } else metricName = name;
  // properties
  const props = attrs.properties;
  if (props === undefined) errors.push(invalid("'properties' is a required field.", `${base}/properties`));
  else if (!isPlainObject(props)) errors.push(invalid("'properties' must be an object.", `${base}/properties`));
  else {
    let n = 0;
    for (const _ in props) n++;
    if (n > MAX_EVENT_PROPERTIES) {
      errors.push(invalid(`Event properties must not exceed ${MAX_EVENT_PROPERTIES} properties.`, `${base}/properties`));
    } else {
      const problem = propertiesError(props, `${base}/properties`);
      if (problem) errors.push(problem);
    }
  }
  // time
  let time = Math.floor(now / 1000) * 1000;
  const t = attrs.time;
  if (t !== undefined && t !== null) {
    const ms = parseIsoTime(t);
    if (Number.isNaN(ms)) errors.push(invalid(`'time' must be a valid ISO 8601 datetime.`, `${base}/time`));
    else if (ms <= MIN_EVENT_TIME) errors.push(invalid(`'time' must be after 1990-01-01.`, `${base}/time`));
    else if (ms > now + 365 * 86_400_000) errors.push(invalid(`'time' must not be more than 1 year in the future.`, `${base}/time`));
    else time = Math.floor(ms / 1000) * 1000;
  }
  // value
  const value = attrs.value;
  if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
    errors.push(invalid(`'value' must be a number.`, `${base}/value`));
  }
  const cur = attrs.value_currency;
  const currency = typeof cur === 'string' ? currencyCode(cur) : null;
  if (cur !== undefined && cur !== null && currency === null) {
    errors.push(invalid(`'value_currency' must be a 3-letter ISO 4217 currency code.`, `${base}/value_currency`));
  }
  const uid = attrs.unique_id;
  if (uid !== undefined && uid !== null && typeof uid !== 'string') errors.push(invalid(`'unique_id' must be a string.`, `${base}/unique_id`));
  else if (typeof uid === 'string' && tooLong(uid)) errors.push(invalid(`'unique_id' must be at most 100 KB.`, `${base}/unique_id`));
  const backfill = attrs.backfill;
  if (backfill !== undefined && backfill !== null && typeof backfill !== 'boolean') {
    errors.push(invalid(`'backfill' must be a boolean.`, `${base}/backfill`));
  }
  if (errors.length > before) return null;
  // one literal with every field: all events share one shape
  return {
    metricName,
    properties: props as Record<string, unknown>,
    time,
    backfill: backfill === true,
    value: typeof value === 'number' ? value : undefined,
    valueCurrency: currency ?? undefined,
    uniqueId: typeof uid === 'string' && uid !== '' ? uid : undefined,
  };
}

/**
 * Validate `meta.patch_properties` (append / unappend / unset) before anything changes; returns the function that
 * applies it to a properties object (or null when there is none).
 */
export function readPatchProperties(meta: unknown, base = '/data/meta'): ((props: Record<string, unknown>) => Record<string, unknown>) | null {
  if (meta === undefined || meta === null) return null;
  if (!isPlainObject(meta)) throw new ApiError(400, invalid("'meta' must be an object.", base));
  const pp = meta.patch_properties;
  if (pp === undefined || pp === null) return null;
  const at = `${base}/patch_properties`;
  if (!isPlainObject(pp)) throw new ApiError(400, invalid("'patch_properties' must be an object.", at));
  for (const k in pp) if (k !== 'append' && k !== 'unappend' && k !== 'unset') throw new ApiError(400, invalid(`'${k}' is not a valid field for 'patch_properties'.`, `${at}/${k}`));
  const { append, unappend, unset } = pp;
  if (append !== undefined && append !== null && !isPlainObject(append)) throw new ApiError(400, invalid("'append' must be an object.", `${at}/append`));
  if (unappend !== undefined && unappend !== null && !isPlainObject(unappend)) throw new ApiError(400, invalid("'unappend' must be an object.", `${at}/unappend`));
  for (const [name, values] of [['append', append], ['unappend', unappend]] as const) {
    const problem = isPlainObject(values) ? propertiesError(values, `${at}/${name}`) : null;
    if (problem) throw new ApiError(400, problem);
  }
  const keys = unset === undefined || unset === null ? [] : typeof unset === 'string' ? [unset] : Array.isArray(unset) && unset.every((k) => typeof k === 'string') ? (unset as string[]) : null;
  if (!keys) throw new ApiError(400, invalid("'unset' must be a string or an array of strings.", `${at}/unset`));
  const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? [...v] : v === undefined || v === null ? [] : [v]);
  return (current) => {
    const props = { ...current };
    if (isPlainObject(append)) for (const [k, v] of Object.entries(append)) props[k] = [...asArray(props[k]), ...(Array.isArray(v) ? v : [v])];
    if (isPlainObject(unappend)) {
      for (const [k, v] of Object.entries(unappend)) {
        const remove = new Set((Array.isArray(v) ? v : [v]).map((x) => JSON.stringify(x)));
        props[k] = asArray(props[k]).filter((x) => !remove.has(JSON.stringify(x)));
      }
    }
    for (const k of keys) delete props[k];
    return props;
  };
}
