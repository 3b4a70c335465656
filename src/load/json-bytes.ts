/**
 * JSON straight into UTF-8 bytes: the same text as `JSON.stringify`, written into a Buffer without building the
 * intermediate strings. The event loader serializes every event with it; building each event's JSON as a string first
 * (then encoding it) allocated about 1.8 KB of short-lived strings per event, a third of what the CLI allocated.
 *
 * Plain data is written by hand: strings (escaped exactly as `JSON.stringify` escapes them, lone surrogates included),
 * finite numbers, booleans, null, arrays and plain objects (own enumerable string keys, in `Object.keys` order; values
 * that are `undefined`, functions or symbols are skipped in objects and written as `null` in arrays). Anything else
 * (an object with `toJSON` such as a Date, a class instance, a boxed primitive, a bigint, nesting deeper than 64
 * levels) goes through `JSON.stringify` itself, so the output, and the errors (a cycle, a bigint), stay the same.
 */

const HEX = '0123456789abcdef';
const MAX_DEPTH = 64;

/** `\"`, `\\` and the short escapes of control characters, by code; 0 where a character needs no short escape. */
const SHORT_ESCAPE = new Uint8Array(128);
SHORT_ESCAPE[0x22] = 0x22; // \"
SHORT_ESCAPE[0x5c] = 0x5c; // \\
SHORT_ESCAPE[0x08] = 0x62; // \b
SHORT_ESCAPE[0x0c] = 0x66; // \f
SHORT_ESCAPE[0x0a] = 0x6e; // \n
SHORT_ESCAPE[0x0d] = 0x72; // \r
SHORT_ESCAPE[0x09] = 0x74; // \t

/** Smallest chunk a writer allocates. */
const MIN_CHUNK = 1 << 20;

/**
 * Appends JSON as UTF-8 into chunks of at least 1 MiB. A value is written contiguously: `begin()` marks its start,
 * `end()` returns nothing and leaves the bytes of the value in `chunk[start, pos)`. When a chunk fills up in the
 * middle of a value, the value's bytes so far move to a new, larger chunk. A chunk is freed by the garbage collector
 * once nothing points into it.
 */
export class JsonBytesWriter {
  chunk: Buffer;
  /** Start of the value being written (set by `begin`). */
  start = 0;
  /** Next byte to write. */
  pos = 0;

  constructor(chunkBytes = MIN_CHUNK) {
    this.chunk = Buffer.allocUnsafeSlow(Math.max(64, chunkBytes));
  }

  /** Start a new value at the current position. */
  begin(): void {
    this.start = this.pos;
  }

