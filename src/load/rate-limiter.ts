import Bottleneck from 'bottleneck';
import type * as ioredis from 'ioredis';
import { ENDPOINTS, TIERS, type TierLimits } from '../core/endpoints.js';
import { EtlError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { silentLogger, type Logger } from '../core/logger.js';

const ioredisLib = lazyModule<typeof ioredis>('ioredis');

/**
 * Client-side pacing of Klaviyo requests, two reservoirs per endpoint key (`'POST /api/event-bulk-create-jobs'`).
 *
 * Klaviyo counts requests in fixed windows (burst: 1 s, steady: 60 s) whose alignment we cannot see, so the limiter
 * enforces the stricter sliding-window form of both, which holds for any alignment:
 * - steady: a reservoir of `steady` tokens; a request takes one when it starts and gives it back one window after it
 *   was counted (see below). So at most `steady` requests are counted in any window of that length.
 * - burst: a reservoir of `burst` tokens returned the same way. A burst may go out at once when the window allows it
 *   (even spacing would waste time on every request: 100 requests at 10/s took 10.9 s instead of 9.9 s).
 * Within one process the reservoirs are plain counters with a FIFO queue ({@link LocalWindows}): a returned token
 * starts the next request at once. Shared through Redis they are two chained bottleneck reservoirs
 * ({@link BottleneckWindows}), whose asynchronous hand-off takes ~3.5 ms.
 *
 * When does the server count a request? Somewhere between the moment we start sending it and the moment its response
 * arrives; a busy server may parse a request's headers late. So a token comes back one window plus `marginMs`
 * (2 ms, timer and clock granularity) after the request **ended** (answered or failed): the next request that takes
 * it is counted at least one window after this one, whatever the delays. A request still unanswered 250 ms after it
 * started gives its tokens back one window + 250 ms after its start, so slow responses do not starve the pipeline.
 * (Returning tokens one window + 20 ms after the start instead gave 429s on a busy emulator, whose count can come
 * later than 20 ms after the send.) Every 429 the server still answers widens the key's margin (doubled, at least
 * 250 ms, at most 1 s): another client uses the same account, or the server counts differently.
 */

/** Steady-window facts read off a response (`RateLimit-Remaining`, `RateLimit-Reset`). */
export interface RateLimitObservation {
  /** Requests the server says remain in its current steady window. */
  remaining?: number;
  /** Seconds until the server's steady window resets. */
  resetSeconds?: number;
}

export interface RateLimiterOptions {
  /** Per-endpoint-key tier overrides (the pipeline's `destination.rateLimits`). Keys not listed use ENDPOINTS. */
  tiers?: Record<string, TierLimits>;
  /** Multiplies every allowance (e.g. the emulator's `--limits <factor>`). @default 1 */
  scale?: number;
  /** Initial safety margin added to both windows after a request ended, in ms; it grows per key on 429s. @default 2 */
  marginMs?: number;
  /** Length of the burst window in ms (tests shorten it). @default 1000 */
  burstWindowMs?: number;
  /** Length of the steady window in ms (tests shorten it). @default 60000 */
  steadyWindowMs?: number;
  /**
   * Share limits between processes through Redis (bottleneck clustering). Every process using the same `url` and
   * `prefix` shares one allowance per endpoint key.
   */
  redis?: { url: string; /** Key prefix. @default 'klaviyo-etl' */ prefix?: string };
  logger?: Logger;
}

/** Tier used for an endpoint key that is neither in ENDPOINTS nor overridden. */
const FALLBACK_TIER: TierLimits = TIERS.M;

const MIN_MARGIN_AFTER_429_MS = 250;
/** A request unanswered this long after its start returns its tokens one window + this after its start. */
const LATE_RESPONSE_MS = 250;
const MAX_MARGIN_MS = 1000;

/** The steady and burst reservoirs of one endpoint key. */
interface Windows {
  /** Resolves once a steady and a burst token are taken (FIFO). */
  take(): Promise<void>;
  /** Give tokens back to the steady reservoir (negative: take them away). */
  addSteady(n: number): Promise<unknown>;
  /** Give tokens back to the burst reservoir. */
  addBurst(n: number): Promise<unknown>;
  /** Steady tokens left (null: unknown). */
  steadyLeft(): Promise<number | null>;
  disconnect(): Promise<void>;
}

/** Two bottleneck reservoirs (steady chained into burst), shared between processes through Redis. */
class BottleneckWindows implements Windows {
  readonly #steady: Bottleneck;
  readonly #burst: Bottleneck;

  constructor(steady: Bottleneck, burst: Bottleneck) {
    this.#steady = steady;
    this.#burst = burst;
    // A job takes a steady token, then waits for a burst token.
    steady.chain(burst);
  }

  async take(): Promise<void> {
    await this.#steady.schedule(() => Promise.resolve());
  }

  addSteady(n: number): Promise<unknown> {
    return this.#steady.incrementReservoir(n);
  }

  addBurst(n: number): Promise<unknown> {
    return this.#burst.incrementReservoir(n);
  }

  steadyLeft(): Promise<number | null> {
    return this.#steady.currentReservoir();
  }

  async disconnect(): Promise<void> {
    await Promise.all([this.#steady, this.#burst].map((l) => Promise.resolve().then(() => l.disconnect(false)).catch(() => undefined)));
  }
}

/**
 * The same reservoirs within one process: counters and a FIFO queue of waiting requests. A request starts when both
 * reservoirs have a token; a returned token starts the first waiting request synchronously.
 */
class LocalWindows implements Windows {
  #steady: number;
  #burst: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limits: TierLimits) {
    this.#steady = limits.steady;
    this.#burst = limits.burst;
  }

  take(): Promise<void> {
    if (this.#waiting.length === 0 && this.#steady > 0 && this.#burst > 0) {
      this.#steady--;
      this.#burst--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  addSteady(n: number): Promise<unknown> {
    this.#steady += n;
    this.#drain();
    return Promise.resolve();
  }

  addBurst(n: number): Promise<unknown> {
    this.#burst += n;
    this.#drain();
    return Promise.resolve();
  }

  steadyLeft(): Promise<number | null> {
    return Promise.resolve(this.#steady);
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  #drain(): void {
    while (this.#waiting.length > 0 && this.#steady > 0 && this.#burst > 0) {
      this.#steady--;
      this.#burst--;
      this.#waiting.shift()!();
    }
  }
}

interface KeyState {
  /** Safety margin of this key's windows (grows on 429s). */
  marginMs: number;
  windows: Windows;
  limits: TierLimits;
  pausedUntil: number;
}

export class RateLimiter {
  readonly #tiers: Record<string, TierLimits>;
  readonly #scale: number;
  readonly #marginMs: number;
  readonly #burstWindowMs: number;
  readonly #steadyWindowMs: number;
  readonly #logger: Logger;
  readonly #keys = new Map<string, KeyState>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Steady and burst tokens taken and not yet given back, per key (returned on close in cluster mode). */
  readonly #outstanding = new Map<string, { steady: number; burst: number }>();
  readonly #redisPrefix: string | undefined;
  #connection: Bottleneck.IORedisConnection | undefined;
  /** Burst tokens not yet returned (cluster mode): close() waits for them. */
  readonly #burstReturns = new Set<Promise<void>>();
  #closed = false;

  constructor(options: RateLimiterOptions = {}) {
    const scale = options.scale ?? 1;
    if (!(scale > 0) || !Number.isFinite(scale)) {
      throw new EtlError('USAGE', `Expected \`scale\` to be a positive number, got \`${String(options.scale)}\``);
    }
    this.#scale = scale;
    this.#tiers = { ...(options.tiers ?? {}) };
    this.#marginMs = options.marginMs ?? 2;
    this.#burstWindowMs = options.burstWindowMs ?? 1000;
    this.#steadyWindowMs = options.steadyWindowMs ?? 60_000;
    this.#logger = options.logger ?? silentLogger;
    if (options.redis) {
      this.#redisPrefix = options.redis.prefix ?? 'klaviyo-etl';
      const { Redis } = ioredisLib();
      const client = new Redis(options.redis.url, { lazyConnect: false, maxRetriesPerRequest: 3 });
      this.#connection = new Bottleneck.IORedisConnection({ client, Redis } as ConstructorParameters<
        typeof Bottleneck.IORedisConnection
      >[0]);
      this.#connection.on('error', (error: Error) => this.#logger.error('rate limiter redis error', { error: error.message }));
    }
  }

  /** The effective (scaled) limits of an endpoint key. */
  limits(key: string): TierLimits {
    const base = this.#tiers[key] ?? (ENDPOINTS as Record<string, TierLimits>)[key] ?? FALLBACK_TIER;
    return {
      burst: Math.max(1, Math.floor(base.burst * this.#scale)),
      steady: Math.max(1, Math.floor(base.steady * this.#scale)),
    };
  }

  /** Run `fn` when the endpoint's windows allow one more request. Waiting holds no connection. */
  async schedule<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const state = this.#state(key);
    for (;;) {
      if (this.#closed) throw new EtlError('INTERNAL', 'rate limiter is closed');
      const wait = state.pausedUntil - Date.now();
      if (wait > 0) await sleep(wait);
      await state.windows.take();
      if (Date.now() < state.pausedUntil) {
        // Paused while queued: give the tokens back and queue again after the pause.
        await state.windows.addSteady(1);
        await state.windows.addBurst(1);
        continue;
      }
      const ended = this.#holdToken(key, state);
      try {
        return await fn();
      } finally {
        ended();
      }
    }
  }

  /**
   * Lower our allowance when the server says fewer requests remain in its steady window than we think (another
   * process or tool uses the same account). The deficit is given back when the server's window resets.
   */
  async observe(key: string, observation: RateLimitObservation): Promise<void> {
    const { remaining, resetSeconds } = observation;
    if (remaining === undefined || !Number.isFinite(remaining) || this.#closed) return;
    const state = this.#state(key);
    const current = await state.windows.steadyLeft();
    if (current === null || remaining >= current) return;
    const deficit = current - Math.max(0, remaining);
    await state.windows.addSteady(-deficit);
    const resetMs = Math.min(this.#steadyWindowMs, Math.max(0, (resetSeconds ?? this.#steadyWindowMs / 1000) * 1000));
    this.#logger.debug('rate limiter lowered by server headers', { endpoint: key, remaining, deficit });
    this.#later(resetMs + state.marginMs, () => state.windows.addSteady(deficit));
  }

  /**
   * Stop starting requests for `key` for `ms` milliseconds (a 429's Retry-After), and widen the key's safety margin:
   * the server counted more than we thought, so jitter is larger than the margin allowed for.
   */
  pause(key: string, ms: number): void {
    const state = this.#state(key);
    state.pausedUntil = Math.max(state.pausedUntil, Date.now() + ms);
    state.marginMs = Math.min(MAX_MARGIN_MS, Math.max(state.marginMs * 2, MIN_MARGIN_AFTER_429_MS));
  }

  /** The current safety margin of an endpoint key (ms). */
  marginMs(key: string): number {
    return this.#state(key).marginMs;
  }

  /**
   * Clear timers and disconnect Redis clients. Outstanding tokens are returned (cluster mode) so none leak: burst
   * tokens when their window ends (close waits for that, at most one burst window, so another process cannot go
   * over a burst window this one used), steady tokens at once (waiting a whole steady window at exit is too long; at
   * worst another process goes over one steady window and waits out a 429's Retry-After).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#connection) {
      while (this.#burstReturns.size > 0) await Promise.all([...this.#burstReturns]);
    }
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#connection) {
      for (const [key, count] of this.#outstanding) {
        const state = this.#keys.get(key);
        if (state && count.steady > 0) await state.windows.addSteady(count.steady).catch(() => undefined);
        if (state && count.burst > 0) await state.windows.addBurst(count.burst).catch(() => undefined);
      }
    }
    await Promise.all([...this.#keys.values()].map((s) => s.windows.disconnect()));
    if (this.#connection) await Promise.resolve().then(() => this.#connection!.disconnect(true)).catch(() => undefined);
    this.#keys.clear();
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (state) return state;
    const limits = this.limits(key);
    const connection = this.#connection;
    let windows: Windows;
    if (connection) {
      const make = (reservoir: number, id: string): Bottleneck => {
        const limiter = new Bottleneck({
          reservoir,
          id,
          datastore: 'ioredis',
          connection,
          clearDatastore: false,
          // Idle keys expire so tokens lost by a crashed process come back eventually.
          timeout: Math.max(5 * this.#steadyWindowMs, 60_000),
        });
        limiter.on('error', (error: unknown) =>
          this.#logger.error('rate limiter error', { endpoint: key, error: error instanceof Error ? error.message : String(error) }),
        );
        return limiter;
      };
      const id = `${this.#redisPrefix}:${key}:${limits.burst}/${limits.steady}`;
      windows = new BottleneckWindows(make(limits.steady, id), make(limits.burst, `${id}:burst`));
    } else windows = new LocalWindows(limits);
    state = { windows, limits, pausedUntil: 0, marginMs: this.#marginMs };
    this.#keys.set(key, state);
    return state;
  }

  /**
   * Take a request's tokens: each comes back one window + margin after the request ended (call the returned function
   * then), or one window + LATE_RESPONSE_MS after its start if that is sooner.
   */
  #holdToken(key: string, state: KeyState): () => void {
    let count = this.#outstanding.get(key);
    if (!count) this.#outstanding.set(key, (count = { steady: 0, burst: 0 }));
    const held = count;
    held.steady++;
    held.burst++;
    const burst = this.#later(this.#burstWindowMs + LATE_RESPONSE_MS, async () => {
      held.burst--;
      await state.windows.addBurst(1);
    });
    if (this.#connection) {
      this.#burstReturns.add(burst.done);
      void burst.done.finally(() => this.#burstReturns.delete(burst.done));
    }
    const steady = this.#later(this.#steadyWindowMs + LATE_RESPONSE_MS, async () => {
      held.steady--;
      await state.windows.addSteady(1);
    });
    return () => {
      const now = Date.now();
      burst.sooner(now + this.#burstWindowMs + state.marginMs);
      steady.sooner(now + this.#steadyWindowMs + state.marginMs);
    };
  }

  /**
   * Run `fn` after `ms` (unless closed by then). `done` settles when it has run or was cancelled; `sooner(at)` moves
   * the run earlier, to the epoch-ms time `at` (never later).
   */
  #later(ms: number, fn: () => Promise<unknown>): { done: Promise<void>; sooner(at: number): void } {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    let due = Date.now() + ms;
    let fired = false;
    const fire = (): void => {
      fired = true;
      this.#timers.delete(timer);
      if (this.#closed) return resolve();
      fn()
        .catch((error: unknown) =>
          this.#logger.error('rate limiter error', { error: error instanceof Error ? error.message : String(error) }),
        )
        .finally(() => resolve());
    };
    // Not unref'd: when every request waits for a token, this timer is what keeps the process alive. close() clears it.
    let timer = setTimeout(fire, ms);
    this.#timers.add(timer);
    return {
      done,
      sooner: (at) => {
        if (fired || this.#closed || at >= due) return;
        due = at;
        clearTimeout(timer);
        this.#timers.delete(timer);
        timer = setTimeout(fire, Math.max(0, at - Date.now()));
        this.#timers.add(timer);
      },
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
