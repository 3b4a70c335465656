import { describe, expect, it } from 'vitest';
import { JsonBytesWriter } from '../../../src/load/json-bytes.js';
import { prng } from '../../helpers/random.js';

/** What the writer produced for `v`, as text (undefined when it wrote nothing). */
function written(v: unknown, writer = new JsonBytesWriter(64)): string | undefined {
  writer.begin();
  if (!writer.value(v)) return undefined;
  return writer.chunk.toString('utf8', writer.start, writer.pos);
}

/** Same bytes as JSON.stringify's text encoded as UTF-8 (lone surrogates are escaped by both, so this is exact). */
function expectSame(v: unknown, writer?: JsonBytesWriter): void {
  const expected = JSON.stringify(v);
  const got = written(v, writer);
  expect(got).toBe(expected);
  if (expected !== undefined) {
    writer ??= new JsonBytesWriter(64);
    writer.begin();
    writer.value(v);
    expect(Buffer.compare(writer.chunk.subarray(writer.start, writer.pos), Buffer.from(expected, 'utf8'))).toBe(0);
  }
}

const CHAR_POOL = [
  'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u0001', '\u001f', '\u007f', 'é', 'ß', '€', '中',
  '\u2028', '\u2029', '\ud83d\ude00', '\ud800', '\udfff', '\ufeff', '\uffff',
];

function randomString(r: () => number): string {
  const n = Math.floor(r() * 12);
  let s = '';
  for (let i = 0; i < n; i++) s += CHAR_POOL[Math.floor(r() * CHAR_POOL.length)]!;
  return s;
}

function randomValue(r: () => number, depth: number): unknown {
  const kind = Math.floor(r() * (depth > 3 ? 7 : 10));
  switch (kind) {
    case 0:
      return randomString(r);
    case 1:
      return [0, -0, 1, -1.5, 3.14159, 1e21, 1e-7, 2 ** 53, NaN, Infinity, -Infinity][Math.floor(r() * 11)];
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return Math.floor(r() * 1e6);
    case 6:
      return new Date(Date.UTC(2024, 0, 1) + Math.floor(r() * 1e10));
    case 7:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 6);
      for (let i = 0; i < n; i++) o[r() < 0.2 ? String(Math.floor(r() * 10)) : randomString(r)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

describe('JsonBytesWriter', () => {
  it('writes the same bytes as JSON.stringify for plain data', () => {
    for (const v of [
      'plain',
      '',
      'quote " backslash \\ slash / controls \u0000\u0008\u0009\u000a\u000c\u000d\u001f del \u007f',
      'é ß € 中 😀 \u2028\u2029',
      'lone \ud800 high, lone \udc00 low, reversed \udc00\ud800, end \ud83d',
      0,
      -0,
      42,
      -3.5,
      1e21,
      5e-324,
      NaN,
      -Infinity,
      true,
      false,
      null,
      [],
      {},
      [1, 'a', null, undefined, () => 1, Symbol('s'), [2, [3]]],
      { b: 1, a: 2, 10: 'x', 2: 'y', skip: undefined, fn: () => 1, nested: { deep: [{ x: 'y' }] } },
      { 'key "quoted"': 'v', 'ключ': 'значение' },
    ]) {
      expectSame(v);
    }
  });

  it('goes through JSON.stringify for Dates, toJSON, class instances, boxed values and null-prototype objects', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expectSame({ at: new Date(Date.UTC(2024, 4, 5, 6, 7, 8)) });
    expectSame({ custom: { toJSON: () => ({ replaced: true }) } });
    expectSame({ dropped: { toJSON: () => undefined }, kept: 1 });
    expectSame([{ toJSON: () => undefined }]);
    expectSame({ p: new Point(1, 2), s: new String('boxed'), n: new Number(3), m: new Map([[1, 2]]) });
    expectSame(nullProto);
    expect(written(undefined)).toBeUndefined();
    expect(written(() => 1)).toBeUndefined();
  });

  it('throws what JSON.stringify throws (bigint, cycles)', () => {
    const w = new JsonBytesWriter(64);
    expect(() => w.value({ n: 10n })).toThrow(TypeError);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => w.value(cyclic)).toThrow(TypeError);
  });

  it('matches JSON.stringify over random nested values, in one writer across many chunk changes', () => {
    const r = prng(20261126);
    const writer = new JsonBytesWriter(64);
    for (let i = 0; i < 3000; i++) expectSame(randomValue(r, 0), writer);
  });

  it('keeps a value contiguous when it outgrows the chunk, and earlier values intact', () => {
    const writer = new JsonBytesWriter(64);
    writer.begin();
    writer.value({ small: 'x' });
    const first = writer.chunk;
    const firstRange = [writer.start, writer.pos] as const;
    const big = { blob: 'y'.repeat(5000), list: Array.from({ length: 300 }, (_, i) => i) };
    expectSame(big, writer);
    expect(writer.chunk).not.toBe(first);
    expect(first.toString('utf8', ...firstRange)).toBe('{"small":"x"}');
  });
});
