import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Batcher, type BatcherOptions } from '../../../src/load/batcher.js';
import { manualClock } from '../klaviyo/manual-clock.js';

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
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

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

  it('add(entry, key): two entries with the same key never share a batch; onDuplicateKey names the later one', async () => {
    const duplicates: [string, string][] = [];
    const { batcher, batches } = make({ maxItems: 10, onDuplicateKey: (s, key) => duplicates.push([s, key]) });
    for (const s of ['a:1', 'b:1', 'a:2', 'c:1', 'x']) await batcher.add(s, s === 'x' ? undefined : s.split(':')[0]);
    await batcher.close();
    expect(batches).toEqual([['a:1', 'b:1'], ['a:2', 'c:1', 'x']]);
    expect(duplicates).toEqual([['a:2', 'a']]);
  });

  it('tryAdd(entry, key): returns nothing while entries go straight into the open batch, a promise when it is cut', async () => {
    const { batcher, batches } = make({ maxItems: 10 });
    expect(batcher.tryAdd('a:1', 'a')).toBeUndefined();
    expect(batcher.tryAdd('b:1', 'b')).toBeUndefined();
    const cut = batcher.tryAdd('a:2', 'a');
    expect(cut).toBeInstanceOf(Promise);
    await cut;
    await batcher.close();
    expect(batches).toEqual([['a:1', 'b:1'], ['a:2']]);
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
    await vi.advanceTimersByTimeAsync(50);
    expect(third).toBe(false);
    expect(batcher.inFlight).toBe(2);
    releases.shift()!();
    await adding;
    expect(third).toBe(true);
    const closing = batcher.close();
    while (releases.length > 0 || inFlight > 0) {
      releases.shift()?.();
      await vi.advanceTimersByTimeAsync(5);
    }
    await closing;
    expect(maxInFlight).toBe(2);
  });

  it('a failed send fails later add() and close() with the same error', async () => {
    const boom = new Error('boom');
    const { batcher } = make({ maxItems: 1, send: async () => Promise.reject(boom) });
    await batcher.add('a');
    await vi.advanceTimersByTimeAsync(0);
    await expect(batcher.add('b')).rejects.toBe(boom);
    await expect(batcher.close()).rejects.toBe(boom);
  });

  it('maxWaitMs: a non-empty open batch is sent once its first entry has waited that long', async () => {
    const { batcher, batches } = make({ maxItems: 10, maxWaitMs: 2000 });
    await batcher.add('a');
    await vi.advanceTimersByTimeAsync(1500);
    await batcher.add('b'); // does not restart the wait: it runs from the first entry
    await vi.advanceTimersByTimeAsync(499);
    expect(batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([['a', 'b']]);
    await batcher.add('c');
    await vi.advanceTimersByTimeAsync(2000);
    expect(batches).toEqual([['a', 'b'], ['c']]);
    await batcher.close();
  });

  it('maxWaitMs: defaults to 2000 ms; 0 never sends a batch early', async () => {
    const byDefault = make({ maxItems: 10 });
    const never = make({ maxItems: 10, maxWaitMs: 0 });
    await byDefault.batcher.add('a');
    await never.batcher.add('a');
    await vi.advanceTimersByTimeAsync(1999);
    expect(byDefault.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(byDefault.batches).toEqual([['a']]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(never.batches).toEqual([]);
    await never.batcher.close();
    expect(never.batches).toEqual([['a']]);
  });

  it('maxWaitMs: while every slot is in flight the wait does not make anyone wait; it is tried again later', async () => {
    const releases: (() => void)[] = [];
    const batches: string[][] = [];
    const { batcher } = make({
      maxItems: 2,
      concurrency: 1,
      maxWaitMs: 100,
      send: (b) => {
        batches.push(b);
        return new Promise<void>((resolve) => releases.push(resolve));
      },
    });
    await batcher.add('a');
    await batcher.add('a2'); // full: sent at once, in flight
    expect(batches).toEqual([['a', 'a2']]);
    const b = batcher.tryAdd('b');
    expect(b).toBeUndefined(); // open batch, waiting
    await vi.advanceTimersByTimeAsync(250); // the slot is taken: the linger re-arms instead of waiting for it
    expect(batches).toEqual([['a', 'a2']]);
    releases.shift()!();
    await vi.advanceTimersByTimeAsync(49); // re-armed at 200 for 300: the freed slot alone sends nothing
    expect(batches).toEqual([['a', 'a2']]);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([['a', 'a2'], ['b']]);
    releases.shift()!();
    await batcher.close();
  });

  it('reads its timers from the injected clock only', async () => {
    vi.useRealTimers();
    const clock = manualClock();
    const { batcher, batches } = make({ maxItems: 10, maxWaitMs: 1000, clock });
    await batcher.add('a');
    clock.advance(999);
    expect(batches).toEqual([]);
    clock.advance(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([['a']]);
    await batcher.close();
  });

  it('validates its options', () => {
    expect(() => make({ concurrency: 0 })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
