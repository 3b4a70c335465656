/** Identifier generators: Klaviyo-style ULIDs (26 chars Crockford base32) and 6-char list/metric ids. */
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALNUM = 'ABCDEFGHIJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
/** The low 10 base-32 digits of the random part (50 bits, exact in a double). */
const LO_SPAN = 2 ** 50;
/** Ids per block before a new one starts (keeps offsets small integers). */
const BLOCK_SPAN = 2 ** 30;

/** `n` (a non-negative integer) as `digits` Crockford base-32 digits, most significant first. */
function base32(n: number, digits: number): string {
  let s = '';
  for (let i = digits - 1; i >= 0; i--) {
    const p = 32 ** i;
    const d = Math.floor(n / p);
    s += CROCKFORD[d]!;
    n -= d * p;
  }
  return s;
}

/**
 * A run of consecutive ULIDs that share their time and high random digits: id `k` of the block is
 * `prefix + base32(lo + k)`. Stored records can keep `(block, k)` and format their id only when it is read.
 */
export class UlidBlock {
  /** 10 time digits + the 6 high random digits. */
  readonly prefix: string;
  /** The low 50 random bits of id 0. */
  readonly lo: number;
  /** Ids handed out so far (the last one is `size - 1`). */
  size = 0;

  constructor(prefix: string, lo: number) {
    this.prefix = prefix;
    this.lo = lo;
  }

  /** Id `k` of this block as a 26-character ULID. */
  format(k: number): string {
    return this.prefix + base32(this.lo + k, 10);
  }
}

/** Buffered random bytes so id generation stays cheap at tens of thousands of ids per second. */
export class IdGenerator {
  #pool = Buffer.alloc(0);
  #pos = 0;
  #lastTime = -1;
  /** The 6 high random digits (30 bits; the top bit stays 0 so increments never overflow 80 bits). */
  #hi = 0;
  #block: UlidBlock | null = null;

  #byte(): number {
    if (this.#pos >= this.#pool.length) {
      this.#pool = randomBytes(8192);
      this.#pos = 0;
    }
    return this.#pool[this.#pos++]!;
  }

  #random(bits: number): number {
    let n = 0;
    for (let b = 0; b < bits; b += 8) n = n * 256 + this.#byte();
    return n % 2 ** bits;
  }

  #open(lo: number): UlidBlock {
    this.#block = new UlidBlock(base32(this.#lastTime, 10) + base32(this.#hi, 6), lo);
    return this.#block;
  }

  /**
   * Reserve the next monotonic ULID for time `ms` without formatting it: the id is `block.format(block.size - 1)`
   * of the returned block. A time at or before the last one keeps the last time and increments the random part
   * (ids created later sort after ids created earlier).
   */
  reserve(ms: number): UlidBlock {
    const time = Math.max(0, Math.floor(ms));
    let block = this.#block;
    if (block === null || time > this.#lastTime) {
      this.#lastTime = time;
      this.#hi = this.#random(29);
      block = this.#open(this.#random(49));
    } else if (block.size >= BLOCK_SPAN || block.lo + block.size >= LO_SPAN) {
      // continue the increment in a new block: carry into the high digits when the low ones are exhausted
      let lo = block.lo + block.size;
      if (lo >= LO_SPAN) {
        lo -= LO_SPAN;
        this.#hi++;
      }
      block = this.#open(lo);
    }
    block.size++;
    return block;
  }

  /** A monotonic ULID for time `ms` (ids created later sort after ids created earlier). */
  ulid(ms: number): string {
    const block = this.reserve(ms);
    return block.format(block.size - 1);
  }

  /** A 6-character alphanumeric id like Klaviyo's list and metric ids (`Y6nRLr`). */
  shortId(): string {
    let s = '';
    for (let i = 0; i < 6; i++) s += ALNUM[this.#byte() % ALNUM.length]!;
    return s;
  }
}

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** mulberry32: a tiny seeded PRNG, so fault injection is reproducible from a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ULID for time `ms` whose random part is drawn from `rand` (for generators that must be deterministic). */
export function seededUlid(ms: number, rand: () => number): string {
  const bits25 = () => Math.floor(rand() * 2 ** 25);
  return base32(Math.max(0, Math.floor(ms)), 10) + base32(Math.floor(rand() * 2 ** 30), 6) + base32(bits25() * 2 ** 25 + bits25(), 10);
}

/** A 6-character id like `IdGenerator#shortId`, drawn from `rand`. */
export function seededShortId(rand: () => number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += ALNUM[Math.floor(rand() * ALNUM.length)]!;
  return s;
}
