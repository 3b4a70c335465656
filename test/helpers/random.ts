/**
 * The tests' one seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so a test that
 * draws random inputs is reproducible and a failure can be replayed from its seed. Not for anything secret.
 */

/** A seeded generator: call it for a float in [0, 1); `int(n)` for an integer in [0, n); `pick(items)` for an item. */
export interface Random {
  (): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** One of `items` (not empty). */
  pick<T>(items: readonly T[]): T;
}

/** A generator seeded with `seed` (any integer; taken modulo 2^32). */
export function prng(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return Object.assign(next, { int, pick: <T>(items: readonly T[]): T => items[int(items.length)]! });
}
