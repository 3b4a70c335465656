import { describe, expect, it } from 'vitest';
import { compileField, compileValueField, FieldFail } from '../../../src/transform/field.js';
import type { FieldInput } from '../../../src/config/field.js';
import { EtlError } from '../../../src/core/errors.js';
import { DateTime } from 'luxon';
import { prng } from '../../helpers/random.js';

function run(spec: FieldInput, row: Record<string, unknown>, name = 'f') {
  return compileField(spec, name)(row);
}
const value = (spec: FieldInput, v: unknown) => {
  const r = run(spec, { c: v });
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r.value;
};
const code = (spec: FieldInput, v: unknown) => {
  const r = run(spec, { c: v });
  return r.ok ? 'OK' : r.code;
};

describe('field reading', () => {
  it('column shorthand reads and trims; a missing column is no value', () => {
    expect(run('c', { c: '  x ' })).toEqual({ ok: true, value: 'x' });
    expect(run('c', {})).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', trim: false }, { c: ' x ' })).toEqual({ ok: true, value: ' x ' });
  });

  it('dotted columns read the flat key first, then the nested path', () => {
    expect(run('properties.tier', { 'properties.tier': 'gold' })).toEqual({ ok: true, value: 'gold' });
    expect(run('properties.tier', { properties: { tier: 'silver' } })).toEqual({ ok: true, value: 'silver' });
    expect(run('properties.tier', { properties: null })).toEqual({ ok: true, value: undefined });
  });

  it('template replaces {{Column}} with trimmed values; all referenced columns empty → empty', () => {
    const spec = { template: '{{First Name}} {{ Last }}' };
    expect(run(spec, { 'First Name': ' Ada ', Last: 'Lovelace' })).toEqual({ ok: true, value: 'Ada Lovelace' });
    expect(run(spec, { 'First Name': 'Ada', Last: '' })).toEqual({ ok: true, value: 'Ada' });
    expect(run(spec, { 'First Name': '', Last: ' ' })).toEqual({ ok: true, value: undefined });
    expect(run({ template: 'order-{{Id}}', required: true }, { Id: '' })).toMatchObject({ ok: false, code: 'MISSING_REQUIRED' });
    expect(run({ template: 'order-{{Id}}' }, { Id: 42 })).toEqual({ ok: true, value: 'order-42' });
    expect(run({ template: 'constant' }, {})).toEqual({ ok: true, value: 'constant' });
  });

  it('any column name and template text is read literally (quotes, backslashes, newlines, ${…}, numeric names)', () => {
    const names = ['a"b', "it's", 'back\\slash', 'line\nbreak', '${x}', '`tick`', '*/', '\u2028', '0', '12', 'constructor', ' spaced '];
    for (const column of names) {
      const row = { [column]: ` v-${column}-end ` };
      expect(run(column, row), column).toEqual({ ok: true, value: `v-${column}-end` });
      expect(run({ column, lowercase: true }, row), column).toEqual({ ok: true, value: `v-${column}-end`.toLowerCase() });
      if (/[\n\u2028}]|^ | $/.test(column)) continue; // a placeholder is one line, its name trimmed, without }
      expect(run({ template: `<${column}>{{${column}}}\\{{${column}}}"'\`\${x}` }, row), column).toEqual({
        ok: true,
        value: `<${column}>v-${column}-end\\v-${column}-end"'\`\${x}`,
      });
    }
    expect(run('missing', { other: 'x' })).toEqual({ ok: true, value: undefined });
    expect(run({ template: '{{a}}-{{b}}' }, { a: 1, b: new Date('2024-01-02T03:04:05Z') })).toEqual({
      ok: true,
      value: '1-2024-01-02T03:04:05.000Z',
    });
  });

  it('constant value', () => {
    expect(run({ value: 'web' }, {})).toEqual({ ok: true, value: 'web' });
    expect(run({ value: 3, type: 'number' }, {})).toEqual({ ok: true, value: 3 });
  });

  it('lowercase / uppercase', () => {
    expect(value({ column: 'c', lowercase: true }, 'AbC')).toBe('abc');
    expect(value({ column: 'c', uppercase: true }, 'usd')).toBe('USD');
  });

  it('empty: "" by default, the empty list (case-insensitive), default, required', () => {
    expect(run('c', { c: '' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A', 'null'] }, { c: 'NULL' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A'] }, { c: 'n/a ' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A'] }, { c: '' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', default: 'US' }, { c: '  ' })).toEqual({ ok: true, value: 'US' });
    expect(run({ column: 'c', type: 'number', default: '0' }, { c: null })).toEqual({ ok: true, value: 0 });
    expect(run({ column: 'c', required: true }, { c: '' })).toMatchObject({ ok: false, code: 'MISSING_REQUIRED' });
    expect(run({ column: 'c', required: true, default: 'x' }, {})).toEqual({ ok: true, value: 'x' });
  });

  it('a default that fails its own type is a config error at compile time', () => {
    expect(() => compileField({ column: 'c', type: 'number', default: 'abc' }, 'f')).toThrow(EtlError);
  });

  it('needs exactly one of column/template/value', () => {
    expect(() => compileField({ column: 'a', value: 'b' }, 'f')).toThrow(/exactly one/);
  });
});