  /** Room for `n` more bytes of the current value. */
  #room(n: number): void {
    if (this.pos + n <= this.chunk.length) return;
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(MIN_CHUNK, (used + n) * 2));
    this.chunk.copy(next, 0, this.start, this.pos);
    this.chunk = next;
    this.start = 0;
    this.pos = used;
  }

  /** Bytes as they are (pre-encoded JSON punctuation, keys). */
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.#room(n);
    const chunk = this.chunk;
    let p = this.pos;
    if (n > 64) {
      chunk.set(b, p);
      p += n;
    } else for (let i = 0; i < n; i++) chunk[p++] = b[i]!;
    this.pos = p;
  }

  /** ASCII text known to need no escaping (numbers, literals). */
  #ascii(s: string): void {
    const n = s.length;
    this.#room(n);
    const chunk = this.chunk;
    let p = this.pos;
    for (let i = 0; i < n; i++) chunk[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A JSON string literal, escaped as `JSON.stringify` does. */
  string(s: string): void {
    const n = s.length;
    // worst case: every unit a 6-byte \uXXXX escape, plus the quotes
    this.#room(n * 6 + 2);
    const chunk = this.chunk;
    let p = this.pos;
    chunk[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
          chunk[p++] = c;
          continue;
        }
        const short = SHORT_ESCAPE[c]!;
        chunk[p++] = 0x5c;
        if (short !== 0) chunk[p++] = short;
        else {
          chunk[p++] = 0x75; // u00XX
          chunk[p++] = 0x30;
          chunk[p++] = 0x30;
          chunk[p++] = HEX.charCodeAt(c >> 4);
          chunk[p++] = HEX.charCodeAt(c & 15);
        }
      } else if (c < 0x800) {
        chunk[p++] = 0xc0 | (c >> 6);
        chunk[p++] = 0x80 | (c & 63);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          chunk[p++] = 0xf0 | (c >> 18);
          chunk[p++] = 0x80 | ((c >> 12) & 63);
          chunk[p++] = 0x80 | ((c >> 6) & 63);
          chunk[p++] = 0x80 | (c & 63);
        } else {
          // a lone surrogate: \udXXX, as JSON.stringify writes it
          chunk[p++] = 0x5c;
          chunk[p++] = 0x75;
          chunk[p++] = HEX.charCodeAt(c >> 12);
          chunk[p++] = HEX.charCodeAt((c >> 8) & 15);
          chunk[p++] = HEX.charCodeAt((c >> 4) & 15);
          chunk[p++] = HEX.charCodeAt(c & 15);
        }
      } else {
        chunk[p++] = 0xe0 | (c >> 12);
        chunk[p++] = 0x80 | ((c >> 6) & 63);
        chunk[p++] = 0x80 | (c & 63);
      }
    }
    chunk[p++] = 0x22;
    this.pos = p;
  }

  /** Any value as `JSON.stringify(value)` writes it; false when it writes nothing (undefined, a function, a symbol). */
  value(v: unknown, depth = 0): boolean {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return true;
      case 'number':
        this.#ascii(Number.isFinite(v) ? String(v) : 'null');
        return true;
      case 'boolean':
        this.#ascii(v ? 'true' : 'false');
        return true;
      case 'undefined':
      case 'function':
      case 'symbol':
        return false;
      case 'object':
        if (v === null) {
          this.#ascii('null');
          return true;
        }
        if (depth < MAX_DEPTH) {
          if (Array.isArray(v)) {
            this.#array(v, depth + 1);
            return true;
          }
          const proto = Object.getPrototypeOf(v) as unknown;
          if ((proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
            this.#object(v as Record<string, unknown>, depth + 1);
            return true;
          }
        }
        return this.#stringified(v);
      default:
        return this.#stringified(v); // bigint: JSON.stringify throws its TypeError
    }
  }

  #array(a: readonly unknown[], depth: number): void {
    this.#room(1);
    this.chunk[this.pos++] = 0x5b;
    for (let i = 0; i < a.length; i++) {
      if (i > 0) {
        this.#room(1);
        this.chunk[this.pos++] = 0x2c;
      }
      if (!this.value(a[i], depth)) this.#ascii('null');
    }
    this.#room(1);
    this.chunk[this.pos++] = 0x5d;
  }

  #object(o: Record<string, unknown>, depth: number): void {
    this.#room(1);
    this.chunk[this.pos++] = 0x7b;
    let first = true;
    // for-in, not Object.keys (no array per object): on a plain object (Object.prototype, whose own properties are
    // not enumerable, or no prototype) it visits the own enumerable string keys in the same order
    for (const k in o) {
      const v = o[k];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      // relative to the value's start: a chunk change moves the value but keeps it contiguous
      const mark = this.pos - this.start;
      if (!first) {
        this.#room(1);
        this.chunk[this.pos++] = 0x2c;
      }
      this.string(k);
      this.#room(1);
      this.chunk[this.pos++] = 0x3a;
      if (this.value(v, depth)) first = false;
      else this.pos = this.start + mark; // a toJSON() that returned undefined: JSON.stringify leaves the key out
    }
    this.#room(1);
    this.chunk[this.pos++] = 0x7d;
  }

  /** The fallback: `JSON.stringify(v)`, then its UTF-8 bytes. */
  #stringified(v: unknown): boolean {
    const text = JSON.stringify(v) as string | undefined;
    if (text === undefined) return false;
    const n = Buffer.byteLength(text);
    this.#room(n);
    this.pos += this.chunk.write(text, this.pos);
    return true;
  }
}
