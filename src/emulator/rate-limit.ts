/**
 * Klaviyo-style fixed-window rate limits, per account and per endpoint key: a burst window (1 s) and a steady
 * window (60 s), aligned to the clock (window = floor(now / length)). A `factor` multiplies both allowances;
 * the windows keep their length. Throttled requests do not consume allowance.
 */
import type { TierLimits } from '../klaviyo/endpoints.js';

export interface LimitDecision {
  allowed: boolean;
  /** Steady-window allowance and what remains after this request. */
  limit: number;
  remaining: number;
  /** Seconds until the steady window resets (≥1). */
  reset: number;
  /** Seconds to wait when throttled (≥1). */
  retryAfter: number;
}

interface Window {
  burstStart: number;
  burstCount: number;
  steadyStart: number;
  steadyCount: number;
  dayStart: number;
  dayCount: number;
}

const SECOND = 1000;
const MINUTE = 60_000;
const DAY = 86_400_000;

export class RateLimiter {
  #factor: number;
  #windows = new Map<string, Window>();

  /** `factor` multiplies the allowances (1 = Klaviyo's). */
  constructor(factor: number) {
    this.#factor = factor;
  }

  check(accountKey: string, endpoint: string, tier: TierLimits, now: number): LimitDecision {
    return this.checkAll(accountKey, [{ key: endpoint, tier }], now);
  }

  /**
   * Check several windows at once (an endpoint's own limit plus the stricter extra limit of an `include` /
   * `additional-fields` request): the request is allowed only when every one has room, and then counts against
   * all of them; a throttled request counts against none. The decision's limit/remaining/reset describe the last
   * (the stricter) window; `retryAfter` is the longest wait among the windows that blocked.
   */
  checkAll(accountKey: string, limits: readonly { key: string; tier: TierLimits }[], now: number): LimitDecision {
    const bs = now - (now % SECOND);
    const ss = now - (now % MINUTE);
    const ds = now - (now % DAY);
    const reset = Math.max(1, Math.ceil((ss + MINUTE - now) / SECOND));
    const windows: Window[] = [];
    const caps: { burst: number; steady: number; daily: number }[] = [];
    let retryAfter = 0;
    for (const { key: endpoint, tier } of limits) {
      const key = `${accountKey} ${endpoint}`;
      let w = this.#windows.get(key);
      if (!w) {
        w = { burstStart: 0, burstCount: 0, steadyStart: 0, steadyCount: 0, dayStart: 0, dayCount: 0 };
        this.#windows.set(key, w);
      }
      if (w.burstStart !== bs) {
        w.burstStart = bs;
        w.burstCount = 0;
      }
      if (w.steadyStart !== ss) {
        w.steadyStart = ss;
        w.steadyCount = 0;
      }
      if (w.dayStart !== ds) {
        w.dayStart = ds;
        w.dayCount = 0;
      }
      const burst = Math.max(1, Math.floor(tier.burst * this.#factor));
      const steady = Math.max(1, Math.floor(tier.steady * this.#factor));
      const daily = tier.daily === undefined ? Infinity : Math.max(1, Math.floor(tier.daily * this.#factor));
      let wait = 0;
      if (w.dayCount >= daily) wait = Math.ceil((ds + DAY - now) / SECOND);
      else if (w.steadyCount >= steady) wait = reset;
      else if (w.burstCount >= burst) wait = Math.ceil((bs + SECOND - now) / SECOND);
      retryAfter = Math.max(retryAfter, wait);
      windows.push(w);
      caps.push({ burst, steady, daily });
    }
    const last = windows[windows.length - 1]!;
    const steady = caps[caps.length - 1]!.steady;
    if (retryAfter > 0) {
      return { allowed: false, limit: steady, remaining: Math.max(0, steady - last.steadyCount), reset, retryAfter: Math.max(1, retryAfter) };
    }
    for (const w of windows) {
      w.burstCount++;
      w.steadyCount++;
      w.dayCount++;
    }
    return { allowed: true, limit: steady, remaining: steady - last.steadyCount, reset, retryAfter: 0 };
  }

  clear(accountKey?: string): void {
    if (accountKey === undefined) this.#windows.clear();
    else for (const k of this.#windows.keys()) if (k.startsWith(accountKey + ' ')) this.#windows.delete(k);
  }
}
