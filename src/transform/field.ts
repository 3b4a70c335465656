import { DateTime, IANAZone, Info } from 'luxon';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import { EtlError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import type { FieldInput, FIELD_TYPES } from '../config/field.js';

/*
 * Field coercion, compiled once per field at transform creation into a closure that runs per row.
 *
 * Rules (the reference for user documentation):
 * - Reading: `column` looks the column up (missing → empty). A column name with dots (`properties.tier`) is read as
 *   that exact key when present, else as a path into nested objects. `template` replaces each `{{Column}}` with the
 *   column's trimmed text; when EVERY referenced column is empty the template result is empty (so `{{First}} {{Last}}`
 *   over two empty columns is empty, not " "). `value` is a constant.
 * - Normalising strings: trimmed (unless `trim: false`), then empty when `""` or equal (case-insensitively) to one of
 *   `empty`; `""` is always empty. Then lower-/upper-cased. null and undefined are empty.
 * - Empty: `default` (coerced like a value; `default: null` means no value), else MISSING_REQUIRED when `required`,
 *   else no value (the key is omitted from the payload).
 * - number: `1234.5`, `-3`, `+2`, `.5`, `1e3`. Thousands separators (`1,234`) and trailing text (`12abc`) are
 *   rejected (INVALID_NUMBER): a comma may be a decimal separator, so it is never guessed.
 * - integer: digits with an optional sign only (`12.0` is rejected), within ±2^53 (INVALID_INTEGER).
 * - boolean: `trueValues` / `falseValues`, case-insensitive (INVALID_BOOLEAN); JS booleans and 1/0 numbers pass.
 * - json: JSON text is parsed (INVALID_VALUE); already-structured values (NDJSON / PostgreSQL json) pass through.
 * - email: lower-cased; one `@`, a dot-atom local part (≤64), a domain of ≥2 labels with a ≥2-letter TLD; no spaces
 *   (INVALID_EMAIL).
 * - phone: E.164 through libphonenumber-js (full metadata). `+…` needs no region; a national number needs `region`
 *   (INVALID_PHONE otherwise). Only digits, spaces and `+ ( ) . - /` are accepted: extensions and text are rejected.
 * - date → `YYYY-MM-DD`. A date-only value is that calendar date whatever the zone. With a time and an offset, it is
 *   the date where the offset says (converted to `zone` when one is set). Date objects: in `zone` when set; a Date
 *   at local midnight (how node-postgres builds `date` values) is its local calendar date; otherwise its UTC date.
 * - datetime → ISO 8601 UTC with seconds precision (`2024-03-05T19:22:10Z`, milliseconds truncated). Formats: `iso`
 *   (default), `unix`, `unix_ms`, or a Luxon token format (strict: `1/2/2024` does not match `dd/MM/yyyy`).
 *   A value without an offset is read in `zone`; without a `zone` it is rejected (never guessed). A local time that
 *   does not exist in `zone` (DST spring-forward gap) is INVALID_DATE; a repeated local time (fall-back) takes the
 *   earlier (daylight-time) offset.
 */

/** A row as sources give it: strings from CSV, typed values from PostgreSQL / NDJSON. */
export type Row = Record<string, unknown>;

export type FieldType = (typeof FIELD_TYPES)[number];

export type FieldErrorCode = Extract<
  ErrorCode,
  | 'INVALID_EMAIL'
  | 'INVALID_PHONE'
  | 'INVALID_DATE'
  | 'INVALID_NUMBER'
  | 'INVALID_INTEGER'
  | 'INVALID_BOOLEAN'
  | 'INVALID_VALUE'
  | 'MISSING_REQUIRED'
>;

export type FieldResult = { ok: true; value: unknown } | { ok: false; code: FieldErrorCode; message: string };

/** A compiled field: row → value (`undefined` = no value) or error. */
export type CompiledField = (row: Row) => FieldResult;

/**
 * The failure a {@link ValueField} returns in place of a value (also a `FieldResult` with `ok: false`). Compiled
 * fields never produce an instance of this class as a value, so `instanceof FieldFail` tells failures apart.
 */
export class FieldFail {
  readonly ok: false;
  readonly code: FieldErrorCode;
  readonly message: string;
  constructor(code: FieldErrorCode, message: string) {
    this.ok = false;
    this.code = code;
    this.message = message;
  }
}

/**
 * A compiled field for the transforms' own use: row → the value itself (`undefined` = no value) or a
 * {@link FieldFail}, so a row costs no result object. `item` is what the column named by
 * {@link CompileFieldOptions.itemColumn} reads (a grouped event's line-item position).
 */
export type ValueField = (row: Row, item?: number) => unknown;

export interface CompileFieldOptions {
  /** Type used when the spec's type is `string` (the default), e.g. `email` for a profile's email. */
  defaultType?: FieldType;
  /** Force the value to be required (e.g. an event's `unique_id`). */
  required?: boolean;
  /**
   * A column name (`_item`) read from the `item` argument of a {@link ValueField} instead of the row, in columns,
   * templates and paths starting with it (`_item.x` is then read as the flat key only, as `_item` is not an object).
   */
  itemColumn?: string;
}

const ABSENT: FieldResult = Object.freeze({ ok: true as const, value: undefined });

const DEFAULT_TRUE = ['true', 'yes', 'y', '1'];
const DEFAULT_FALSE = ['false', 'no', 'n', '0'];

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER_RE = /^[+-]?\d+$/;
const EMAIL_RE =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]*[a-z0-9\u00a1-\uffff])?\.)+[a-z\u00a1-\uffff]{2,}$/;
const PHONE_CHARS_RE = /^[+\d\s().\-/]+$/;
const ISO_DATE_ONLY_RE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_SPACE_RE = /^(\d{4}-\d{2}-\d{2}) (?=\d)/;
const ISO_OFFSET_RE = /T\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;
const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z


