import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { EtlError } from '../core/errors.js';

/**
 * Accumulates entries into batches bounded by count and serialized bytes, and sends them with a bounded number in
 * flight. `add` resolves only once the entry is accepted: when `concurrency` batches are in flight and the open
 * batch is full, it waits for one to finish, so memory is bounded by (concurrency + 1) batches whatever the input.
 */
export interface BatcherOptions<T> {
  /** Most entries per batch. */
  maxItems: number;
  /** Most bytes per request body, envelope included. */
  maxBytes: number;
  /** Bytes of the request body without any entry (the JSON:API envelope). */
  envelopeBytes: number;
  /** Largest serialized entry accepted alone. @default maxBytes - envelopeBytes */
  maxItemBytes?: number;
  /** Batches in flight at once. */
  concurrency: number;
  /** Serialized size of one entry in bytes (a separator byte is added per entry). */
  sizeOf(entry: T): number;
  /**
   * An entry added with a key (`add(entry, key)`) already in the open batch: entries with the same key never share a
   * batch, so it starts the next one.
   */
  onDuplicateKey?(entry: T, key: string): void;
  /** Entries of different groups never share a batch (e.g. subscription list id). */
  groupOf?(entry: T): string;
  /** Send one batch. A rejection is a run error: later `add`/`close` calls throw it. */
  send(batch: T[]): Promise<void>;
  /** An entry larger than `maxItemBytes`: it is not batched. */
  onTooLarge(entry: T, bytes: number): void;
  /**
   * Send a non-empty open batch once its first entry has waited this long. A sparse source (most rows rejected or
   * skipped, a slow query) must not hold a batch open indefinitely: until it is sent, the checkpoint cannot pass its
   * first item and the runner keeps the position of every record read since. 0 disables. @default 2000
   */
  maxWaitMs?: number;
  /** Time for `maxWaitMs`. @default systemClock */
  clock?: Clock;
}

export class Batcher<T> {
  readonly #options: BatcherOptions<T>;
  readonly #maxItemBytes: number;
  #batch: T[] = [];
  #bytes = 0;
  #keys = new Set<string>();
  #group: string | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #error: unknown;
  #closed = false;
  readonly #clock: Clock;
  #lingerTimer: TimerHandle | undefined;

  constructor(options: BatcherOptions<T>) {
    for (const name of ['maxItems', 'maxBytes', 'concurrency'] as const) {
      const value = options[name];
      if (!Number.isInteger(value) || value < 1) {
        throw new EtlError('USAGE', `Expected \`${name}\` to be a positive integer, got \`${String(value)}\``);
      }
    }
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#maxItemBytes = options.maxItemBytes ?? options.maxBytes - options.envelopeBytes - 1;
  }

  /** Batches currently being sent. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Add one entry; resolves once it is accepted into the open batch (may wait for a free in-flight slot). Entries
   * added with the same `key` never share a batch (events Klaviyo would refuse together).
   */
  add(entry: T, key?: string): Promise<void> {
    return this.tryAdd(entry, key) ?? Promise.resolve();
  }

  /**
   * {@link add} for hot loops: returns nothing when the entry went straight into the open batch, else a promise that
   * resolves once it is accepted. Skipping the await when nothing is returned saves a promise per entry.
   */
  tryAdd(entry: T, key?: string): Promise<void> | undefined {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new EtlError('INTERNAL', 'batcher is closed'));
    const bytes = this.#options.sizeOf(entry) + 1;
    if (bytes - 1 > this.#maxItemBytes) {
      this.#options.onTooLarge(entry, bytes - 1);
      return undefined;
    }
    const group = this.#options.groupOf?.(entry);
    const duplicate = key !== undefined && this.#keys.has(key);
    if (duplicate) this.#options.onDuplicateKey?.(entry, key);
    const full =
      this.#batch.length >= this.#options.maxItems ||
      this.#options.envelopeBytes + this.#bytes + bytes > this.#options.maxBytes ||
      duplicate ||
      (this.#batch.length > 0 && group !== this.#group);
    if (full) return this.#dispatch().then(() => this.#accept(entry, bytes, key, group));
    return this.#accept(entry, bytes, key, group);
  }

  #accept(entry: T, bytes: number, key: string | undefined, group: string | undefined): Promise<void> | undefined {
    this.#batch.push(entry);
    if (this.#batch.length === 1) this.#armLinger();
    this.#bytes += bytes;
    this.#group = group;
    if (key !== undefined) this.#keys.add(key);
    if (this.#batch.length >= this.#options.maxItems) return this.#dispatch();
    return undefined;
  }

  /** Send the open batch now (waiting for a slot), without waiting for it to finish. */
  async flush(): Promise<void> {
    this.#throwIfFailed();
    await this.#dispatch();
  }

  /** Send the open batch and wait for every batch in flight; throws the first send failure. */
  async close(): Promise<void> {
    if (!this.#closed) {
      if (this.#error === undefined) await this.#dispatch().catch(() => undefined);
      this.#closed = true;
    }
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#throwIfFailed();
  }

  #armLinger(): void {
    const ms = this.#options.maxWaitMs ?? 2000;
    if (ms <= 0 || this.#lingerTimer !== undefined) return;
    this.#lingerTimer = this.#clock.setTimeout(() => {
      this.#lingerTimer = undefined;
      if (this.#closed || this.#error !== undefined || this.#batch.length === 0) return;
      // Only when a slot is free: the timer must not make anyone wait; otherwise try again later.
      if (this.#inFlight.size < this.#options.concurrency) void this.#dispatch().catch(() => undefined);
      else this.#armLinger();
    }, ms);
    // a pending linger must not keep the process alive (a clock of tests may hand out plain ids)
    this.#lingerTimer.unref?.();
  }

  async #dispatch(): Promise<void> {
    if (this.#lingerTimer !== undefined) {
      this.#clock.clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#bytes = 0;
    this.#keys = new Set();
    this.#group = undefined;
    while (this.#inFlight.size >= this.#options.concurrency) await Promise.race(this.#inFlight);
    this.#throwIfFailed();
    const sending: Promise<void> = this.#options.send(batch).then(
      () => {
        this.#inFlight.delete(sending);
      },
      (error: unknown) => {
        this.#inFlight.delete(sending);
        this.#error ??= error;
      },
    );
    this.#inFlight.add(sending);
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }
}
