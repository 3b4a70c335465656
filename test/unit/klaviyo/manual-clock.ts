import type { Clock, TimerHandle } from '../../../src/core/clock.js';

/**
 * A clock that moves only when told to, for tests that run without fake timers installed: it proves a component reads
 * time and timers from the clock it was given and from nothing else.
 */
export function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  let nextId = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      timers.set(++nextId, { at: now + Math.max(0, ms), fn });
      return nextId as unknown as TimerHandle;
    },
    clearTimeout(timer) {
      timers.delete(timer as unknown as number);
    },
    /** Move `ms` forward, firing the timers due on the way in due order. */
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    },
  };
}