/** Show a bad value in a message: quoted, shortened. */
export function showValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  else if (typeof value === 'object' && value !== null) text = safeJson(value);
  else text = String(value);
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return JSON.stringify(text);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Text of a value as used inside templates and for string fields. */
function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (typeof value === 'object') return safeJson(value);
  return String(value);
}

function configError(name: string, message: string): EtlError {
  return new EtlError('CONFIG_INVALID', `field ${name}: ${message}`, { context: { component: 'transform', field: name } });
}

// ---------------------------------------------------------------- readers

type Reader = (row: Row, item?: number) => unknown;

function compileColumn(column: string, itemColumn?: string): Reader {
  if (column === itemColumn) return (_row, item) => item;
  if (!column.includes('.')) return (row) => row[column];
  const path = column.split('.');
  // `_item` holds a number: a path through it reads nothing (only the flat key `_item.x` can give a value)
  if (path[0] === itemColumn) return (row) => row[column];
  return (row) => {
    const direct = row[column];
    if (direct !== undefined) return direct;
    let current: unknown = row;
    for (const key of path) {
      if (current === null || typeof current !== 'object') return undefined;
      current = (current as Row)[key];
    }
    return current;
  };
}

/**
 * Per-row functions are generated (`new Function`, as the CSV row factory is) so that each reads its columns as
 * named properties (one row shape: a monomorphic load) and its options are constants. Column names and literals
 * appear in the source only as JSON string literals; a dotted column is read by a compiled closure (`env`).
 */
function columnExpression(column: string, itemColumn: string | undefined, env: unknown[]): string {
  if (column === itemColumn) return 'item';
  if (!column.includes('.') || column.split('.')[0] === itemColumn) return `row[${JSON.stringify(column)}]`;
  env.push(compileColumn(column, itemColumn));
  return `e${env.length - 1}(row, item)`;
}

/** Source binding `e0…` to the closures in `env` (so the generated calls have constant targets). */
const envBindings = (env: readonly unknown[]): string => env.map((_, i) => `const e${i} = env[${i}];`).join('\n');

/** Compile `{{Column}}` templates into literal/column parts. */
export function compileTemplate(template: string): (row: Row) => string {
  return compileTemplateReader(template) as (row: Row) => string;
}

function compileTemplateReader(template: string, itemColumn?: string): (row: Row, item?: number) => string {
  const literals: string[] = [];
  const columns: string[] = [];
  const re = /\{\{\s*(.+?)\s*\}\}/g;
  let last = 0;
  for (let match = re.exec(template); match !== null; match = re.exec(template)) {
    literals.push(template.slice(last, match.index));
    columns.push(match[1]);
    last = match.index + match[0].length;
  }
  const tail = template.slice(last);
  if (columns.length === 0) return () => tail;
  // each column's trimmed text; empty when every one is empty, else literal + text … + tail
  const env: unknown[] = [];
  const texts = columns.map((column, i) => `const t${i} = toText(${columnExpression(column, itemColumn, env)}).trim();`);
  const joined = [...literals.flatMap((literal, i) => [JSON.stringify(literal), `t${i}`]), JSON.stringify(tail)].join(' + ');
  const source = `${envBindings(env)}
return function template(row, item) {
${texts.join('\n')}
if (${columns.map((_, i) => `t${i} === ''`).join(' && ')}) return '';
return ${joined};
};`;
  return new Function('env', 'toText', source)(env, toText) as (row: Row, item?: number) => string;
}

// ---------------------------------------------------------------- coercers (value is non-empty here)

/** value (non-empty) → coerced value or FieldFail. */
type Coerce = (value: unknown) => unknown;

interface CoerceSpec {
  name: string;
  type: FieldType;
  format?: string;
  zone?: string;
  region?: string;
  trueValues?: string[];
  falseValues?: string[];
}

