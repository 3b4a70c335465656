import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../../src/checkpoint/ack-tracker.js';
import type { SourcePosition } from '../../../src/core/record.js';
import { prng } from '../../helpers/random.js';

const pos = (seq: number): SourcePosition => ({ seq, source: 'orders.csv', line: seq + 2 });

/** Read records a..b, one item per record, closing each as it is read. */
function readSingles(t: AckTracker, a: number, b: number): void {
  for (let s = a; s <= b; s++) {
    t.read(pos(s));
    t.produced(s, s);
    t.closeBefore(s + 1);
  }
}

describe('AckTracker', () => {
  it('has no safe position until the first record is settled', () => {
    const t = new AckTracker();
    readSingles(t, 0, 2);
    expect(t.safePosition()).toBeUndefined();
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(0);
  });

  it('only counts the contiguous settled prefix when items settle out of order', () => {
    const t = new AckTracker();
    readSingles(t, 0, 4);
    t.settled(2);
    t.settled(4);
    expect(t.safePosition()).toBeUndefined();
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(0);
    t.settled(1);
    expect(t.safePosition()?.seq).toBe(2);
    t.settled(3);
    expect(t.safePosition()).toEqual(pos(4));
    expect(t.idle).toBe(true);
  });

  it('settles a span (grouped event over several rows) as a whole', () => {
    const t = new AckTracker();
    for (let s = 0; s < 3; s++) t.read(pos(s));
    t.produced(pos(0), pos(2));
    t.closeBefore(3);
    expect(t.safePosition()).toBeUndefined();
    t.settled(pos(0), pos(2));
    expect(t.safePosition()?.seq).toBe(2);
  });

  it('waits for every item produced from a record (group event + per-item events)', () => {
    const t = new AckTracker();
    t.read(pos(0));
    t.read(pos(1));
    t.produced(0, 1); // Placed Order over rows 0-1
    t.produced(0, 0); // Ordered Product for row 0
    t.produced(1, 1); // Ordered Product for row 1
    t.closeBefore(2);
    t.settled(0, 0);
    expect(t.safePosition()).toBeUndefined();
    t.settled(0, 1);
    expect(t.safePosition()?.seq).toBe(0);
    t.settled(1, 1);
    expect(t.safePosition()?.seq).toBe(1);
  });

  it('settles a grouped item from a load reject that carries only its first seq', () => {
    const t = new AckTracker();
    for (let s = 0; s < 4; s++) t.read(pos(s));
    t.produced(pos(0), pos(2)); // Placed Order, rows 0-2
    t.produced(pos(0), pos(0)); // Ordered Product, row 0
    t.produced(pos(3), pos(3));
    t.closeBefore(4);
    t.settled(3);
    t.settled(0); // a reject: { seq: 0 } — which of the two items does not matter
    expect(t.safePosition()).toBeUndefined();
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(3);
  });

  it('does not pass records held by an open group, even when their items are settled', () => {
    const t = new AckTracker();
    t.read(pos(0));
    t.produced(0);
    t.closeBefore(1);
    t.read(pos(1)); // opens a group
    t.closeBefore(1); // heldFrom = 1
    t.read(pos(2)); // same group
    t.closeBefore(1);
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(0);
    t.read(pos(3)); // new key: group 1-2 emitted, 3 now held
    t.produced(1, 2);
    t.closeBefore(3);
    expect(t.safePosition()?.seq).toBe(0);
    t.settled(1, 2);
    expect(t.safePosition()?.seq).toBe(2);
  });

  it('treats consumed records (transform rejects, skipped rows) as done without items', () => {
    const t = new AckTracker();
    t.read(pos(0));
    t.produced(0);
    t.read(pos(1)); // rejected at transform
    t.consumed(1);
    t.read(pos(2));
    t.produced(2);
    t.settled(2);
    t.settled(0);
    // record 0 and 2 are not closed yet (the runner has not called closeBefore), 1 is consumed
    expect(t.safePosition()).toBeUndefined();
    t.closeBefore(3);
    expect(t.safePosition()?.seq).toBe(2);
  });

  it('a record consumed inside an open group does not advance past the held records', () => {
    const t = new AckTracker();
    t.read(pos(0)); // opens a group
    t.read(pos(1)); // invalid row in the middle
    t.consumed(1);
    expect(t.safePosition()).toBeUndefined();
    t.produced(0, 0);
    t.closeBefore(2);
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(1);
  });

  it('continues a resumed run after the checkpoint position', () => {
    const t = new AckTracker({ initial: pos(99) });
    expect(t.safePosition()?.seq).toBe(99);
    readSingles(t, 100, 101);
    t.settled(101);
    expect(t.safePosition()?.seq).toBe(99);
    t.settled(100);
    expect(t.safePosition()?.seq).toBe(101);
    expect(() => t.read(pos(50))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('counts sequence gaps as done', () => {
    const t = new AckTracker();
    readSingles(t, 0, 0);
    readSingles(t, 5, 5);
    t.settled(5);
    t.settled(0);
    expect(t.safePosition()?.seq).toBe(5);
    readSingles(t, 1000, 1000); // gap with nothing in flight
    t.settled(1000);
    expect(t.safePosition()?.seq).toBe(1000);
  });

  it('refuses a settle without a matching produce', () => {
    const t = new AckTracker();
    readSingles(t, 0, 1);
    t.settled(0);
    expect(() => t.settled(1, 1)).not.toThrow();
    expect(() => t.settled(1, 1)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('stays bounded by the in-flight window over 1M records (window 10k, shuffled settles)', () => {
    const t = new AckTracker({ initialCapacity: 16 });
    const window = 10_000;
    const inFlight: number[] = [];
    const random = prng(12345);
    let maxCapacity = 0;
    for (let s = 0; s < 1_000_000; s++) {
      t.read(pos(s));
      if (s % 7 === 3) {
        t.consumed(s);
      } else {
        t.produced(s);
        inFlight.push(s);
      }
      t.closeBefore(s + 1);
      if (inFlight.length >= window) {
        // settle a random half of the in-flight items (swap-remove)
        for (let k = 0; k < window / 2; k++) {
          const i = Math.floor(random() * inFlight.length);
          const seq = inFlight[i]!;
          inFlight[i] = inFlight[inFlight.length - 1]!;
          inFlight.pop();
          t.settled(seq);
        }
      }
      maxCapacity = Math.max(maxCapacity, t.capacity);
    }
    for (const seq of inFlight) t.settled(seq);
    expect(t.safePosition()?.seq).toBe(999_999);
    expect(t.idle).toBe(true);
    // Random settles leave stragglers, so the window can exceed 10k, but it is bounded, not 1M.
    expect(maxCapacity).toBeLessThanOrEqual(262_144);
    expect(maxCapacity).toBeGreaterThanOrEqual(window);
  });

  it('holds no more than the window when settles are out of order within a 10k window', () => {
    const t = new AckTracker({ initialCapacity: 16 });
    const window = 10_000;
    let maxCapacity = 0;
    for (let s = 0; s < 1_000_000; s++) {
      t.read(pos(s));
      t.produced(s);
      t.closeBefore(s + 1);
      if ((s + 1) % window === 0) {
        // settle the last window in reverse order
        for (let k = s; k > s - window; k--) t.settled(k);
        expect(t.safePosition()?.seq).toBe(s);
      }
      maxCapacity = Math.max(maxCapacity, t.capacity);
    }
    expect(maxCapacity).toBe(16_384);
  });
});
