import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import type { FIELD_TYPES } from '../../config/field.js';
import { EtlError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';

/*
 * Coercers: a non-empty value (trimmed, case-mapped text, or a typed value from PostgreSQL / NDJSON) → the value in
 * the field's type, or a {@link FieldFail}. Each is built once per field; the closure runs per row. Dates and
 * datetimes are in ./datetime.ts.
 *
 * Rules (the reference for user documentation):
 * - number: `1234.5`, `-3`, `+2`, `.5`, `1e3`. Thousands separators (`1,234`) and trailing text (`12abc`) are
 *   rejected (INVALID_NUMBER): a comma may be a decimal separator, so it is never guessed.
 * - integer: digits with an optional sign only (`12.0` is rejected), within ±2^53 (INVALID_INTEGER).
 * - boolean: `trueValues` / `falseValues`, case-insensitive (INVALID_BOOLEAN); JS booleans and 1/0 numbers pass.
 * - json: JSON text is parsed (INVALID_VALUE); already-structured values (NDJSON / PostgreSQL json) pass through.
 * - email: lower-cased; one `@`, a dot-atom local part (≤64), a domain of ≥2 labels with a ≥2-letter TLD; no spaces
 *   (INVALID_EMAIL).
 * - phone: E.164 through libphonenumber-js (full metadata). `+…` needs no region; a national number needs `region`
 *   (INVALID_PHONE otherwise). Only digits, spaces and `+ ( ) . - /` are accepted: extensions and text are rejected.
 */

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

/**
 * The failure a compiled field returns in place of a value. Compiled fields never produce an instance of this class
 * as a value, so `instanceof FieldFail` tells failures apart (and a row costs no result object).
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

/** value (non-empty) → coerced value or FieldFail. */
export type Coerce = (value: unknown) => unknown;

/** What a coercer is built from: the field's name (for messages), its type and the type's options. */
export interface CoerceSpec {
  name: string;
  type: FieldType;
  format?: string;
  zone?: string;
  region?: string;
  trueValues?: string[];
  falseValues?: string[];
  /** number/integer: the decimal separator of the text (`,` in most of Europe). */
  decimal?: '.' | ',';
  /** number/integer: the thousands separator, `none`; @default with `decimal`: `.`, `,`, space, `'` (not the decimal one) */
  thousands?: ',' | '.' | ' ' | "'" | '_' | 'none';
}

const DEFAULT_TRUE = ['true', 'yes', 'y', '1'];
const DEFAULT_FALSE = ['false', 'no', 'n', '0'];

/** A decimal number as text (what `number` accepts, and unix timestamps). */
export const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER_RE = /^[+-]?\d+$/;
const EMAIL_RE =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]*[a-z0-9\u00a1-\uffff])?\.)+[a-z\u00a1-\uffff]{2,}$/;
const PHONE_CHARS_RE = /^[+\d\s().\-/]+$/;

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
export function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (typeof value === 'object') return safeJson(value);
  return String(value);
}

export function configError(name: string, message: string): EtlError {
  return new EtlError('CONFIG_INVALID', `field ${name}: ${message}`, { context: { component: 'transform', field: name } });
}

export function fail(code: FieldErrorCode, message: string): FieldFail {
  return new FieldFail(code, message);
}

export function coerceString(): Coerce {
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

export function coerceNumber(name: string): Coerce {
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

/** Thousands separators accepted by default with `decimal` (the other of `.`/`,`, spaces, the Swiss `'`). */
const DEFAULT_THOUSANDS = ['.', ',', ' ', '\u00a0', '\u202f', "'"];

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A number coercer for text written with a decimal comma and/or thousands separators (`decimal` / `thousands` set on
 * the field): `1.234,56` → `1234.56`. Thousands separators must group by three (`1.234.567`, never `12.34`), one kind
 * per value; the text is then read by `next` (the plain number/integer coercer). Without either option: `next`.
 */
export function localNumber(spec: CoerceSpec, next: Coerce): Coerce {
  if (spec.decimal === undefined && spec.thousands === undefined) return next;
  const decimal = spec.decimal ?? '.';
  const separators =
    spec.thousands === 'none'
      ? []
      : spec.thousands !== undefined
        ? spec.thousands === ' '
          ? [' ', '\u00a0', '\u202f']
          : [spec.thousands]
        : DEFAULT_THOUSANDS.filter((s) => s !== decimal);
  if (separators.includes(decimal)) throw configError(spec.name, `thousands and decimal cannot both be ${JSON.stringify(decimal)}`);
  const group = separators.length === 0 ? '' : `|\\d{1,3}(${separators.map(escapeRe).join('|')})\\d{3}(?:\\3\\d{3})*`;
  const re = new RegExp(`^([+-]?)(\\d+${group})?(?:${escapeRe(decimal)}(\\d+))?$`);
  const code = spec.type === 'integer' ? 'INVALID_INTEGER' : 'INVALID_NUMBER';
  const what = `${spec.type === 'integer' ? 'an integer' : 'a number'} (decimal ${JSON.stringify(decimal)})`;
  return (value) => {
    if (typeof value !== 'string') return next(value);
    const m = re.exec(value);
    if (m === null || (m[2] === undefined && m[4] === undefined)) return fail(code, `${spec.name}: ${showValue(value)} is not ${what}`);
    const whole = m[2] === undefined ? '0' : m[3] === undefined ? m[2] : m[2].split(m[3]).join('');
    return next(m[4] === undefined ? `${m[1]}${whole}` : `${m[1]}${whole}.${m[4]}`);
  };
}

export function coerceInteger(name: string): Coerce {
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

export function coerceBoolean(name: string, trueValues = DEFAULT_TRUE, falseValues = DEFAULT_FALSE): Coerce {
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

export function coerceJson(name: string): Coerce {
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

export function coerceEmail(name: string): Coerce {
  return (value) => {
    if (typeof value === 'string') {
      const email = value.toLowerCase();
      if (email.length <= 254 && EMAIL_RE.test(email) && email.indexOf('@') <= 64) return email;
    }
    return fail('INVALID_EMAIL', `${name}: ${showValue(value)} is not a valid email address`);
  };
}

export function coercePhone(name: string, region: string | undefined): Coerce {
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