function fail(code: FieldErrorCode, message: string): FieldFail {
  return new FieldFail(code, message);
}

function coerceString(): Coerce {
  return (value) => (typeof value === 'string' ? value : toText(value));
}

const POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * A plain decimal (`[+-]digits[.digits]`, `[+-].digits`, at most 15 digits; no dot when `integer`), read from its
 * char codes; undefined for any other text (the regex path then decides). Exactly `Number(text)`: the digits make an
 * integer below 2^53 and dividing it by a power of ten of at most 10^15 is correctly rounded, as Number() is.
 */
function plainDecimal(text: string, integer: boolean): number | undefined {
  const length = text.length;
  let c = text.charCodeAt(0);
  const negative = c === 45;
  let i = negative || c === 43 ? 1 : 0;
  let digits = 0;
  let fraction = -1; // digits after the dot, -1 before one
  let m = 0;
  for (; i < length; i++) {
    c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (fraction >= 0) fraction++;
    } else if (c === 46 && fraction < 0 && !integer) fraction = 0;
    else return undefined;
  }
  if (digits === 0 || digits > 15) return undefined;
  const n = fraction > 0 ? m / POWERS_OF_TEN[fraction]! : m;
  return negative ? -n : n;
}

function coerceNumber(name: string): Coerce {
  const bad = (value: unknown) => fail('INVALID_NUMBER', `${name}: ${showValue(value)} is not a number`);
  return (value) => {
    if (typeof value === 'string') {
      const plain = plainDecimal(value, false);
      if (plain !== undefined) return plain;
      if (NUMBER_RE.test(value)) {
        const n = Number(value);
        if (Number.isFinite(n)) return n;
      }
      return bad(value);
    }
    if (typeof value === 'number') return Number.isFinite(value) ? value : bad(value);
    if (typeof value === 'bigint') return Number(value);
    return bad(value);
  };
}

function coerceInteger(name: string): Coerce {
  const bad = (value: unknown) => fail('INVALID_INTEGER', `${name}: ${showValue(value)} is not an integer`);
  return (value) => {
    if (typeof value === 'string') {
      const plain = plainDecimal(value, true);
      if (plain !== undefined) return plain;
      if (INTEGER_RE.test(value)) {
        const n = Number(value);
        if (Number.isSafeInteger(n)) return n;
      }
      return bad(value);
    }
    if (typeof value === 'number') return Number.isSafeInteger(value) ? value : bad(value);
    if (typeof value === 'bigint') {
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : bad(value);
    }
    return bad(value);
  };
}

function coerceBoolean(name: string, trueValues: string[], falseValues: string[]): Coerce {
  const truthy = new Set(trueValues.map((v) => v.trim().toLowerCase()));
  const falsy = new Set(falseValues.map((v) => v.trim().toLowerCase()));
  const bad = (value: unknown) =>
    fail(
      'INVALID_BOOLEAN',
      `${name}: ${showValue(value)} is not a boolean (true: ${[...truthy].join('/')}; false: ${[...falsy].join('/')})`,
    );
  return (value) => {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      const key = value.toLowerCase();
      if (truthy.has(key)) return true;
      if (falsy.has(key)) return false;
      return bad(value);
    }
    if (value === 1) return true;
    if (value === 0) return false;
    return bad(value);
  };
}

function coerceJson(name: string): Coerce {
  return (value) => {
    if (typeof value === 'string') {
      try {
        return JSON.parse(value);
      } catch {
        return fail('INVALID_VALUE', `${name}: ${showValue(value)} is not valid JSON`);
      }
    }
    if (value instanceof Date) return value.toISOString();
    if (typeof value === 'bigint') return Number(value);
    return value;
  };
}

function coerceEmail(name: string): Coerce {
  return (value) => {
    if (typeof value === 'string') {
      const email = value.toLowerCase();
      if (email.length <= 254 && EMAIL_RE.test(email) && email.indexOf('@') <= 64) return email;
    }
    return fail('INVALID_EMAIL', `${name}: ${showValue(value)} is not a valid email address`);
  };
}

function coercePhone(name: string, region: string | undefined): Coerce {
  const country = region?.toUpperCase() as CountryCode | undefined;
  return (value) => {
    const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;
    if (typeof text !== 'string' || !PHONE_CHARS_RE.test(text)) {
      return fail('INVALID_PHONE', `${name}: ${showValue(value)} is not a phone number`);
    }
    const international = text.startsWith('+');
    if (!international && country === undefined) {
      return fail(
        'INVALID_PHONE',
        `${name}: ${showValue(value)} has no country code (+…) and no \`region\` is configured for this field`,
      );
    }
    const parsed = international ? parsePhoneNumberFromString(text) : parsePhoneNumberFromString(text, country);
    if (parsed === undefined || !parsed.isValid()) {
      return fail(
        'INVALID_PHONE',
        `${name}: ${showValue(value)} is not a valid phone number${international ? '' : ` for region ${country}`}`,
      );
    }
    return parsed.number;
  };
}

