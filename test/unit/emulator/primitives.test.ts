import { describe, expect, it } from 'vitest';
import { ENDPOINTS } from '../../../src/klaviyo/endpoints.js';
import { FaultInjector, parseFaults } from '../../../src/emulator/faults.js';
import { ApiError } from '../../../src/emulator/http.js';
import { IdGenerator, ULID_PATTERN } from '../../../src/emulator/ids.js';
import { parseFilter } from '../../../src/emulator/query.js';
import { RateLimiter } from '../../../src/emulator/rate-limit.js';
import { isValidEmail, isValidPhone, validateEventAttributes } from '../../../src/emulator/validate.js';

describe('IdGenerator', () => {
  it('makes monotonic 26-char Crockford ULIDs', () => {
    const ids = new IdGenerator();
    const list = Array.from({ length: 1000 }, () => ids.ulid(1_700_000_000_000));
    for (const id of list) expect(id).toMatch(ULID_PATTERN);
    expect([...list].sort()).toEqual(list);
    expect(new Set(list).size).toBe(1000);
    expect(ids.shortId()).toMatch(/^[A-Za-z0-9]{6}$/);
  });
});

describe('RateLimiter', () => {
  const tier = ENDPOINTS['POST /api/event-bulk-create-jobs'];
  it('allows the burst, then throttles until the next second', () => {
    const rl = new RateLimiter(1);
    const t = 1_000_000_500;
    for (let i = 0; i < 10; i++) expect(rl.check('a', 'k', tier, t).allowed).toBe(true);
    const d = rl.check('a', 'k', tier, t);
    expect(d).toMatchObject({ allowed: false, retryAfter: 1 });
    expect(rl.check('a', 'k', tier, t + 500).allowed).toBe(true);
    expect(rl.check('b', 'k', tier, t).allowed).toBe(true);
  });
  it('factor multiplies allowances', () => {
    const rl = new RateLimiter(3);
    let ok = 0;
    for (let i = 0; i < 40; i++) if (rl.check('a', 'k', tier, 5_000).allowed) ok++;
    expect(ok).toBe(30);
  });
});

describe('parseFilter', () => {
  const allowed = { email: ['equals', 'any'], created: ['greater-than', 'less-than'] } as const;
  it('parses and(), comma lists, quotes, arrays and datetimes', () => {
    const c = parseFilter(`and(any(email,["a@x.com",'b@x.com']),greater-than(created,2024-01-01T00:00:00Z)),equals(email,"c@x.com")`, allowed);
    expect(c).toEqual([
      { op: 'any', field: 'email', value: ['a@x.com', 'b@x.com'] },
      { op: 'greater-than', field: 'created', value: new Date('2024-01-01T00:00:00Z') },
      { op: 'equals', field: 'email', value: 'c@x.com' },
    ]);
  });
  it('rejects unknown fields/operators and syntax errors with source.parameter filter', () => {
    for (const bad of ['equals(first_name,"x")', 'less-than(email,"x")', 'equals(email,"x"', 'nonsense']) {
      try {
        parseFilter(bad, allowed);
        expect.unreachable(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(ApiError);
        expect((e as ApiError).errors[0]!.source).toEqual({ parameter: 'filter' });
      }
    }
  });
});

describe('validation', () => {
  it('emails and E.164 phones', () => {
    expect(isValidEmail('a.b+c@example.co.uk')).toBe(true);
    expect(isValidEmail('a@b')).toBe(false);
    expect(isValidEmail('a b@example.com')).toBe(false);
    expect(isValidPhone('+14155552671')).toBe(true);
    expect(isValidPhone('4155552671')).toBe(false);
    expect(isValidPhone('+1415555')).toBe(false);
  });
  it('event time is truncated to the second and bounded', () => {
    const now = Date.UTC(2026, 0, 1);
    const errors: never[] = [];
    const ev = validateEventAttributes({ properties: {}, time: '2024-05-05T10:11:12.999+02:00', metric: { data: { type: 'metric', attributes: { name: 'M' } } } }, '/x', now, errors, false);
    expect(errors).toEqual([]);
    expect(ev!.time).toBe(Date.UTC(2024, 4, 5, 8, 11, 12));
    const errs: unknown[] = [];
    validateEventAttributes({ properties: {}, time: '1990-01-01T00:00:00Z', metric: { data: { type: 'metric', attributes: { name: 'M' } } } }, '/x', now, errs as never[], false);
    expect(errs).toHaveLength(1);
  });
});

describe('faults', () => {
  it('parses k=v and JSON; the same seed gives the same decisions', () => {
    expect(parseFaults('seed=2, rate500=0.5')).toEqual({ seed: 2, rate500: 0.5 });
    expect(parseFaults('{"rate429":0.1}')).toEqual({ rate429: 0.1 });
    const run = () => {
      const f = new FaultInjector({ seed: 9, rate500: 0.2, rate429: 0.2 });
      return Array.from({ length: 50 }, () => f.next()?.kind ?? null);
    };
    expect(run()).toEqual(run());
    expect(() => new FaultInjector({ rate500: 2 })).toThrow(/probability/);
  });

  it('refuses unknown names, non-numbers and out-of-range values, in both forms and in the constructor', () => {
    expect(() => parseFaults('rate500=0.1,rate5OO=0.2')).toThrow(/Unknown fault option `rate5OO`; the options are seed, rate500, rate502, rate503, rate429, resetRate, slowRate, slowMs, timeoutRate/);
    expect(() => parseFaults('{"timeout":0.1}')).toThrow(/Unknown fault option `timeout`/);
    expect(() => parseFaults('{"rate500":"0.1"}')).toThrow(/`rate500` to be a number, got string/);
    expect(() => parseFaults('[]')).toThrow(/to be an object/);
    expect(() => parseFaults('{"rate500":')).toThrow(/not valid JSON/);
    expect(() => parseFaults('seed=1.5')).toThrow(/`seed` to be an integer/);
    expect(() => parseFaults('slowMs=-1')).toThrow(/`slowMs`/);
    expect(() => parseFaults('rate429')).toThrow(/`key=number`/);
    expect(() => parseFaults('rate429=')).toThrow(/`key=number`/);
    expect(() => new FaultInjector({ bogus: 0.1 } as never)).toThrow(/Unknown fault option `bogus`/);
    expect(parseFaults('seed=3,slowRate=0.5,slowMs=0,timeoutRate=1')).toEqual({ seed: 3, slowRate: 0.5, slowMs: 0, timeoutRate: 1 });
  });
});
