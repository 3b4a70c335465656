import Bottleneck from 'bottleneck';
import type * as ioredis from 'ioredis';
import { pacingLimits, TIERS, type TierLimits } from './endpoints.js';
import { sleep, systemClock, type Clock, type TimerHandle } from '../core/clock.js';
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
 * ({@link BottleneckWindows}), whose asynchronous hand-off takes ~3.5 ms. Tokens on their way back wait in a min-heap of
 * due times per reservoir with one timer ({@link TokenReturns}), not a timer per request.
 *
 * When does the server count a request? Somewhere between the moment we start sending it and the moment its response
 * arrives; a busy server may parse a request's headers late. So a token comes back one window plus `marginMs`
 * (2 ms, timer and clock granularity) after the request **ended** (answered or failed): the next request that takes
 * it is counted at least one window after this one, whatever the delays. A request still unanswered 250 ms after it
 * started gives its tokens back one window + 250 ms after its start, so slow responses do not starve the pipeline.
 * (Returning tokens one window + 20 ms after the start instead gave 429s on a busy emulator, whose count can come
 * later than 20 ms after the send.) Every 429 the server still answers widens the key's margin (doubled, at least
 * 250 ms, at most 1 s): another client uses the same account, or the server counts differently.
 *
 * Windows of the clock. Klaviyo documents fixed windows, not where they start. When the answers' `RateLimit-Reset`
 * agrees with windows at the clock's whole minutes (the emulator's are; so are windows of `floor(time / length)` on a
 * server whose clock agrees with ours), the key is paced at the clock's windows: a request was counted by the time it
 * ended, so its tokens are free when the clock's burst (steady) window holding that moment ends, plus the margin. A
 * window's burst then goes out as the window opens, instead of one window + one latency (or its spread) after the
 * previous one: 10 requests per second at 10/s whatever the latency. The first answer that disagrees, or any 429,
 * ends it for the key (back to the sliding form above).
 */

/** Steady-window facts read off a response (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`). */
export interface RateLimitObservation {
  /** The account's steady allowance for the endpoint, as the server states it. */
  limit?: number;
  /** Requests the server says remain in its current steady window. */
  remaining?: number;
  /** Seconds until the server's steady window resets (whole seconds, rounded up). */
  resetSeconds?: number;
  /** When the answered request was started (clock ms): bounds when the window ends from below. */
  sentAt?: number;
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
  /** Time and timers (tests pass a fake one). @default systemClock */
  clock?: Clock;
  /**
   * The allowances stated in `tiers` (for the keys listed) and `scale` (for every key) are the account's own (a
   * pipeline's `rateLimits`, the emulator's `--limits` factor): such a key's first request does not go alone.
   * connectKlaviyo sets it. @default false
   */
  trustStated?: boolean;
}

/** Tier used for an endpoint key that is neither in ENDPOINTS nor overridden. */
const FALLBACK_TIER: TierLimits = TIERS.M;

const MIN_MARGIN_AFTER_429_MS = 250;
/** A request unanswered this long after its start returns its tokens one window + this after its start. */
const LATE_RESPONSE_MS = 250;
const MAX_MARGIN_MS = 1000;
/** Answers a key needs before the spread of their latencies is trusted (until then: one window after the answer). */
const MIN_LATENCY_SAMPLES = 4;
/** Latencies kept per key to measure their spread. */
const LATENCY_SAMPLES = 32;
/** A burst allowance lowered by a 429 grows back by one request per this many burst windows without one. */
const BURST_RECOVERY_WINDOWS = 10;
/**
 * How far our clock may be from the server's for its windows to count as ours (ms): the request's start and answer
 * are widened by this when checking a `RateLimit-Reset` against the clock's whole minutes.
 */
const CLOCK_TOLERANCE_MS = 50;

/** What a 429 tells the limiter (see {@link RateLimiter.throttled}). */
export interface ThrottleInfo {
  /** When the throttled request was started (clock ms). */
  sentAt: number;
  /** The answer's `Retry-After`, in ms (absent, or 0: Klaviyo sometimes sends none). */
  retryAfterMs?: number;
  /** "Expected available in N seconds" of the answer's body, in ms. */
  hintMs?: number;
  /** When this request's previous attempt, if it was answered 429 too, was sent (clock ms). */
  refusedBeforeAt?: number;
}