/** Remove quoted literals from a Luxon format and tell whether it carries an absolute offset / instant. */
function formatHasOffset(format: string): boolean {
  return /[zZXx]/.test(format.replace(/'[^']*'/g, ''));
}

function checkZone(name: string, zone: string | undefined): void {
  if (zone !== undefined && !IANAZone.isValidZone(zone) && zone.toUpperCase() !== 'UTC') {
    throw configError(name, `unknown time zone ${JSON.stringify(zone)} (expected an IANA name such as America/New_York)`);
  }
}

/** The locale month / weekday names are read in (fixed, so parsing never depends on the machine). */
const FORMAT_LOCALE = 'en-US';

/** Compile a Luxon token format once (Luxon's fromFormat would rebuild its regex on every call). */
function formatParser(format: string): (text: string, options: { zone?: string; setZone?: boolean }) => DateTime {
  const parser = DateTime.buildFormatParser(format, { locale: FORMAT_LOCALE });
  return (text, options) => DateTime.fromFormatParser(text, parser, { ...options, locale: FORMAT_LOCALE });
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * Wall-clock time → instant in `zoneName`, compiled once per field. Returns the UTC ms, or undefined when the wall
 * time does not exist there (DST gap); a repeated wall time (DST overlap) gives the earlier instant. Zone offsets are
 * memoised per UTC hour (Intl-based offset lookups cost microseconds; an hour containing a transition is never
 * memoised as one offset).
 */
function zoneConverter(zoneName: string): (wallMs: number) => number | undefined {
  const zone = Info.normalizeZone(zoneName);
  if (zone.isUniversal) {
    const fixed = zone.offset(0) * 60_000;
    return (wallMs) => wallMs - fixed;
  }
  const cache = new Map<number, number>();
  const offsetAt = (ts: number): number => {
    const bucket = Math.floor(ts / HOUR_MS);
    let offset = cache.get(bucket);
    if (offset === undefined) {
      const start = zone.offset(bucket * HOUR_MS);
      offset = start === zone.offset(bucket * HOUR_MS + HOUR_MS - 1) ? start : Number.NaN;
      if (cache.size >= 100_000) cache.clear();
      cache.set(bucket, offset);
    }
    return Number.isNaN(offset) ? zone.offset(ts) : offset;
  };
  return (wallMs) => {
    // The offsets in force a day before and after cover both sides of any transition near this wall time.
    const before = offsetAt(wallMs - DAY_MS);
    const after = offsetAt(wallMs + DAY_MS);
    const t1 = wallMs - before * 60_000;
    const ok1 = offsetAt(t1) === before;
    if (before === after) return ok1 ? t1 : undefined;
    const t2 = wallMs - after * 60_000;
    const ok2 = offsetAt(t2) === after;
    if (ok1 && ok2) return Math.min(t1, t2);
    return ok1 ? t1 : ok2 ? t2 : undefined;
  };
}

const FAST_ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Fast path for the common ISO 8601 shapes (`YYYY-MM-DD[THH:mm[:ss[.fff]]][Z|±hh[:mm]]`): wall time as UTC ms and the
 * offset in minutes (undefined when absent). Returns undefined for anything else (Luxon then decides).
 */
function fastIso(text: string): { wall: number; offset: number | undefined } | undefined {
  const m = FAST_ISO_RE.exec(text);
  if (m === null) return undefined;
  const year = +m[1];
  const month = +m[2];
  const day = +m[3];
  const hour = m[4] === undefined ? 0 : +m[4];
  const minute = m[5] === undefined ? 0 : +m[5];
  const second = m[6] === undefined ? 0 : +m[6];
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1] || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return undefined;
  const ms = m[7] === undefined ? 0 : +m[7].slice(0, 3).padEnd(3, '0');
  if (year < 100) return undefined; // Date.UTC maps 0-99 to 1900-1999: leave those to Luxon
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const tz = m[8];
  if (tz === undefined) return { wall, offset: undefined };
  if (m[4] === undefined) return undefined; // an offset after a date only is not ISO
  if (tz === 'Z' || tz === 'z') return { wall, offset: 0 };
  const sign = tz[0] === '-' ? -1 : 1;
  const hh = +tz.slice(1, 3);
  const mm = tz.length > 3 ? +tz.slice(tz.length - 2) : 0;
  return { wall, offset: sign * (hh * 60 + mm) };
}

/** What the fixed-format fast path expects at a position: an ASCII digit, `+` or `-`, else that char code. */
const DIGIT = -1;
const SIGN = -2;
/** Luxon tokens the fixed-format fast path reads (two-digit fields, four-digit year, numeric offsets). */
const FAST_TOKENS: Readonly<Record<string, readonly number[]>> = {
  yyyy: [DIGIT, DIGIT, DIGIT, DIGIT],
  MM: [DIGIT, DIGIT],
  dd: [DIGIT, DIGIT],
  HH: [DIGIT, DIGIT],
  mm: [DIGIT, DIGIT],
  ss: [DIGIT, DIGIT],
  ZZ: [SIGN, DIGIT, DIGIT, 0x3a, DIGIT, DIGIT],
  ZZZ: [SIGN, DIGIT, DIGIT, DIGIT, DIGIT],
};
const FAST_FORMAT_RE = /^(?:yyyy|MM|dd|HH|mm|ss|ZZZ|ZZ|'T'|[-:/ ])+$/;

/** The number written by the two ASCII digits at `at`. */
const twoDigits = (text: string, at: number): number => (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48;

/**
 * A fast path for fixed-width numeric datetime formats with an offset (e.g. Shopify's `yyyy-MM-dd HH:mm:ss ZZZ`):
 * returns the instant in ms, or undefined when the text does not have exactly that shape or is not a valid date, in
 * which case Luxon decides (so a text the fast path accepts gets the same instant Luxon gives, and every other text
 * the same answer as before). Undefined for formats it does not cover. The text is checked position by position
 * (every field has a fixed width), so nothing is allocated.
 */
function fixedOffsetFormat(format: string): ((text: string) => number | undefined) | undefined {
  if (!FAST_FORMAT_RE.test(format)) return undefined;
  const parts = format.match(/yyyy|MM|dd|HH|mm|ss|ZZZ|ZZ|'T'|[-:/ ]/g) ?? [];
  const expected: number[] = [];
  const at: Record<string, number> = {};
  for (const part of parts) {
    const token = FAST_TOKENS[part];
    if (token !== undefined) {
      if (at[part] !== undefined) return undefined;
      at[part] = expected.length;
      expected.push(...token);
    } else expected.push((part === "'T'" ? 'T' : part).charCodeAt(0));
  }
  if (at.ZZZ !== undefined && at.ZZ !== undefined) return undefined;
  const z = at.ZZZ ?? at.ZZ;
  if (z === undefined || !['yyyy', 'MM', 'dd', 'HH', 'mm', 'ss'].every((t) => at[t] !== undefined)) return undefined;
  const zm = at.ZZZ !== undefined ? z + 3 : z + 4; // offset minutes (after `hh` or `hh:`)
  const [y, mo, d, h, mi, se] = [at.yyyy!, at.MM!, at.dd!, at.HH!, at.mm!, at.ss!];
  const length = expected.length;
  return (text) => {
    if (text.length !== length) return undefined;
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      const e = expected[i]!;
      if (e === DIGIT) {
        if (c < 48 || c > 57) return undefined;
      } else if (e === SIGN) {
        if (c !== 43 && c !== 45) return undefined;
      } else if (c !== e) return undefined;
    }
    const year = twoDigits(text, y) * 100 + twoDigits(text, y + 2);
    const month = twoDigits(text, mo);
    const day = twoDigits(text, d);
    const hour = twoDigits(text, h);
    const minute = twoDigits(text, mi);
    const second = twoDigits(text, se);
    if (year < 100 || month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]! || hour > 23 || minute > 59 || second > 59) {
      return undefined;
    }
    if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return undefined;
    const offsetHours = twoDigits(text, z + 1);
    const offsetMinutes = twoDigits(text, zm);
    if (offsetHours > 23 || offsetMinutes > 59) return undefined;
    const offset = (text.charCodeAt(z) === 45 ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
    return Date.UTC(year, month - 1, day, hour, minute, second) - offset * 60_000;
  };
}

/**
 * `YYYY-MM-DDTHH:mm:ssZ` of an instant in [MIN_MS, MAX_MS] (years 0000–9999), milliseconds truncated: what
 * `toISOString().slice(0, 19) + 'Z'` gives, computed from the day number (civil-from-days) into one flat string.
 */
function isoSeconds(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  let days = Math.floor(seconds / 86_400);
  let rest = seconds - days * 86_400;
  const hour = Math.floor(rest / 3600);
  rest -= hour * 3600;
  const minute = Math.floor(rest / 60);
  const second = rest - minute * 60;
  days += 719_468; // days from 0000-03-01
  const era = Math.floor(days / 146_097);
  const dayOfEra = days - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153); // month from March
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return String.fromCharCode(
    48 + Math.floor(year / 1000),
    48 + (Math.floor(year / 100) % 10),
    48 + (Math.floor(year / 10) % 10),
    48 + (year % 10),
    45,
    48 + Math.floor(month / 10),
    48 + (month % 10),
    45,
    48 + Math.floor(day / 10),
    48 + (day % 10),
    84,
    48 + Math.floor(hour / 10),
    48 + (hour % 10),
    58,
    48 + Math.floor(minute / 10),
    48 + (minute % 10),
    58,
    48 + Math.floor(second / 10),
    48 + (second % 10),
    90,
  );
}

