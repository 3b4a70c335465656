import { DateTime, IANAZone, Info } from 'luxon';
import { EtlError } from '../../core/errors.js';
import { configError, fail, NUMBER_RE, showValue, type Coerce, type CoerceSpec } from './coercion.js';

/*
 * The datetime engine: `date` and `datetime` coercers, built once per field (formats compiled, zone offsets memoised)
 * with fast paths for the common shapes that give exactly what Luxon gives.
 *
 * Rules (the reference for user documentation):
 * - date → `YYYY-MM-DD`. A date-only value is that calendar date whatever the zone. With a time and an offset, it is
 *   the date where the offset says (converted to `zone` when one is set). Date objects: in `zone` when set; a Date
 *   at local midnight (how node-postgres builds `date` values) is its local calendar date; otherwise its UTC date.
 * - datetime → ISO 8601 UTC with seconds precision (`2024-03-05T19:22:10Z`, milliseconds truncated). Formats: `iso`
 *   (default), `unix`, `unix_ms`, or a Luxon token format (strict: `1/2/2024` does not match `dd/MM/yyyy`).
 *   A value without an offset is read in `zone`; without a `zone` it is rejected (never guessed). A local time that
 *   does not exist in `zone` (DST spring-forward gap) is INVALID_DATE; a repeated local time (fall-back) takes the
 *   earlier (daylight-time) offset.
 */

const ISO_DATE_ONLY_RE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_SPACE_RE = /^(\d{4}-\d{2}-\d{2}) (?=\d)/;
const ISO_OFFSET_RE = /T\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;
const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

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

/** What the datetime coercers of one field share: its name and zone, and how an instant or a failure is made. */
interface DatetimeParts {
  name: string;
  zone: string | undefined;
  /** The value does not match `expected`. */
  invalid(value: unknown, expected: string): unknown;
  /** The wall time does not exist in the zone (daylight-saving gap). */
  gap(value: unknown): unknown;
  /** The output for an instant (ms), or out of range. */
  instant(ms: number, value: unknown): unknown;
  fromDate(value: Date): unknown;
  /** Wall time (as UTC ms) → instant in `zone`; undefined without a zone. */
  toZone: ((wallMs: number) => number | undefined) | undefined;
  /** A wall time read in `zone` → the output. */
  fromWall(wall: DateTime, value: unknown): unknown;
}

export function coerceDatetime(spec: CoerceSpec): Coerce {
  const { name, zone } = spec;
  const format = spec.format ?? 'iso';
  checkZone(name, zone);
  const instant = (ms: number, value: unknown): unknown =>
    Number.isFinite(ms) && ms >= MIN_MS && ms <= MAX_MS
      ? isoSeconds(ms)
      : fail('INVALID_DATE', `${name}: ${showValue(value)} is out of range`);
  const gap = (value: unknown) =>
    fail('INVALID_DATE', `${name}: ${showValue(value)} does not exist in time zone ${zone} (daylight-saving gap)`);
  const toZone = zone === undefined ? undefined : zoneConverter(zone);
  const parts: DatetimeParts = {
    name,
    zone,
    invalid: (value, expected) => fail('INVALID_DATE', `${name}: ${showValue(value)} does not match ${expected}`),
    gap,
    instant,
    fromDate: (value) => instant(value.getTime(), value),
    toZone,
    fromWall: (wall, value) => {
      const ms = (toZone as (wallMs: number) => number | undefined)(wall.toMillis());
      return ms === undefined ? gap(value) : instant(ms, value);
    },
  };
  if (format === 'unix' || format === 'unix_ms') return unixDatetime(parts, format);
  if (format === 'iso') return isoDatetime(parts);
  return formatDatetime(parts, format);
}

function unixDatetime(parts: DatetimeParts, format: 'unix' | 'unix_ms'): Coerce {
  const { fromDate, instant, invalid } = parts;
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

function isoDatetime(parts: DatetimeParts): Coerce {
  const { name, zone, fromDate, instant, invalid, gap, toZone, fromWall } = parts;
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

/** A Luxon token format: with an offset token the text says its instant; without one it is a wall time in `zone`. */
function formatDatetime(parts: DatetimeParts, format: string): Coerce {
  const { name, zone, fromDate, instant, invalid, fromWall } = parts;
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

export function coerceDate(spec: CoerceSpec): Coerce {
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
