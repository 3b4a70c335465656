import { describe, expect, it } from 'vitest';
import type { FieldInput } from '../../../src/config/field.js';
import { compileMap, compileMerge } from '../../../src/transform/common.js';
import type { FieldFailure } from '../../../src/transform/common.js';
import { compileResult } from './field/helpers.js';
import { prng } from '../../helpers/random.js';

/** What a map gives, the plain way: each field in order, present values assigned to a fresh object. */
function reference(map: Record<string, FieldInput>, prefix: string, row: Record<string, unknown>, failures: FieldFailure[]) {
  let out: Record<string, unknown> | undefined;
  for (const [key, spec] of Object.entries(map)) {
    const r = compileResult(spec, prefix + key)(row);
    if (!r.ok) failures.push({ field: prefix + key, code: r.code, message: r.message });
    else if (r.value !== undefined) {
      if (out === undefined) out = {};
      out[key] = r.value;
    }
  }
  return out;
}

/** JSON with key order, plus the prototype (a generated literal must give the same plain object). */
const shape = (o: Record<string, unknown> | undefined) =>
  o === undefined ? 'undefined' : `${Object.getPrototypeOf(o) === Object.prototype}:${JSON.stringify(Object.entries(o))}`;

// keys a literal must quote right, integer-like keys (enumerated first), names of Object.prototype members
const odd = ['plain', 'a"b', 'line\nbreak', 'back\\slash', '\u2028sep', '1', '0', 'constructor', 'toString', 'Column With Spaces', ''];

function rows(columns: string[], count: number): Record<string, unknown>[] {
  const rnd = prng(11).int;
  const values = ['', ' ', 'x', ' 12 ', 'abc', '3.5', undefined];
  return Array.from({ length: count }, () => Object.fromEntries(columns.map((c) => [c, values[rnd(values.length)]])));
}

describe('compileMap (generated object builders)', () => {
  const map: Record<string, FieldInput> = Object.fromEntries(
    odd.map((k, i) => [k, i % 3 === 0 ? { column: `c${i}`, type: 'number' } : `c${i}`] as [string, FieldInput]),
  );
  const sample = rows(odd.map((_, i) => `c${i}`), 400);

  it('run(), and evaluate() + build(), give what the plain loop gives (keys, order, values, failures)', () => {
    const m = compileMap(map, 'p.');
    expect(m.keys).toEqual(Object.keys(map));
    let full = 0;
    for (const row of sample) {
      const expectedFailures: FieldFailure[] = [];
      const expected = shape(reference(map, 'p.', row, expectedFailures));
      const failures: FieldFailure[] = [];
      expect(shape(m.run(row, failures))).toBe(expected);
      expect(failures).toEqual(expectedFailures);
      const values: unknown[] = [];
      const failures2: FieldFailure[] = [];
      m.evaluate(row, failures2, values);
      expect(failures2).toEqual(expectedFailures);
      expect(shape(m.build(values))).toBe(expected);
      if (values.every((v) => v !== undefined)) full++;
    }
    // both the one-literal path (every value present) and the assignment path ran
    const allPresent = Object.fromEntries(odd.map((_, i) => [`c${i}`, '7']));
    expect(shape(m.run(allPresent, []))).toBe(shape(reference(map, 'p.', allPresent, [])));
    expect(full).toBeLessThan(sample.length);
  });

  it('an empty map gives undefined; a map with a __proto__ key assigns it as the plain loop does', () => {
    expect(compileMap({}, '').run({}, [])).toBeUndefined();
    const protoMap: Record<string, FieldInput> = JSON.parse('{"a": "x", "__proto__": "y", "b": {"column": "z", "type": "json"}}');
    const m = compileMap(protoMap, '');
    for (const row of [{ x: '1', y: '2', z: '{"k":1}' }, { x: '', y: '2', z: '' }]) {
      expect(shape(m.run(row, []))).toBe(shape(reference(protoMap, '', row, [])));
    }
  });
});

describe('compileMerge', () => {
  const a: Record<string, FieldInput> = { A: 'ca', Shared: 'cs1', '2': 'c2', B: 'cb' };
  const b: Record<string, FieldInput> = { Shared: 'cs2', C: 'cc', '1': 'c1', B: 'cb2' };
  const sample = rows(['ca', 'cs1', 'c2', 'cb', 'cs2', 'cc', 'c1', 'cb2'], 600);

  it('equals { ...a, ...b } of the two maps’ objects for every mix of present and empty values', () => {
    const ma = compileMap(a, 'a.');
    const mb = compileMap(b, 'b.');
    const merge = compileMerge(ma, mb);
    const seen = new Set<string>();
    for (const row of sample) {
      const va: unknown[] = [];
      const vb: unknown[] = [];
      ma.evaluate(row, [], va);
      mb.evaluate(row, [], vb);
      const expected = { ...reference(a, 'a.', row, []), ...reference(b, 'b.', row, []) };
      expect(shape(merge(va, vb))).toBe(shape(expected));
      seen.add([...va, ...vb].map((v) => (v === undefined ? 0 : 1)).join(''));
    }
    expect(seen.size).toBeGreaterThan(100); // many presence patterns, incl. all present
    expect(seen.has('11111111')).toBe(true);
  });

  it('with an empty second map it copies the first (a new object each time)', () => {
    const ma = compileMap(a, '');
    const merge = compileMerge(ma, compileMap(undefined, ''));
    const va: unknown[] = [];
    ma.evaluate({ ca: '1', cs1: '2' }, [], va);
    const one = merge(va, []);
    expect(one).toEqual({ A: '1', Shared: '2' });
    expect(merge(va, [])).not.toBe(one);
    expect(merge([undefined, undefined, undefined, undefined], [])).toEqual({});
  });

  it('falls back to spreading when a map has a __proto__ key', () => {
    const ma = compileMap(JSON.parse('{"__proto__": "p", "A": "ca"}'), '');
    const mb = compileMap({ A: 'cb' }, '');
    const merge = compileMerge(ma, mb);
    const va: unknown[] = [];
    const vb: unknown[] = [];
    ma.evaluate({ p: 'x', ca: '1' }, [], va);
    mb.evaluate({ cb: '2' }, [], vb);
    expect(shape(merge(va, vb))).toBe(shape({ A: '2' }));
  });
});
