import { describe, expect, it } from 'vitest';
import { envelopeParser, MAX_BODY_DEPTH, parsePieces, pointerAt, tooDeepAt } from '../../../src/emulator/json-body.js';

const parse = envelopeParser('event-bulk-create-job', 'events-bulk-create', 'event-bulk-create');
const PREFIX = Buffer.from('{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[');
const CUT = Buffer.from(',{"type":"event-bulk-create",');

function entry(i: number, properties: Record<string, unknown> = {}) {
  return {
    type: 'event-bulk-create',
    attributes: {
      profile: { data: { type: 'profile', attributes: { email: `p${i % 97}@example.com` } } },
      events: { data: [{ type: 'event', attributes: { properties: { i, ...properties }, unique_id: `u-${i}`, metric: { data: { type: 'metric', attributes: { name: 'M' } } } } }] },
    },
  };
}

function body(n: number, edit: (entries: ReturnType<typeof entry>[]) => void = () => {}) {
  const entries = Array.from({ length: n }, (_, i) => entry(i));
  edit(entries);
  return { data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: entries } } } };
}

/** The parser's result must be exactly JSON.parse's (or the same SyntaxError). */
function expectSameAsJsonParse(text: string) {
  let expected: unknown;
  let error: string | null = null;
  try {
    expected = JSON.parse(text);
  } catch (e) {
    error = (e as Error).message;
  }
  if (error !== null) expect(() => parse(Buffer.from(text))).toThrow(error);
  else expect(parse(Buffer.from(text))).toEqual(expected);
}

describe('envelopeParser', () => {
  it('parses a large compact bulk body in pieces to exactly what JSON.parse gives', () => {
    const text = JSON.stringify(body(1000));
    expect(text.length).toBeGreaterThan(200_000);
    const items = parsePieces(Buffer.from(text), PREFIX, CUT);
    expect(items).toHaveLength(1000);
    expectSameAsJsonParse(text);
  });

  it('the cut sequence nested inside an item or inside a string does not change the result', () => {
    const nested = body(1000, (es) => {
      for (let i = 10; i < 1000; i += 37) (es[i]!.attributes.events.data[0]!.attributes.properties as Record<string, unknown>).x = [1, { type: 'event-bulk-create', attributes: {} }];
    });
    expectSameAsJsonParse(JSON.stringify(nested));
    const inString = body(1000, (es) => {
      for (let i = 5; i < 1000; i += 11) (es[i]!.attributes.events.data[0]!.attributes.properties as Record<string, unknown>).note = ',{"type":"event-bulk-create","attributes":{}}';
    });
    expectSameAsJsonParse(JSON.stringify(inString));
  });

  it('falls back to one JSON.parse for other layouts, and gives its syntax errors for invalid bodies', () => {
    const b = body(1000);
    const text = JSON.stringify(b);
    expect(parsePieces(Buffer.from(JSON.stringify(b, null, 1)), PREFIX, CUT)).toBeNull();
    expectSameAsJsonParse(JSON.stringify(b, null, 1));
    expectSameAsJsonParse(text + '\n');
    expectSameAsJsonParse(text.slice(0, 300_000)); // truncated
    expectSameAsJsonParse(text.slice(0, -1)); // one closing brace missing
    const doubleComma = text.replace(/,\{"type":"event-bulk-create",/g, (m, at: number) => (at > 100_000 && at < 101_000 ? `,${m}` : m));
    expect(doubleComma).not.toBe(text);
    expect(parsePieces(Buffer.from(doubleComma), PREFIX, CUT)).toBeNull();
    expectSameAsJsonParse(doubleComma);
    expectSameAsJsonParse(text.replace('"data":[{', '"data":[,{'));
    expectSameAsJsonParse(text.replace('}]}}}}', '},]}}}}'));
  });

  it('UTF-8 bodies decode piecewise to the same text', () => {
    const text = JSON.stringify(body(1000, (es) => es.forEach((e, i) => ((e.attributes.events.data[0]!.attributes.properties as Record<string, unknown>).name = `Zoë ${i} 🚀 ☃`))));
    expect(parsePieces(Buffer.from(text), PREFIX, CUT)).toHaveLength(1000);
    expectSameAsJsonParse(text);
  });
});

describe('tooDeepAt / pointerAt: the depth guard before parsing', () => {
  const deepest = (text: string) => {
    const b = Buffer.from(text);
    const at = tooDeepAt(b, 3);
    return at < 0 ? null : { at, char: text[at], pointer: pointerAt(b, at) };
  };

  it('finds the first container nested deeper than the limit, and its JSON pointer', () => {
    expect(deepest('{"a":{"b":[1]}}')).toBeNull();
    expect(deepest('{"a":{"b":[[1]]}}')).toEqual({ at: 11, char: '[', pointer: '/a/b/0' });
    expect(deepest('[0,{"k":1},[2,3,{"x":{"y":{}}}]]')).toMatchObject({ char: '{', pointer: '/2/2/x' });
    expect(deepest('{"a":1,"b":{"c":2,"d":[{"e":0}]}}')).toMatchObject({ char: '{', pointer: '/b/d/0' });
  });

  it('brackets and quotes inside strings (escaped or not) do not count; keys are unescaped and pointer-escaped', () => {
    expect(deepest('{"a":"[[[[{{{{","b":"\\"[[[[","c":["\\\\",["]]]]"]]}')).toBeNull();
    expect(deepest('{"a/b":{"~\\"[":[[0]]}}')).toMatchObject({ pointer: '/a~1b/~0"[/0' });
  });

  it('text that is not JSON is left to JSON.parse (no throw, no false alarm on an unclosed string)', () => {
    expect(deepest('{"a":"[[[[[[')).toBeNull();
    expect(deepest(']]]]{"a":1}')).toBeNull();
    expect(deepest('')).toBeNull();
  });

  it('a body of 2.6 million nested arrays is found in one pass, at the first container past the limit', () => {
    const n = 2_600_000;
    const b = Buffer.from('['.repeat(n) + ']'.repeat(n));
    expect(tooDeepAt(b, MAX_BODY_DEPTH)).toBe(MAX_BODY_DEPTH);
    expect(pointerAt(b, MAX_BODY_DEPTH)).toBe('/0'.repeat(MAX_BODY_DEPTH));
  });

  it('the deepest legitimate body (a bulk event with properties nested 10 levels) is within the limit', () => {
    let props: unknown = 1;
    for (let i = 0; i < 10; i++) props = { a: props };
    const text = JSON.stringify(body(2, (es) => (es[0]!.attributes.events.data[0]!.attributes.properties = { deep: props } as never)));
    expect(tooDeepAt(Buffer.from(text), MAX_BODY_DEPTH)).toBe(-1);
    expect(tooDeepAt(Buffer.from(text), 22)).toBe(-1);
    expect(tooDeepAt(Buffer.from(text), 21)).toBeGreaterThan(0);
  });
});