describe('number / integer', () => {
  it.each([
    ['1234.5', 1234.5],
    ['-3', -3],
    ['1e3', 1000],
    ['+2', 2],
    ['.5', 0.5],
    [' 7 ', 7],
  ])('number %j → %j', (input, expected) => {
    expect(value({ column: 'c', type: 'number' }, input)).toBe(expected);
  });
  it.each(['12abc', '1,234', 'abc', '1.2.3', 'Infinity', 'NaN', '0x10', '--1'])('number rejects %j', (input) => {
    expect(code({ column: 'c', type: 'number' }, input)).toBe('INVALID_NUMBER');
  });
  it('number and integer give exactly Number(text) under the documented rules, for random decimal texts', () => {
    const numberRe = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
    const integerRe = /^[+-]?\d+$/;
    const number = compileField({ column: 'c', type: 'number' }, 'f');
    const integer = compileField({ column: 'c', type: 'integer' }, 'f');
    const rnd = prng(9).int;
    const texts = ['0', '-0', '+0', '-0.0', '5.', '.5', '.', '+', '-', '+.', '0.1', '0.3', '123456789012345', '1234567890123456', '9007199254740993', '0.000000000000001', '00012', '1.2.3', '1e3'];
    for (let i = 0; i < 50_000; i++) {
      let t = ['', '', '', '-', '+'][rnd(5)];
      for (let j = rnd(12); j > 0; j--) t += String(rnd(10));
      if (rnd(3) > 0) t += '.';
      for (let j = rnd(12); j > 0; j--) t += String(rnd(10));
      if (rnd(20) === 0) t += ['e5', 'x', ',5', '.1'][rnd(4)];
      texts.push(t);
    }
    for (const t of texts) {
      if (t.trim() === '') continue;
      const n = Number(t);
      const r = number({ c: t });
      if (numberRe.test(t) && Number.isFinite(n)) expect(r.ok && Object.is(r.value, n), t).toBe(true);
      else expect(r, t).toMatchObject({ ok: false, code: 'INVALID_NUMBER' });
      const ri = integer({ c: t });
      if (integerRe.test(t) && Number.isSafeInteger(n)) expect(ri.ok && Object.is(ri.value, n), t).toBe(true);
      else expect(ri, t).toMatchObject({ ok: false, code: 'INVALID_INTEGER' });
    }
  });
  it('number passes JS numbers and bigints, rejects booleans', () => {
    expect(value({ column: 'c', type: 'number' }, 2.5)).toBe(2.5);
    expect(value({ column: 'c', type: 'number' }, 10n)).toBe(10);
    expect(code({ column: 'c', type: 'number' }, true)).toBe('INVALID_NUMBER');
    expect(code({ column: 'c', type: 'number' }, Number.NaN)).toBe('INVALID_NUMBER');
  });
  it('integer', () => {
    expect(value({ column: 'c', type: 'integer' }, '-42')).toBe(-42);
    expect(value({ column: 'c', type: 'integer' }, 7)).toBe(7);
    expect(value({ column: 'c', type: 'integer' }, 9n)).toBe(9);
    for (const bad of ['1.5', '12.0', '1e3', 'x', '99999999999999999999']) {
      expect(code({ column: 'c', type: 'integer' }, bad)).toBe('INVALID_INTEGER');
    }
    expect(code({ column: 'c', type: 'integer' }, 1.5)).toBe('INVALID_INTEGER');
  });
});