function coerceDatetime(spec: CoerceSpec): Coerce {
  const { name, zone } = spec;
  const format = spec.format ?? 'iso';
  checkZone(name, zone);
  const invalid = (value: unknown, expected: string) =>
    fail('INVALID_DATE', `${name}: ${showValue(value)} does not match ${expected}`);
  const gap = (value: unknown) =>
    fail('INVALID_DATE', `${name}: ${showValue(value)} does not exist in time zone ${zone} (daylight-saving gap)`);
  const instant = (ms: number, value: unknown): unknown =>
    Number.isFinite(ms) && ms >= MIN_MS && ms <= MAX_MS
      ? isoSeconds(ms)
      : fail('INVALID_DATE', `${name}: ${showValue(value)} is out of range`);
  const fromDate = (value: Date) => instant(value.getTime(), value);
  const toZone = zone === undefined ? undefined : zoneConverter(zone);
  const fromWall = (wall: DateTime, value: unknown): unknown => {
    const ms = (toZone as (wallMs: number) => number | undefined)(wall.toMillis());
    return ms === undefined ? gap(value) : instant(ms, value);
  };

  if (format === 'unix' || format === 'unix_ms') {
    const scale = format === 'unix' ? 1000 : 1;
    const expected = format === 'unix' ? 'a unix timestamp in seconds' : 'a unix timestamp in milliseconds';
    return (value) => {
      if (value instanceof Date) return fromDate(value);
      if (typeof value === 'number') return instant(Math.trunc(value * scale), value);
      if (typeof value === 'bigint') return instant(Number(value) * scale, value);
      if (typeof value === 'string' && NUMBER_RE.test(value)) return instant(Math.trunc(Number(value) * scale), value);
      return invalid(value, expected);
    };
  }

  if (format === 'iso') {
    const expected = 'ISO 8601 (format "iso")';
    return (value) => {
      if (value instanceof Date) return fromDate(value);
      if (typeof value !== 'string') return invalid(value, expected);
      const text = value.replace(ISO_SPACE_RE, '$1T');
      const fast = fastIso(text);
      if (fast !== undefined) {
        if (fast.offset !== undefined) return instant(fast.wall - fast.offset * 60_000, value);
        if (toZone === undefined) {
          return fail('INVALID_DATE', `${name}: ${showValue(value)} has no UTC offset and no \`zone\` is configured`);
        }
        const ms = toZone(fast.wall);
        return ms === undefined ? gap(value) : instant(ms, value);
      }
      if (ISO_OFFSET_RE.test(text)) {
        const dt = DateTime.fromISO(text, { setZone: true });
        return dt.isValid ? instant(dt.toMillis(), value) : invalid(value, expected);
      }
      if (zone === undefined) {
        return fail('INVALID_DATE', `${name}: ${showValue(value)} has no UTC offset and no \`zone\` is configured`);
      }
      const wall = DateTime.fromISO(text, { zone: 'UTC' });
      return wall.isValid ? fromWall(wall, value) : invalid(value, expected);
    };
  }

  const expected = `the format ${JSON.stringify(format)}`;
  const parse = formatParser(format);
  if (formatHasOffset(format)) {
    const fast = fixedOffsetFormat(format);
    return (value) => {
      if (value instanceof Date) return fromDate(value);
      const text = typeof value === 'number' ? String(value) : value;
      if (typeof text !== 'string') return invalid(value, expected);
      if (fast !== undefined) {
        const ms = fast(text);
        if (ms !== undefined) return instant(ms, value);
      }
      const dt = parse(text, { setZone: true });
      return dt.isValid ? instant(dt.toMillis(), value) : invalid(value, expected);
    };
  }
  if (zone === undefined) {
    throw new EtlError(
      'CONFIG_RULE',
      `field ${name}: datetime format ${JSON.stringify(format)} has no offset, so \`zone\` is required (values are never guessed)`,
      { context: { component: 'transform', field: name } },
    );
  }
  return (value) => {
    if (value instanceof Date) return fromDate(value);
    const text = typeof value === 'number' ? String(value) : value;
    if (typeof text !== 'string') return invalid(value, expected);
    const wall = parse(text, { zone: 'UTC' });
    return wall.isValid ? fromWall(wall, value) : invalid(value, expected);
  };
}

