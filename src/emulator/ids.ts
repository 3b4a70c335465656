/** Identifier generators: Klaviyo-style ULIDs (26 chars Crockford base32) and 6-char list/metric ids. */
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALNUM = 'ABCDEFGHIJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** Buffered random bytes so id generation stays cheap at tens of thousands of ids per second. */
export class IdGenerator {
  #pool = Buffer.alloc(0);
  #pos = 0;
  #lastTime = -1;
  #lastRandom: number[] = [];

  #byte(): number {
    if (this.#pos >= this.#pool.length) {
      this.#pool = randomBytes(8192);
      this.#pos = 0;
    }
    return this.#pool[this.#pos++]!;
  }

  /** A monotonic ULID for time `ms` (ids created later sort after ids created earlier). */
  ulid(ms: number): string {
    let time = Math.max(0, Math.floor(ms));
    let t = '';
    if (time <= this.#lastTime) {
      time = this.#lastTime;
      // increment the random part (base 32 digits, least significant last)
      const r = this.#lastRandom;
      let i = r.length - 1;
      while (i >= 0) {
        r[i]! += 1;
        if (r[i]! < 32) break;
        r[i] = 0;
        i--;
      }
    } else {
      this.#lastTime = time;
      this.#lastRandom = [];
      for (let i = 0; i < 16; i++) this.#lastRandom.push(this.#byte() & 31);
      // keep headroom so increments do not overflow
      this.#lastRandom[0] = this.#lastRandom[0]! & 15;
    }
    let x = time;
    for (let i = 0; i < 10; i++) {
      t = CROCKFORD[x % 32]! + t;
      x = Math.floor(x / 32);
    }
    let r = '';
    for (const d of this.#lastRandom) r += CROCKFORD[d]!;
    return t + r;
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