describe('boolean / string / json', () => {
  it('boolean defaults, case-insensitive', () => {
    for (const t of ['true', 'YES', 'y', '1']) expect(value({ column: 'c', type: 'boolean' }, t)).toBe(true);
    for (const f of ['False', 'no', 'N', '0']) expect(value({ column: 'c', type: 'boolean' }, f)).toBe(false);
    expect(value({ column: 'c', type: 'boolean' }, true)).toBe(true);
    expect(value({ column: 'c', type: 'boolean' }, 0)).toBe(false);
    expect(code({ column: 'c', type: 'boolean' }, 'maybe')).toBe('INVALID_BOOLEAN');
    expect(code({ column: 'c', type: 'boolean' }, 2)).toBe('INVALID_BOOLEAN');
  });
  it('boolean custom values replace the defaults', () => {
    const spec = { column: 'c', type: 'boolean' as const, trueValues: ['Subscribed'], falseValues: ['Unsubscribed'] };
    expect(value(spec, 'subscribed')).toBe(true);
    expect(value(spec, 'UNSUBSCRIBED')).toBe(false);
    expect(code(spec, 'yes')).toBe('INVALID_BOOLEAN');
  });
  it('string stringifies non-strings', () => {
    expect(value('c', 12)).toBe('12');
    expect(value('c', false)).toBe('false');
    expect(value('c', new Date('2024-03-05T19:22:10.000Z'))).toBe('2024-03-05T19:22:10.000Z');
    expect(value('c', { a: 1 })).toBe('{"a":1}');
  });
  it('json parses text and passes structured values', () => {
    expect(value({ column: 'c', type: 'json' }, '{"a":[1,2]}')).toEqual({ a: [1, 2] });
    expect(value({ column: 'c', type: 'json' }, { a: 1 })).toEqual({ a: 1 });
    expect(code({ column: 'c', type: 'json' }, '{a:1}')).toBe('INVALID_VALUE');
  });
});

describe('email', () => {
  it.each([
    ['Ada@Example.COM', 'ada@example.com'],
    [' first.last+tag@sub.example.co.uk ', 'first.last+tag@sub.example.co.uk'],
    ["o'brien@example.ie", "o'brien@example.ie"],
  ])('accepts %j', (input, expected) => {
    expect(value({ column: 'c', type: 'email' }, input)).toBe(expected);
  });
  it.each(['plainaddress', 'a@b', 'a@@b.com', 'a b@example.com', 'a@exa mple.com', '.a@example.com', 'a..b@example.com', 'a@-x.com', 'a@example.c', '@example.com'])(
    'rejects %j',
    (input) => {
      expect(code({ column: 'c', type: 'email' }, input)).toBe('INVALID_EMAIL');
    },
  );
  it('rejects non-strings', () => {
    expect(code({ column: 'c', type: 'email' }, 5)).toBe('INVALID_EMAIL');
  });
});

describe('phone', () => {
  it('US and GB national formats with a region → E.164', () => {
    expect(value({ column: 'c', type: 'phone', region: 'US' }, '(212) 555-0123')).toBe('+12125550123');
    expect(value({ column: 'c', type: 'phone', region: 'US' }, '212.555.0123')).toBe('+12125550123');
    expect(value({ column: 'c', type: 'phone', region: 'GB' }, '020 7946 0958')).toBe('+442079460958');
    expect(value({ column: 'c', type: 'phone', region: 'GB' }, '07400 123456')).toBe('+447400123456');
  });
  it('a + number needs no region', () => {
    expect(value({ column: 'c', type: 'phone' }, '+44 20 7946 0958')).toBe('+442079460958');
    expect(value({ column: 'c', type: 'phone', region: 'US' }, '+1 212-555-0123')).toBe('+12125550123');
  });
  it('without + and without region → INVALID_PHONE saying so', () => {
    const r = run({ column: 'c', type: 'phone' }, { c: '(212) 555-0123' });
    expect(r).toMatchObject({ ok: false, code: 'INVALID_PHONE' });
    expect(r.ok ? '' : r.message).toMatch(/region/);
  });
  it.each(['555-0123', '12abc', '+1 212 555 0123 ext 5', '+999 123', 'call me'])('rejects %j', (input) => {
    expect(code({ column: 'c', type: 'phone', region: 'US' }, input)).toBe('INVALID_PHONE');
  });
});