function coerceDate(spec: CoerceSpec): Coerce {
  const { name, zone } = spec;
  const format = spec.format ?? 'iso';
  checkZone(name, zone);
  const invalid = (value: unknown, expected: string) =>
    fail('INVALID_DATE', `${name}: ${showValue(value)} does not match ${expected}`);
  const out = (dt: DateTime, value: unknown): unknown => {
    if (!dt.isValid) return fail('INVALID_DATE', `${name}: ${showValue(value)} is not a valid date`);
    const date = dt.toISODate();
    return date !== null && date.length === 10 ? date : fail('INVALID_DATE', `${name}: ${showValue(value)} is out of range`);
  };
  const fromDate = (value: Date): unknown => {
    if (Number.isNaN(value.getTime())) return fail('INVALID_DATE', `${name}: invalid Date object`);
    if (zone !== undefined) return out(DateTime.fromJSDate(value, { zone }), value);
    const localMidnight =
      value.getHours() === 0 && value.getMinutes() === 0 && value.getSeconds() === 0 && value.getMilliseconds() === 0;
    return out(DateTime.fromJSDate(value, { zone: localMidnight ? 'local' : 'UTC' }), value);
  };

  if (format === 'unix' || format === 'unix_ms') {
    const scale = format === 'unix' ? 1000 : 1;
    const expected = format === 'unix' ? 'a unix timestamp in seconds' : 'a unix timestamp in milliseconds';
    return (value) => {
      if (value instanceof Date) return fromDate(value);
      const n = typeof value === 'number' ? value : typeof value === 'string' && NUMBER_RE.test(value) ? Number(value) : NaN;
      if (!Number.isFinite(n)) return invalid(value, expected);
      return out(DateTime.fromMillis(Math.trunc(n * scale), { zone: zone ?? 'UTC' }), value);
    };
  }

  if (format === 'iso') {
    const expected = 'ISO 8601 (format "iso")';
    return (value) => {
      if (value instanceof Date) return fromDate(value);
      if (typeof value !== 'string') return invalid(value, expected);
      if (ISO_DATE_ONLY_RE.test(value)) {
        return DateTime.fromISO(value, { zone: 'UTC' }).isValid ? value : invalid(value, expected);
      }
      const text = value.replace(ISO_SPACE_RE, '$1T');
      let dt = DateTime.fromISO(text, { zone: 'UTC', setZone: true });
      if (!dt.isValid) return invalid(value, expected);
      if (zone !== undefined && ISO_OFFSET_RE.test(text)) dt = dt.setZone(zone);
      return out(dt, value);
    };
  }

  const expected = `the format ${JSON.stringify(format)}`;
  const hasOffset = formatHasOffset(format);
  const parse = formatParser(format);
  return (value) => {
    if (value instanceof Date) return fromDate(value);
    const text = typeof value === 'number' ? String(value) : value;
    if (typeof text !== 'string') return invalid(value, expected);
    let dt = parse(text, { zone: 'UTC', setZone: true });
    if (!dt.isValid) return invalid(value, expected);
    if (hasOffset && zone !== undefined) dt = dt.setZone(zone);
    return out(dt, value);
  };
}

