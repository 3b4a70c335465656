/**
 * Date formats written for another library: Moment.js / Day.js tokens (`YYYY-MM-DD`) and strftime directives
 * (`%Y-%m-%d`, Python, Ruby, C, PostgreSQL's to_char users) read as Luxon tokens would parse nothing or the wrong
 * thing (`YYYY` is literal text to Luxon, `DD` a localized date). {@link foreignDateFormat} recognises them and gives
 * the Luxon format meaning the same, for the `dateFormatIsLuxon` rule.
 */

/** strftime directive → Luxon tokens (`undefined`: no Luxon equivalent). */
const STRFTIME: Readonly<Record<string, string | undefined>> = {
  Y: 'yyyy',
  y: 'yy',
  m: 'MM',
  d: 'dd',
  e: 'd',
  H: 'HH',
  I: 'hh',
  M: 'mm',
  S: 'ss',
  f: 'SSS',
  L: 'SSS',
  p: 'a',
  b: 'MMM',
  h: 'MMM',
  B: 'MMMM',
  a: 'EEE',
  A: 'EEEE',
  z: 'ZZZ',
  Z: 'z',
  j: 'ooo',
  s: 'X',
  T: 'HH:mm:ss',
  R: 'HH:mm',
  D: 'MM/dd/yy',
  F: 'yyyy-MM-dd',
};

/** Moment.js / Day.js token → Luxon tokens (tokens spelled the same in both are absent). */
const MOMENT: Readonly<Record<string, string>> = {
  YYYY: 'yyyy',
  YY: 'yy',
  DD: 'dd',
  D: 'd',
  Do: 'd',
  DDDD: 'ooo',
  dddd: 'EEEE',
  ddd: 'EEE',
  A: 'a',
  Z: 'ZZ',
  ZZ: 'ZZZ',
};

/** Literal text in a Luxon format: letters are quoted (`'T'`), a quote doubled. */
function literal(text: string): string {
  if (text === '') return '';
  return /[A-Za-z']/.test(text) ? `'${text.replace(/'/g, "''")}'` : text;
}

function fromStrftime(format: string): string | undefined {
  let out = '';
  let text = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') {
      text += c;
      continue;
    }
    let d = format[++i];
    if (d === '-' || d === '_' || d === '0' || d === '#') d = format[++i]; // glibc flags: %-d is d, %-m is M
    if (d === '%') {
      text += '%';
      continue;
    }
    const flag = format[i - 1] === '-';
    const tokens = d === undefined ? undefined : STRFTIME[d];
    if (tokens === undefined) return undefined;
    out += literal(text) + (flag && /^(dd|MM|HH|hh|mm|ss)$/.test(tokens) ? tokens[0] : tokens);
    text = '';
  }
  return out + literal(text);
}

/**
 * Whether a format uses Moment tokens: `Y` and `Do` mean nothing in Luxon, and `D`/`DD` beside a month or year is a
 * day of the month in Moment but a whole localized date in Luxon.
 */
function looksLikeMoment(unquoted: string): boolean {
  return /Y|Do/.test(unquoted) || (/D/.test(unquoted) && /[My]/.test(unquoted));
}

function fromMoment(format: string): string {
  let out = '';
  // Moment escapes literal text in [brackets]; Luxon quotes it
  for (const part of format.split(/(\[[^\]]*\])/)) {
    if (part.startsWith('[') && part.endsWith(']')) {
      out += literal(part.slice(1, -1));
      continue;
    }
    out += part.replace(/Do|([A-Za-z])\1*/g, (token) => MOMENT[token] ?? token);
  }
  return out;
}

/**
 * A format written in Moment.js or strftime tokens: the library it looks written for and its Luxon equivalent;
 * undefined for a format that reads as Luxon tokens (or `iso`, `unix`, `unix_ms`).
 */
export function foreignDateFormat(format: string): { kind: 'Moment.js' | 'strftime'; luxon: string | undefined } | undefined {
  if (format === 'iso' || format === 'unix' || format === 'unix_ms') return undefined;
  if (/%[-_0#]?[A-Za-z]/.test(format)) return { kind: 'strftime', luxon: fromStrftime(format) };
  const unquoted = format.replace(/'[^']*'/g, '');
  if (looksLikeMoment(unquoted)) return { kind: 'Moment.js', luxon: fromMoment(format) };
  return undefined;
}
