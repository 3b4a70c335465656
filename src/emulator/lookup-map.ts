/**
 * A Map whose keys can also be answered by a function: generated accounts hold a million profiles whose ids, emails,
 * phone numbers and external ids can be computed back to a position (src/emulator/generate.ts), so the identity
 * indexes need no entry per generated profile. Keys set here win; `size` counts the computed entries.
 */
export class LookupMap<V> extends Map<string, V> {
  #fallback: ((key: string) => V | undefined) | null = null;
  #computed = 0;

  /** Answer keys not set here with `fallback` (it must answer only keys that currently belong); `count` of them. */
  setFallback(fallback: (key: string) => V | undefined, count: number): void {
    this.#fallback = fallback;
    this.#computed = count;
  }

  override get(key: string): V | undefined {
    const v = super.get(key);
    return v !== undefined || this.#fallback === null ? v : this.#fallback(key);
  }

  override has(key: string): boolean {
    return super.has(key) || (this.#fallback !== null && this.#fallback(key) !== undefined);
  }

  override get size(): number {
    return super.size + this.#computed;
  }
}