function compileCoerce(spec: CoerceSpec): Coerce {
  switch (spec.type) {
    case 'string':
      return coerceString();
    case 'number':
      return coerceNumber(spec.name);
    case 'integer':
      return coerceInteger(spec.name);
    case 'boolean':
      return coerceBoolean(spec.name, spec.trueValues ?? DEFAULT_TRUE, spec.falseValues ?? DEFAULT_FALSE);
    case 'json':
      return coerceJson(spec.name);
    case 'email':
      return coerceEmail(spec.name);
    case 'phone':
      return coercePhone(spec.name, spec.region);
    case 'date':
      return coerceDate(spec);
    case 'datetime':
      return coerceDatetime(spec);
    default: {
      const never: never = spec.type;
      throw configError(spec.name, `unknown type ${String(never)}`);
    }
  }
}

// ---------------------------------------------------------------- compileField

/**
 * Compile a field mapping into a per-row function. Throws `EtlError` (CONFIG_INVALID / CONFIG_RULE) for a spec that
 * can never work (unknown zone, datetime format without offset and no zone, a default that fails its own type).
 */
export function compileField(spec: FieldInput, name: string, options: CompileFieldOptions = {}): CompiledField {
  const field = compileValueField(spec, name, options);
  return (row) => {
    const value = field(row);
    if (value instanceof FieldFail) return value;
    return value === undefined ? ABSENT : { ok: true, value };
  };
}

/**
 * Compile a field mapping into a {@link ValueField} (the value itself, or a {@link FieldFail}). Same rules and
 * configuration errors as {@link compileField}.
 */
