import { describe, expect, it } from 'vitest';
import { Batcher, type BatcherOptions } from '../../../src/load/batcher.js';

function make(overrides: Partial<BatcherOptions<string>> = {}) {
  const batches: string[][] = [];
  const tooLarge: string[] = [];
  const batcher = new Batcher<string>({
    maxItems: 3,
    maxBytes: 1000,
    envelopeBytes: 10,
    concurrency: 2,
    sizeOf: (s) => Buffer.byteLength(s),
    send: async (b) => {
      batches.push(b);
    },
    onTooLarge: (s) => tooLarge.push(s),
    ...overrides,
  });
  return { batcher, batches, tooLarge };
}

describe('Batcher', () => {
  it('maxItems: cuts batches by count', async () => {
    const { batcher, batches } = make();
    for (const s of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) await batcher.add(s);
    await batcher.close();
    expect(batches).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  });

  it('maxBytes: cuts batches by serialized bytes including envelope and separators', async () => {
    // envelope 10 + (40 + 1) * 2 = 92 <= 100; a third would be 133
    const { batcher, batches } = make({ maxItems: 100, maxBytes: 100 });
    const item = (c: string) => c.repeat(40);
    for (const c of 'abcde') await batcher.add(item(c));
    await batcher.close();
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    for (const b of batches) expect(10 + b.reduce((n, s) => n + s.length + 1, 0)).toBeLessThanOrEqual(100);
  });

  it('maxItemBytes: an entry too large alone goes to onTooLarge and is not sent', async () => {
    const { batcher, batches, tooLarge } = make({ maxItemBytes: 5 });
    await batcher.add('ok');
    await batcher.add('much too large');
    await batcher.close();
    expect(tooLarge).toEqual(['much too large']);
    expect(batches).toEqual([['ok']]);
  });

  it('keyOf: two entries with the same key never share a batch', async () => {
    const { batcher, batches } = make({ maxItems: 10, keyOf: (s) => s.split(':')[0] });
    for (const s of ['a:1', 'b:1', 'a:2', 'c:1']) await batcher.add(s);
    await batcher.close();
    expect(batches).toEqual([['a:1', 'b:1'], ['a:2', 'c:1']]);
  });

  it('groupOf: entries of different groups never share a batch', async () => {
    const { batcher, batches } = make({ maxItems: 10, groupOf: (s) => s[0]! });
    for (const s of ['x1', 'x2', 'y1', 'x3']) await batcher.add(s);
    await batcher.close();
    expect(batches).toEqual([['x1', 'x2'], ['y1'], ['x3']]);
  });

  it('concurrency: add() waits while the in-flight window is full (bounded intake)', async () => {
    const releases: (() => void)[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const { batcher } = make({
      maxItems: 1,
      concurrency: 2,
      send: () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        return new Promise<void>((resolve) =>
          releases.push(() => {
            inFlight--;
            resolve();
          }),
        );
      },
    });
    await batcher.add('1');
    await batcher.add('2');
    let third = false;
    const adding = batcher.add('3').then(() => {
      third = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBe(false);
    expect(batcher.inFlight).toBe(2);
    releases.shift()!();
    await adding;
    expect(third).toBe(true);
    const closing = batcher.close();
    while (releases.length > 0 || inFlight > 0) {
      releases.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    await closing;
    expect(maxInFlight).toBe(2);
  });

  it('a failed send fails later add() and close() with the same error', async () => {
    const boom = new Error('boom');
    const { batcher } = make({ maxItems: 1, send: async () => Promise.reject(boom) });
    await batcher.add('a');
    await new Promise((r) => setTimeout(r, 10));
    await expect(batcher.add('b')).rejects.toBe(boom);
    await expect(batcher.close()).rejects.toBe(boom);
  });

  it('validates its options', () => {
    expect(() => make({ concurrency: 0 })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