/** The steady and burst reservoirs of one endpoint key. */
interface Windows {
  /** Shared with other processes (Redis): the allowance is then not resized from what one process learns. */
  readonly shared: boolean;
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
  readonly shared = true;
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
  readonly shared = false;
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

/**
 * Tokens of one reservoir waiting to be given back: a min-heap of due times (epoch ms) and one timer, for the earliest.
 * A steady token is out for a whole minute, so at ~140 requests/s (limits lifted) ~8,400 are waiting at once; as a
 * timer and closures per request they held ~1 KB each, a live heap that grew for the first minute of every run.
 */
class TokenReturns {
  readonly #due: number[] = [];
  readonly #give: (n: number) => void;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;

  /** `give(n)`: n tokens are due (called from a timer). */
  constructor(clock: Clock, give: (n: number) => void) {
    this.#clock = clock;
    this.#give = give;
  }

  /** The earliest due time, or Infinity. */
  get next(): number {
    return this.#due.length > 0 ? this.#due[0]! : Infinity;
  }

  /** Give one token back at the epoch-ms time `at`. */
  add(at: number): void {
    heapPush(this.#due, at);
    if (at < this.#timerAt) this.#arm(at);
  }

  /** Drop every waiting token and the timer. */
  clear(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#due.length = 0;
  }

  #arm(at: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    // Not unref'd: when every request waits for a token, this timer is what keeps the process alive.
    this.#timer = this.#clock.setTimeout(this.#fire, Math.max(0, at - this.#clock.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    let n = 0;
    while (this.#due.length > 0 && this.#due[0]! <= now) {
      heapPop(this.#due);
      n++;
    }
    if (this.#due.length > 0) this.#arm(this.#due[0]!);
    if (n > 0) this.#give(n);
  };
}

/** The first multiple of `windowMs` after `t` (the end of the clock's window holding `t`). */
function nextBoundary(t: number, windowMs: number): number {
  return Math.floor(t / windowMs) * windowMs + windowMs;
}

/**
 * Whether some moment `c` in [from, to] has ceil((end − c) / 1000) = `resetSeconds`, where `end` is the end of the
 * clock's steady window holding `c` ({@link nextBoundary}): what the server states as `RateLimit-Reset` when its
 * windows are the clock's and it counted the request at `c`.
 */
function clockWindowFits(from: number, to: number, resetSeconds: number, windowMs: number): boolean {
  for (let end = nextBoundary(from, windowMs); end <= nextBoundary(to, windowMs); end += windowMs) {
    const lo = Math.max(from, end - windowMs, end - resetSeconds * 1000);
    const hi = Math.min(to + 1, end, end - (resetSeconds - 1) * 1000);
    if (lo < hi) return true;
  }
  return false;
}

function heapPush(heap: number[], value: number): void {
  let i = heap.length;
  heap.push(value);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= value) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): void {
  const last = heap.pop()!;
  const n = heap.length;
  if (n === 0) return;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap[child + 1]! < heap[child]!) child++;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
}

interface KeyState {
  /** Safety margin of this key's windows (grows on 429s). */
  marginMs: number;
  windows: Windows;
  /** The allowance paced at now: the tier, lowered by what the answers told (RateLimit-Limit, 429s). */
  limits: TierLimits;
  /** The most `limits` may grow back to: the tier, scaled down when RateLimit-Limit states a lower steady allowance. */
  ceiling: TierLimits;
  pausedUntil: number;
  /** Burst and steady tokens taken and not yet due back. */
  burstReturns: TokenReturns;
  steadyReturns: TokenReturns;
  /** Tokens taken and not yet given back (the two queues, plus requests still open). */
  held: { steady: number; burst: number };
  /**
   * Whether the server's windows are our clock's (whole seconds and minutes, as the emulator's are and as fixed
   * windows of `floor(time / length)` are where clocks agree): undefined until an answer's `RateLimit-Reset` tells,
   * then true while every answer agrees; false for good once one does not, or after a 429 (see {@link #holdToken}).
   */
  aligned: boolean | undefined;
  /** Resolves when the key's first request is answered: until then it is the only one (the answer tells the limits). */
  firstAnswer: Promise<void> | undefined;
  answered: boolean;
  /** Latencies (ms) of the last answers, oldest first. */
  latencies: number[];
  /** Start times of the requests answered within the last burst windows, and whether they were throttled. */
  recent: { start: number; throttled: boolean }[];
  /** When the burst allowance was last lowered (or grown back). */
  burstChangedAt: number;
  /** 429s answered for this key so far (a key's first request refused does not count as its first answer). */
  throttles: number;
  /**
   * The key's refusals since its last admitted answer: when the first of them was sent (clock ms). A request sent one
   * burst window or more after it and refused too means the steady window is used up (see {@link throttled}).
   */
  refusedSince: number | undefined;
  /**
   * The server's steady window as the answers stated it: it ends after `endsAfter` and by `resetAt` (clock ms);
   * what remained at the last answer, and the requests started since.
   */
  steady: { resetAt: number; endsAfter: number; remaining: number; startedSince: number } | undefined;
}

export class RateLimiter {
  readonly #tiers: Record<string, TierLimits>;
  readonly #scale: number;
  readonly #marginMs: number;
  readonly #burstWindowMs: number;
  readonly #steadyWindowMs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #keys = new Map<string, KeyState>();
  readonly #timers = new Set<TimerHandle>();
  readonly #redisPrefix: string | undefined;
  readonly #trustStated: boolean;
  readonly #scaleStated: boolean;
  #connection: Bottleneck.IORedisConnection | undefined;
  /** Requests started and not yet ended (nor past their start-based return): close() waits for them in cluster mode. */
  #open = 0;
  /** Token returns in progress (Redis round trips): close() waits for them. */
  readonly #giving = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: RateLimiterOptions = {}) {
    const scale = options.scale ?? 1;
    if (!(scale > 0) || !Number.isFinite(scale)) {
      throw new EtlError('USAGE', `Expected \`scale\` to be a positive number, got \`${String(options.scale)}\``);
    }
    this.#scale = scale;
    this.#scaleStated = options.scale !== undefined;
    this.#trustStated = options.trustStated ?? false;
    this.#tiers = { ...(options.tiers ?? {}) };
    this.#marginMs = options.marginMs ?? 2;
    this.#burstWindowMs = options.burstWindowMs ?? 1000;
    this.#steadyWindowMs = options.steadyWindowMs ?? 60_000;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
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
    const base = this.#tiers[key] ?? pacingLimits(key) ?? FALLBACK_TIER;
    return {
      burst: Math.max(1, Math.floor(base.burst * this.#scale)),
      steady: Math.max(1, Math.floor(base.steady * this.#scale)),
    };
  }

  /** The allowance a key is paced at now: {@link limits}, lowered by what the server's answers told. */
  pacedLimits(key: string): TierLimits {
    return { ...this.#state(key).limits };
  }

  /**
   * Run `fn` when the endpoint's windows allow one more request. Waiting holds no connection. A key's first request
   * goes alone: its answer states the account's allowance (`RateLimit-Limit`), which may be below the tier.
   */
  async schedule<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const state = this.#state(key);
    // Set when this request is the key's first: the others wait for its answer (in the order they came).
    let release: (() => void) | undefined;
    try {
      for (;;) {
        if (this.#closed) throw new EtlError('INTERNAL', 'rate limiter is closed');
        if (!release && state.firstAnswer) {
          await state.firstAnswer;
          continue;
        }
        if (!release && !state.answered) state.firstAnswer = new Promise<void>((resolve) => (release = resolve));
        const wait = state.pausedUntil - this.#clock.now();
        if (wait > 0) await sleep(this.#clock, wait);
        this.#growBurst(state);
        await state.windows.take();
        if (this.#clock.now() < state.pausedUntil) {
          // Paused while queued: give the tokens back and queue again after the pause.
          await state.windows.addSteady(1);
          await state.windows.addBurst(1);
          continue;
        }
        const first = release;
        release = undefined;
        return await this.#run(state, fn, first);
      }
    } finally {
      if (release) {
        state.firstAnswer = undefined;
        release();
      }
    }
  }

  /** Run `fn` holding a token of each window; `release`: it is the key's first request, the others wait for it. */
  async #run<T>(state: KeyState, fn: () => Promise<T>, release: (() => void) | undefined): Promise<T> {
    if (state.steady) state.steady.startedSince++;
    const ended = this.#holdToken(state);
    const throttlesBefore = state.throttles;
    let answered = false;
    try {
      const result = await fn();
      answered = true;
      return result;
    } finally {
      ended(answered);
      if (release) {
        // a 429 (reported by `fn` through throttled()) states no limits: the next request goes alone in its turn
        state.answered = answered && state.throttles === throttlesBefore;
        state.firstAnswer = undefined;
        release();
      }
    }
  }

  /**
   * Learn from an answer's `RateLimit-*` headers (they describe the steady window):
   * - `RateLimit-Limit` below the steady allowance paced at: the account's limits are lower than the tier (a custom
   *   limit, or the emulator's `--limits`); both allowances are scaled down by the same ratio, for the rest of the run.
   * - `RateLimit-Remaining` below the tokens we hold: another process or tool uses the same account; the deficit is
   *   taken away until the server's window resets (`RateLimit-Reset`).
   * The window's reset time is kept for 429s that come without `Retry-After` ({@link throttled}).
   */
  async observe(key: string, observation: RateLimitObservation): Promise<void> {
    const { limit, remaining, resetSeconds } = observation;
    if (this.#closed) return;
    const state = this.#state(key);
    const now = this.#clock.now();
    if (resetSeconds !== undefined && Number.isFinite(resetSeconds) && observation.sentAt !== undefined) {
      this.#checkAligned(key, state, observation.sentAt, now, resetSeconds);
    }
    if (limit !== undefined && Number.isFinite(limit) && limit >= 1 && limit < state.ceiling.steady && !state.windows.shared) {
      const ratio = limit / state.ceiling.steady;
      state.ceiling = { steady: Math.floor(limit), burst: Math.max(1, Math.floor(state.ceiling.burst * ratio)) };
      this.#resize(state, { steady: Math.min(state.limits.steady, state.ceiling.steady), burst: Math.min(state.limits.burst, state.ceiling.burst) });
      this.#logger.info('rate limiter follows the limit the server states', { endpoint: key, limit, paced: state.limits });
    }
    if (remaining === undefined || !Number.isFinite(remaining)) return;
    if (resetSeconds !== undefined && Number.isFinite(resetSeconds) && resetSeconds >= 0) this.#steadyWindow(state, now, remaining, resetSeconds, observation.sentAt);
    const current = await state.windows.steadyLeft();
    if (current === null || remaining >= current) return;
    const deficit = current - Math.max(0, remaining);
    await state.windows.addSteady(-deficit);
    const resetMs = Math.min(this.#steadyWindowMs, Math.max(0, (resetSeconds ?? this.#steadyWindowMs / 1000) * 1000));
    this.#logger.debug('rate limiter lowered by server headers', { endpoint: key, remaining, deficit });
    this.#later(resetMs + state.marginMs, () => state.windows.addSteady(deficit));
  }

  /**
   * Does this answer's `RateLimit-Reset` agree with windows that are our clock's (the steady window ending at a whole
   * minute of the clock, so the burst windows at whole seconds)? It does when, for some moment between the request's
   * start and its answer (each widened by CLOCK_TOLERANCE_MS), the seconds to the clock's next whole steady window,
   * rounded up, are the Reset. The first answer that agrees sets the key aligned; one that does not ends it for good.
   */
  #checkAligned(key: string, state: KeyState, sentAt: number, now: number, resetSeconds: number): void {
    if (state.aligned === false) return;
    if (clockWindowFits(sentAt - CLOCK_TOLERANCE_MS, now + CLOCK_TOLERANCE_MS, resetSeconds, this.#steadyWindowMs)) {
      if (state.aligned === undefined) this.#logger.debug('rate limiter paces at the clock\'s windows', { endpoint: key });
      state.aligned = true;
      return;
    }
    if (state.aligned) this.#logger.info('rate limiter no longer paces at the clock\'s windows: the server\'s differ', { endpoint: key, resetSeconds });
    state.aligned = false;
  }

  /**
   * Where the server's current steady window ends. Klaviyo's windows are fixed windows and `RateLimit-Reset` counts
   * whole seconds (rounded up) from when the request was counted, between its start and its answer: the window ends
   * after start + (Reset − 1) s and by answer + Reset s. Answers within one window narrow both bounds.
   */
  #steadyWindow(state: KeyState, now: number, remaining: number, resetSeconds: number, sentAt: number | undefined): void {
    const resetAt = now + resetSeconds * 1000;
    let endsAfter = sentAt === undefined ? -Infinity : sentAt + (resetSeconds - 1) * 1000;
    const prev = state.steady;
    const sameWindow = prev !== undefined && Math.abs(prev.resetAt - resetAt) < this.#steadyWindowMs / 2;
    const upper = sameWindow ? Math.min(prev.resetAt, resetAt) : resetAt;
    if (sameWindow) endsAfter = Math.max(prev.endsAfter, endsAfter);
    // Bounds that contradict each other (a server rounding otherwise): trust only the upper one.
    if (endsAfter > upper) endsAfter = -Infinity;
    state.steady = { resetAt: upper, endsAfter, remaining, startedSince: 0 };
  }

  /**
   * A request was answered, not 429: sent no earlier than the key's first refusal since the last such answer, it
   * ends that run of refusals (the account's windows had room again).
   */
  admitted(key: string, sentAt: number): void {
    const state = this.#state(key);
    if (state.refusedSince !== undefined && sentAt >= state.refusedSince) state.refusedSince = undefined;
  }

  /**
   * A request was answered 429: pause the key until the window that refused it ends, and return that wait (ms).
   * Call it before the request's scheduled function returns (the key's waiting requests then see the pause).
   * - `Retry-After` when the answer has one (> 0);
   * - else, when the steady window is known to be used up (the last `RateLimit-Remaining`, less the requests started
   *   since), or the body says so ("available in N seconds"), or it is refused again: this request was refused
   *   before in the steady window the answers told of, or, with no such window known, the key was refused already
   *   and this request was sent one burst window or more after that first refusal with nothing admitted since (a
   *   burst window alone would have let it through): the steady window's end, from the last `RateLimit-Reset`, else
   *   one whole steady window (the tier's; a 429 carries no `RateLimit-*` headers to tell where it ends);
   * - else the end of the burst window (at most one burst window away): a first refusal, with nothing known of the
   *   steady window, may be the burst window's.
   * A 429 that is not the steady window's (another client takes part of the burst allowance) also lowers the burst
   * allowance to the requests that got through in the burst window before it; it grows back by one every
   * BURST_RECOVERY_WINDOWS burst windows without a 429, up to the tier.
   */
  throttled(key: string, info: ThrottleInfo): number {
    const state = this.#state(key);
    const now = this.#clock.now();
    if (state.aligned) {
      // paced at the clock's windows and refused all the same: they are not the server's (or another client shares
      // the account); back to the sliding form, which holds whatever the windows
      state.aligned = false;
      this.#logger.info('rate limiter no longer paces at the clock\'s windows after a 429', { endpoint: key });
    }
    for (let i = state.recent.length - 1; i >= 0; i--) {
      if (state.recent[i]!.start === info.sentAt) {
        state.recent[i]!.throttled = true;
        break;
      }
    }
    state.throttles++;
    const refusedAcross = state.refusedSince !== undefined && info.sentAt >= state.refusedSince + this.#burstWindowMs;
    state.refusedSince ??= info.sentAt;
    const burstLike = Math.max(this.#burstWindowMs, 1000);
    const known = state.steady !== undefined && state.steady.resetAt > now ? state.steady : undefined;
    const steadyOut =
      (known !== undefined && known.remaining - known.startedSince <= 0) ||
      (info.hintMs ?? 0) > burstLike ||
      (info.retryAfterMs ?? 0) > burstLike;
    // The answers said the steady window has room (perhaps before another client used it up): used up only when this
    // very request was refused before in that window. Nothing known: when the key was refused across burst windows.
    const windowStart = known ? known.resetAt - this.#steadyWindowMs : now - this.#steadyWindowMs;
    const refusedAgain = known
      ? info.refusedBeforeAt !== undefined && info.refusedBeforeAt >= windowStart
      : refusedAcross;
    let wait: number;
    if (info.retryAfterMs !== undefined && info.retryAfterMs > 0) wait = info.retryAfterMs;
    else if (steadyOut || refusedAgain) {
      wait = state.steady && state.steady.resetAt > now ? state.steady.resetAt - now + state.marginMs : this.#steadyWindowMs;
    } else wait = this.#burstWindowMs;
    wait = Math.max(wait, info.hintMs ?? 0);
    if (!steadyOut && !refusedAgain) this.#lowerBurst(state, info.sentAt, now);
    this.pause(key, wait);
    return wait;
  }

  /**
   * Stop starting requests for `key` for `ms` milliseconds (a 429's Retry-After), and widen the key's safety margin:
   * the server counted more than we thought, so jitter is larger than the margin allowed for.
   */
  pause(key: string, ms: number): void {
    const state = this.#state(key);
    state.pausedUntil = Math.max(state.pausedUntil, this.#clock.now() + ms);
    state.marginMs = Math.min(MAX_MARGIN_MS, Math.max(state.marginMs * 2, MIN_MARGIN_AFTER_429_MS));
  }

  /**
   * Lower the burst allowance to the requests that got through in the burst window before the refused one, when
   * some but fewer than the allowance got through (another client took the rest). Nothing is learnt from a window that
   * overlapped a pause (it was not paced at the allowance), nor twice in one burst window.
   */
  #lowerBurst(state: KeyState, sentAt: number, now: number): void {
    const from = sentAt - this.#burstWindowMs;
    if (state.windows.shared || now - state.burstChangedAt < this.#burstWindowMs || from < state.pausedUntil) return;
    const through = state.recent.filter((r) => r.start >= from && r.start <= sentAt && !r.throttled).length;
    // none got through: the window was taken whole (the steady window used up, or another client's burst), which a
    // lower burst allowance would not help; the refused request's wait handles it
    if (through >= state.limits.burst || through === 0) return;
    const burst = through;
    state.burstChangedAt = now;
    this.#resize(state, { steady: state.limits.steady, burst });
    this.#logger.info('rate limiter lowered the burst allowance after a 429', { burst });
  }

  #growBurst(state: KeyState): void {
    const now = this.#clock.now();
    if (state.limits.burst >= state.ceiling.burst || now - state.burstChangedAt < BURST_RECOVERY_WINDOWS * this.#burstWindowMs) return;
    state.burstChangedAt = now;
    this.#resize(state, { steady: state.limits.steady, burst: state.limits.burst + 1 });
  }

  /** Pace `state` at `to` from now on (tokens already out keep their due times). */
  #resize(state: KeyState, to: TierLimits): void {
    const steady = to.steady - state.limits.steady;
    const burst = to.burst - state.limits.burst;
    state.limits = { ...to };
    if (steady !== 0) this.#give(state.windows.addSteady(steady));
    if (burst !== 0) this.#give(state.windows.addBurst(burst));
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
      for (;;) {
        let next = Infinity;
        for (const state of this.#keys.values()) next = Math.min(next, state.burstReturns.next);
        if (next === Infinity && this.#open === 0) break;
        await sleep(this.#clock, next === Infinity ? 10 : Math.max(1, next - this.#clock.now() + 1));
      }
      await Promise.all([...this.#giving]);
    }
    this.#closed = true;
    for (const timer of this.#timers) this.#clock.clearTimeout(timer);
    this.#timers.clear();
    for (const state of this.#keys.values()) {
      state.burstReturns.clear();
      state.steadyReturns.clear();
    }
    if (this.#connection) {
      for (const state of this.#keys.values()) {
        const { steady, burst } = state.held;
        if (steady > 0) await state.windows.addSteady(steady).catch(() => undefined);
        if (burst > 0) await state.windows.addBurst(burst).catch(() => undefined);
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
    const held = { steady: 0, burst: 0 };
    state = {
      windows,
      limits: { ...limits },
      ceiling: { ...limits },
      firstAnswer: undefined,
      // a key whose allowance the caller stated sends its first burst at once: nothing to learn first
      answered: this.#trustStated && (this.#scaleStated || this.#tiers[key] !== undefined),
      aligned: undefined,
      latencies: [],
      recent: [],
      burstChangedAt: -Infinity,
      throttles: 0,
      refusedSince: undefined,
      steady: undefined,
      pausedUntil: 0,
      marginMs: this.#marginMs,
      held,
      burstReturns: new TokenReturns(this.#clock, (n) => {
        held.burst -= n;
        this.#give(windows.addBurst(n));
      }),
      steadyReturns: new TokenReturns(this.#clock, (n) => {
        held.steady -= n;
        this.#give(windows.addSteady(n));
      }),
    };
    this.#keys.set(key, state);
    return state;
  }

  #give(returned: Promise<unknown>): void {
    const tracked = returned.catch((error: unknown) =>
      this.#logger.error('rate limiter error', { error: error instanceof Error ? error.message : String(error) }),
    );
    this.#giving.add(tracked);
    void tracked.finally(() => this.#giving.delete(tracked));
  }

  /**
   * Take a request's tokens: each comes back one window + margin after the request was counted. When was it counted?
   * Between its start and its answer; at the same point of the latency for every request, as far as the spread of
   * the latencies shows. So, once MIN_LATENCY_SAMPLES answers are in, a token comes back one window + margin after
   * the request's start + the spread of the last latencies (a steady 250 ms latency costs nothing), never later than
   * one window + margin after its answer, or one window + LATE_RESPONSE_MS after a start left unanswered. At the
   * clock's windows (`state.aligned`), when the windows holding its end (+ margin) end, plus the margin.
   * `ended(answered)`: the request ended (answered: a response arrived).
   */
  #holdToken(state: KeyState): (answered: boolean) => void {
    const start = this.#clock.now();
    state.held.steady++;
    state.held.burst++;
    this.#open++;
    let ended = false;
    // Still unanswered when the burst token's start-based time comes: both tokens go back on their start-based times.
    const late = this.#clock.setTimeout(() => {
      this.#timers.delete(late);
      // At the clock's windows a token waits for its request's end, however late: the server may count it as late
      // as it answers (the emulator counts after its `slow` delay; a loaded one later still), and a token given back
      // on the start-based guess let a request into a window that counted the late one too.
      if (state.aligned) return;
      ended = true;
      this.#open--;
      state.burstReturns.add(start + this.#burstWindowMs + LATE_RESPONSE_MS);
      state.steadyReturns.add(start + this.#steadyWindowMs + LATE_RESPONSE_MS);
    }, this.#burstWindowMs + LATE_RESPONSE_MS);
    this.#timers.add(late);
    return (answered) => {
      const now = this.#clock.now();
      if (answered) this.#answered(state, start, now);
      if (ended || this.#closed) return;
      ended = true;
      this.#open--;
      this.#clock.clearTimeout(late);
      this.#timers.delete(late);
      if (state.aligned) {
        // The server's windows are the clock's: the request was counted by now, so its tokens are free when the
        // windows it was counted in end (the next whole second and minute after now + margin), plus the margin.
        const after = now + state.marginMs;
        state.burstReturns.add(nextBoundary(after, this.#burstWindowMs) + state.marginMs);
        state.steadyReturns.add(nextBoundary(after, this.#steadyWindowMs) + state.marginMs);
        return;
      }
      const latencies = state.latencies;
      const spread = latencies.length >= MIN_LATENCY_SAMPLES ? Math.max(...latencies) - Math.min(...latencies) : Infinity;
      const counted = Math.min(start + LATE_RESPONSE_MS, start + spread + state.marginMs, now + state.marginMs);
      state.burstReturns.add(counted + this.#burstWindowMs);
      // Ended before the server's steady window can have ended: it was counted in that window (if at all), and its
      // steady token is free when that fixed window ends, not one window after.
      const window = state.steady;
      const steadyDue = window && now < window.endsAfter ? Math.min(window.resetAt + state.marginMs, counted + this.#steadyWindowMs) : counted + this.#steadyWindowMs;
      state.steadyReturns.add(steadyDue);
    };
  }

  /** Record an answer's latency and start (for the spread of latencies and the burst a 429 lowers to). */
  #answered(state: KeyState, start: number, now: number): void {
    state.latencies.push(now - start);
    if (state.latencies.length > LATENCY_SAMPLES) state.latencies.shift();
    state.recent.push({ start, throttled: false });
    const keepFrom = now - 2 * this.#burstWindowMs - LATE_RESPONSE_MS;
    while (state.recent.length > 0 && state.recent[0]!.start < keepFrom) state.recent.shift();
  }

  /** Run `fn` after `ms` (unless closed by then). */
  #later(ms: number, fn: () => Promise<unknown>): void {
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) this.#give(fn());
    }, ms);
    this.#timers.add(timer);
  }
}