describe('date', () => {
  it('iso date-only stays that calendar date whatever the zone', () => {
    expect(value({ column: 'c', type: 'date', format: 'iso' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'Pacific/Kiritimati' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'Pacific/Pago_Pago' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'MM/dd/yyyy', zone: 'America/Los_Angeles' }, '03/05/2024')).toBe(
      '2024-03-05',
    );
  });
  it('iso with a time and offset is the date where the offset says, or in zone when set', () => {
    expect(value({ column: 'c', type: 'date', format: 'iso' }, '2024-03-05T23:30:00-05:00')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'UTC' }, '2024-03-05T23:30:00-05:00')).toBe('2024-03-06');
  });
  it('the declared format decides; ambiguous values are not guessed', () => {
    expect(value({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '01/02/2024')).toBe('2024-02-01');
    expect(value({ column: 'c', type: 'date', format: 'MM/dd/yyyy' }, '01/02/2024')).toBe('2024-01-02');
    expect(code({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '1/2/2024')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '2024-02-01')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'MM/dd/yyyy' }, '13/02/2024')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'iso' }, '2024-02-30')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'iso' }, '03/05/2024')).toBe('INVALID_DATE');
  });
  it('the INVALID_DATE message names the expected format', () => {
    const r = run({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, { c: 'x' });
    expect(r.ok ? '' : r.message).toContain('dd/MM/yyyy');
  });
  it('unix timestamps and Date objects', () => {
    expect(value({ column: 'c', type: 'date', format: 'unix' }, '1709680930')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'unix', zone: 'Asia/Tokyo' }, 1709680930)).toBe('2024-03-06');
    expect(value({ column: 'c', type: 'date', format: 'iso' }, new Date(2024, 2, 5))).toBe('2024-03-05'); // local midnight
    expect(value({ column: 'c', type: 'date', format: 'iso' }, new Date('2024-03-05T23:30:00Z'))).toBe('2024-03-05');
  });
});

