import { describe, expect, it } from 'vitest';
import { prng } from '../../../helpers/random.js';
import { code, compileResult, run, value } from './helpers.js';

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
    const number = compileResult({ column: 'c', type: 'number' }, 'f');
    const integer = compileResult({ column: 'c', type: 'integer' }, 'f');
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