export function compileValueField(spec: FieldInput, name: string, options: CompileFieldOptions = {}): ValueField {
  const obj = typeof spec === 'string' ? { column: spec } : spec;
  const sources = [obj.column !== undefined, obj.template !== undefined, obj.value !== undefined].filter(Boolean).length;
  if (sources !== 1) throw configError(name, 'exactly one of `column`, `template`, `value` must be given');

  const declared = obj.type ?? 'string';
  const type: FieldType = declared === 'string' && options.defaultType !== undefined ? options.defaultType : declared;
  const trim = obj.trim ?? true;
  const lowercase = obj.lowercase ?? false;
  const uppercase = obj.uppercase ?? false;
  const required = (obj.required ?? false) || (options.required ?? false);
  const emptyList = obj.empty === undefined ? undefined : new Set(obj.empty.map((e) => e.trim().toLowerCase()));
  const itemColumn = options.itemColumn;

  const coerce = compileCoerce({
    name,
    type,
    format: obj.format,
    zone: obj.zone,
    region: obj.region,
    trueValues: obj.trueValues,
    falseValues: obj.falseValues,
  });

  /** Trim / empty / case: returns undefined for empty. */
  const normalize = (raw: unknown): unknown => {
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== 'string') return raw;
    let text = trim ? raw.trim() : raw;
    if (text === '' || (emptyList !== undefined && emptyList.has(text.trim().toLowerCase()))) return undefined;
    if (lowercase) text = text.toLowerCase();
    else if (uppercase) text = text.toUpperCase();
    return text;
  };

  /** What an empty field gives: undefined (no value), the coerced default, or a MISSING_REQUIRED failure. */
  let onEmpty: unknown;
  const fallback = normalize(obj.default);
  if (fallback !== undefined) {
    const result = coerce(fallback);
    if (result instanceof FieldFail) throw configError(name, `default ${showValue(obj.default)}: ${result.message}`);
    onEmpty = result;
  } else if (required) {
    onEmpty = Object.freeze(fail('MISSING_REQUIRED', `${name}: a value is required but the field is empty`));
  }

  if (obj.value !== undefined) {
    const constant = normalize(obj.value);
    const result = constant === undefined ? onEmpty : coerce(constant);
    if (result instanceof FieldFail && result.code !== 'MISSING_REQUIRED') {
      throw configError(name, `value ${showValue(obj.value)}: ${result.message}`);
    }
    if (result instanceof FieldFail) Object.freeze(result);
    return () => result;
  }

  const coerceFor =
    type === 'phone' && obj.regionColumn !== undefined ? phoneByRowRegion(name, obj.regionColumn, coerce, itemColumn) : undefined;
  // raw → empty (onEmpty) / trimmed, empty-list, case-mapped text → coerced; a string field's text is its value
  const env: unknown[] = [];
  const read =
    obj.column !== undefined
      ? columnExpression(obj.column, itemColumn, env)
      : (env.push(compileTemplateReader(obj.template as string, itemColumn)), `e${env.length - 1}(row, item)`);
  const c = coerceFor === undefined ? 'coerce' : 'c';
  const source = `${envBindings(env)}
return function field(row, item) {
const raw = ${read};
if (raw === undefined || raw === null) return onEmpty;
${coerceFor === undefined ? '' : 'const c = coerceFor(row, item);'}
if (typeof raw === 'string') {
let text = ${trim ? 'raw.trim()' : 'raw'};
if (text === ''${emptyList === undefined ? '' : ' || emptyList.has(text.trim().toLowerCase())'}) return onEmpty;
${lowercase ? 'text = text.toLowerCase();' : uppercase ? 'text = text.toUpperCase();' : ''}
return ${type === 'string' ? 'text' : `${c}(text)`};
}
return ${c}(raw);
};`;
  return new Function('env', 'onEmpty', 'coerce', 'coerceFor', 'emptyList', source)(env, onEmpty, coerce, coerceFor, emptyList) as ValueField;
}

/**
 * Phone coercion whose region comes from a column of the row (e.g. a billing country), falling back to the field's
 * `region` (already compiled into `fallback`) when that column is empty or not a two-letter code.
 */
function phoneByRowRegion(
  name: string,
  column: string,
  fallback: Coerce,
  itemColumn: string | undefined,
): (row: Row, item?: number) => Coerce {
  const readRegion = compileColumn(column, itemColumn);
  const byRegion = new Map<string, Coerce>();
  return (row, item) => {
    const region = toText(readRegion(row, item)).trim().toUpperCase();
    if (!/^[A-Z]{2}$/.test(region)) return fallback;
    let c = byRegion.get(region);
    if (c === undefined) {
      c = coercePhone(name, region);
      byRegion.set(region, c);
    }
    return c;
  };
}

/** The type a field spec will be coerced into (after the `defaultType` rule). */
export function fieldType(spec: FieldInput, defaultType?: FieldType): FieldType {
  const declared = typeof spec === 'string' ? 'string' : (spec.type ?? 'string');
  return declared === 'string' && defaultType !== undefined ? defaultType : declared;
}