describe('datetime', () => {
  const iso = (v: unknown, zone?: string) => value({ column: 'c', type: 'datetime', format: 'iso', zone }, v);
  it('iso with offsets → UTC Z, seconds precision', () => {
    expect(iso('2024-03-05T14:22:10-05:00')).toBe('2024-03-05T19:22:10Z');
    expect(iso('2024-03-05T19:22:10.987Z')).toBe('2024-03-05T19:22:10Z');
    expect(iso('2024-03-05 19:22:10+0100')).toBe('2024-03-05T18:22:10Z');
    expect(iso('2024-03-05T19:22:10.123456+00:00')).toBe('2024-03-05T19:22:10Z');
  });
  it('iso without offset is read in zone, across DST', () => {
    expect(iso('2024-01-15T12:00:00', 'America/New_York')).toBe('2024-01-15T17:00:00Z'); // EST
    expect(iso('2024-07-15T12:00:00', 'America/New_York')).toBe('2024-07-15T16:00:00Z'); // EDT
    expect(iso('2024-03-05', 'Europe/Paris')).toBe('2024-03-04T23:00:00Z');
  });
  it('iso shapes agree with Luxon; impossible dates are rejected', () => {
    const samples = [
      '2024-02-29T12:00:00Z', '2024-12-31T23:59:59.999+14:00', '2024-01-01T00:00:00-12:00', '2024-06-30T10:20+0530',
      '2024-06-30T10:20:30,5-03', '2000-02-29T00:00:00Z', '2024-03-05t19:22:10z', '2024-W10-2T10:00:00Z', '20240305T192210Z',
    ];
    for (const text of samples) {
      const expected = DateTime.fromISO(text, { setZone: true }).toUTC().toISO({ suppressMilliseconds: true }) as string;
      expect(iso(text)).toBe(expected.replace(/\.\d{3}Z$/, 'Z'));
    }
    for (const bad of ['2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-04-31T00:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01T10:60:00Z', '2024-01-01T10:00:00+']) {
      expect(code({ column: 'c', type: 'datetime', format: 'iso', zone: 'UTC' }, bad)).toBe('INVALID_DATE');
    }
  });
  it('iso without offset and without zone is rejected, not guessed', () => {
    expect(code({ column: 'c', type: 'datetime', format: 'iso' }, '2024-03-05T12:00:00')).toBe('INVALID_DATE');
  });
  it('custom format with zone incl. DST transitions', () => {
    const spec = { column: 'c', type: 'datetime' as const, format: 'MM/dd/yyyy HH:mm', zone: 'America/New_York' };
    expect(value(spec, '03/09/2024 12:00')).toBe('2024-03-09T17:00:00Z');
    expect(value(spec, '03/10/2024 12:00')).toBe('2024-03-10T16:00:00Z');
    expect(value(spec, '11/03/2024 01:30')).toBe('2024-11-03T05:30:00Z'); // repeated hour: earlier (EDT) offset
    expect(value(spec, '11/03/2024 01:03')).toBe('2024-11-03T05:03:00Z');
    expect(value(spec, '11/03/2024 02:00')).toBe('2024-11-03T07:00:00Z');
    expect(code(spec, '03/10/2024 02:30')).toBe('INVALID_DATE'); // does not exist (spring forward)
  });
  it('custom format with an offset token needs no zone', () => {
    const spec = { column: 'c', type: 'datetime' as const, format: 'yyyy-MM-dd HH:mm:ss ZZZ' };
    expect(value(spec, '2024-03-05 14:22:10 -0500')).toBe('2024-03-05T19:22:10Z');
  });
  it('custom format without offset and without zone is a config error', () => {
    expect(() => compileField({ column: 'c', type: 'datetime', format: 'MM/dd/yyyy HH:mm' }, 'f')).toThrow(/zone/);
  });
  it('unknown zone is a config error', () => {
    expect(() => compileField({ column: 'c', type: 'datetime', format: 'iso', zone: 'Mars/Olympus' }, 'f')).toThrow(EtlError);
  });
  it('ambiguity: the same text under two formats gives two instants; a non-matching value is rejected', () => {
    const dmy = { column: 'c', type: 'datetime' as const, format: 'dd/MM/yyyy HH:mm', zone: 'UTC' };
    const mdy = { column: 'c', type: 'datetime' as const, format: 'MM/dd/yyyy HH:mm', zone: 'UTC' };
    expect(value(dmy, '01/02/2024 10:00')).toBe('2024-02-01T10:00:00Z');
    expect(value(mdy, '01/02/2024 10:00')).toBe('2024-01-02T10:00:00Z');
    expect(code(mdy, '2024-01-02 10:00')).toBe('INVALID_DATE');
    expect(code(mdy, '01/02/2024')).toBe('INVALID_DATE');
    const r = run(mdy, { c: '2024-01-02' });
    expect(r.ok ? '' : r.message).toContain('MM/dd/yyyy HH:mm');
  });
  it('unix / unix_ms / Date objects', () => {
    expect(value({ column: 'c', type: 'datetime', format: 'unix' }, '1709666530')).toBe('2024-03-05T19:22:10Z');
    expect(value({ column: 'c', type: 'datetime', format: 'unix' }, 1709666530)).toBe('2024-03-05T19:22:10Z');
    expect(value({ column: 'c', type: 'datetime', format: 'unix_ms' }, '1709666530123')).toBe('2024-03-05T19:22:10Z');
    expect(code({ column: 'c', type: 'datetime', format: 'unix' }, '17096x')).toBe('INVALID_DATE');
    expect(value({ column: 'c', type: 'datetime', format: 'iso' }, new Date('2024-03-05T19:22:10Z'))).toBe('2024-03-05T19:22:10Z');
    expect(code({ column: 'c', type: 'datetime', format: 'iso' }, new Date('nope'))).toBe('INVALID_DATE');
  });
  it('zone conversion agrees with Luxon across transitions (incl. 30-minute DST and half-hour zones)', () => {
    const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'America/St_Johns', 'Asia/Kolkata', 'UTC'];
    for (const zone of zones) {
      const field = compileField({ column: 'c', type: 'datetime', format: 'yyyy-MM-dd HH:mm', zone }, 'f');
      let checked = 0;
      let gaps = 0;
      let overlaps = 0;
      for (let wall = Date.UTC(2024, 0, 1); wall < Date.UTC(2025, 0, 1); wall += 13 * 60_000) {
        const text = new Date(wall).toISOString().slice(0, 16).replace('T', ' ');
        const luxon = DateTime.fromFormat(text, 'yyyy-MM-dd HH:mm', { zone });
        const exists = luxon.toFormat('yyyy-MM-dd HH:mm') === text;
        const r = field({ c: text });
        if (exists) {
          // same wall time in the zone, and never later than Luxon's reading (overlaps take the earlier instant)
          if (!r.ok) throw new Error(`${zone} ${text}: ${r.message}`);
          const ours = DateTime.fromISO(r.value as string, { zone });
          expect(ours.toFormat('yyyy-MM-dd HH:mm')).toBe(text);
          expect(ours.toMillis()).toBeLessThanOrEqual(luxon.toMillis());
          if (ours.toMillis() < luxon.toMillis()) overlaps++;
        } else {
          expect(r).toMatchObject({ ok: false, code: 'INVALID_DATE' });
          gaps++;
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(40_000);
      expect(gaps > 0).toBe(!['Asia/Kolkata', 'UTC'].includes(zone));
      expect(overlaps).toBeLessThan(10);
    }
  });
});


describe('compileValueField (the transforms’ value-returning form)', () => {
  it('gives the value itself, undefined for no value, and a FieldFail equal to compileField’s failure', () => {
    const specs: FieldInput[] = [
      'c',
      { column: 'c', type: 'number' },
      { column: 'c', type: 'integer', default: '0' },
      { column: 'c', type: 'email', required: true },
      { column: 'c', type: 'datetime', format: 'yyyy-MM-dd HH:mm:ss ZZZ' },
      { template: 'x-{{c}}', uppercase: true },
      { value: 7, type: 'number' },
      { column: 'c', type: 'json' },
    ];
    const inputs = ['', ' 12 ', 'abc', '1.5', 'A@Example.com', '2024-03-05 14:22:10 -0500', '{"a":1}', 'null', undefined, null, 3];
    for (const spec of specs) {
      const field = compileField(spec, 'f');
      const valueField = compileValueField(spec, 'f');
      for (const input of inputs) {
        const expected = field({ c: input });
        const got = valueField({ c: input });
        if (expected.ok) {
          expect(got instanceof FieldFail, `${JSON.stringify(spec)} ${String(input)}`).toBe(false);
          expect(got).toEqual(expected.value);
        } else {
          expect(got).toBeInstanceOf(FieldFail);
          expect(got).toEqual(expected);
        }
      }
    }
  });

  it('itemColumn reads the item argument in columns, templates and region columns; a path through it reads only the flat key', () => {
    const options = { itemColumn: '_item' };
    expect(compileValueField('_item', 'f', options)({ _item: 'column' }, 3)).toBe('3');
    expect(compileValueField({ template: 'o-{{ _item }}-{{_item.x}}' }, 'f', options)({ _item: 'column', '_item.x': 'flat' }, 2)).toBe(
      'o-2-flat',
    );
    expect(compileValueField({ template: '{{_item.x}}' }, 'f', options)({ _item: { x: 'nested' } }, 2)).toBe(undefined);
    // without the option `_item` is an ordinary column
    expect(compileValueField('_item', 'f')({ _item: 'column' }, 3)).toBe('column');
    expect(compileValueField({ template: '{{_item.x}}' }, 'f')({ _item: { x: 'nested' } }, 2)).toBe('nested');
    // a region column named `_item` reads the position (never a region), so the field's `region` applies
    const phone = compileValueField({ column: 'p', type: 'phone', region: 'US', regionColumn: '_item' }, 'f', options);
    expect(phone({ p: '(213) 555-0100', _item: 'GB' }, 1)).toBe('+12135550100');
  });
});
