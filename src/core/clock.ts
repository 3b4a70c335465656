/**
 * Time as the components that wait read it (the rate limiter, the Klaviyo client, the batcher). It comes in through
 * their options or context, so their tests run on fake timers; {@link systemClock} is the default.
 */

/** What {@link Clock.setTimeout} returns (Node's timer object for the system clock). */
export type TimerHandle = ReturnType<typeof setTimeout>;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Call `callback` once, `ms` milliseconds from now. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancel a timer (`undefined` or a timer that already fired: nothing happens). */
  clearTimeout(timer: TimerHandle | undefined): void;
}

/**
 * The real clock: `Date.now()` and the global timers, looked up on every call (so `vi.useFakeTimers()` replaces them
 * too).
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number) => setTimeout(callback, ms),
  clearTimeout: (timer: TimerHandle | undefined) => clearTimeout(timer),
});

/**
 * Resolves `ms` milliseconds from now on `clock`. When `signal` aborts first (or has aborted), the timer is cleared
 * and the promise rejects with `onAbort()` (default: the signal's reason).
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal, onAbort?: () => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const abortError = () => (onAbort ? onAbort() : signal?.reason);
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const abort = () => {
      clock.clearTimeout(timer);
      reject(abortError());
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', abort, { once: true });
  });
}
