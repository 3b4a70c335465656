/**
 * The plan of a dry run: per endpoint, the requests and bulk jobs a real run would make and the least wall time the
 * account's rate-limit tiers allow for them, and whether that fits a window (`--dry-run --window 2h`).
 *
 * Klaviyo's limits are fixed windows per account and endpoint: at most `burst` requests in a second and `steady` in
 * a minute (and `daily` where the spec sets one). N requests cannot all be sent sooner than: the full minutes
 * before the last one, plus the seconds the last minute's requests need at the burst rate. Endpoints have separate
 * limits and a run uses them at once, so the run's least wall time is the longest endpoint's. It is a floor: request
 * latency, the loader's concurrency, Klaviyo's processing of bulk jobs and other processes sharing the account
 * (Redis) only add to it, so a plan whose floor exceeds the window cannot fit; one whose floor fits may still not.
 */
import { pacingLimits, type TierLimits } from '../klaviyo/endpoints.js';

/** One endpoint of the plan. */
export interface PlanEndpoint {
  /** Endpoint key, e.g. `POST /api/event-bulk-create-jobs`. */
  endpoint: string;
  requests: number;
  /** Bulk jobs the requests create (each request to a `…-jobs` endpoint creates one). */
  jobs: number;
  /** The allowance the loader paces at (the pipeline's `rateLimits` override, else the documented tier). */
  tier: TierLimits;
  /** The least time the tier allows for these requests, in ms. */
  leastWallMs: number;
  /** `requests` is a minimum (job status polls: at least one per job; more while Klaviyo processes it). */
  minimum?: boolean;
}

/** The plan of a dry run (`report.plan`). */
export interface RunPlan {
  endpoints: PlanEndpoint[];
  /** The least wall time of the whole run: the longest endpoint's. */
  leastWallMs: number;
  /** `--window`: the time the run must fit in, and whether its least wall time does. */
  window?: { ms: number; fits: boolean };
}

/** Requests that follow each request of an endpoint in a real run (at least one each). */
const FOLLOW_UPS: Record<string, string> = {
  'POST /api/profile-bulk-import-jobs': 'GET /api/profile-bulk-import-jobs/{job_id}',
};

/** The least time, in ms, `n` requests take under fixed 1-second, 1-minute and 1-day windows. */
export function leastWallMs(n: number, tier: TierLimits): number {
  if (n <= 0) return 0;
  const minutes = Math.ceil(n / tier.steady);
  const lastMinute = n - (minutes - 1) * tier.steady;
  const byMinute = (minutes - 1) * 60_000 + (Math.ceil(lastMinute / tier.burst) - 1) * 1000;
  const byDay = tier.daily ? Math.floor((n - 1) / tier.daily) * 86_400_000 : 0;
  return Math.max(byMinute, byDay);
}

/** The plan from a dry run's requests by endpoint; `rateLimits` are the destination's tier overrides. */
export function buildPlan(byEndpoint: Record<string, number>, rateLimits: Record<string, TierLimits> | undefined, windowMs?: number): RunPlan {
  const counts = new Map<string, { requests: number; minimum?: boolean }>();
  for (const [key, requests] of Object.entries(byEndpoint)) {
    counts.set(key, { requests });
    const next = FOLLOW_UPS[key];
    if (next) counts.set(next, { requests: (counts.get(next)?.requests ?? 0) + requests, minimum: true });
  }
  const endpoints: PlanEndpoint[] = [];
  for (const [endpoint, { requests, minimum }] of counts) {
    const tier = rateLimits?.[endpoint] ?? pacingLimits(endpoint) ?? { burst: 1, steady: 15 };
    const jobs = /^POST \/api\/[a-z-]+-jobs$/.test(endpoint) ? requests : 0;
    endpoints.push({ endpoint, requests, jobs, tier, leastWallMs: leastWallMs(requests, tier), ...(minimum ? { minimum } : {}) });
  }
  const least = Math.max(0, ...endpoints.map((e) => e.leastWallMs));
  return { endpoints, leastWallMs: least, ...(windowMs === undefined ? {} : { window: { ms: windowMs, fits: least <= windowMs } }) };
}

/** `2h`, `90m`, `1h30m`, `45s`, `1d` → ms; undefined for anything else. */
export function parseWindow(text: string): number | undefined {
  const units: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?[dhms])+$/.test(trimmed)) return undefined;
  let ms = 0;
  for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)([dhms])/g)) ms += Number(m[1]) * units[m[2]!]!;
  return ms > 0 ? Math.round(ms) : undefined;
}

/** `1h 52m 3s`-style duration. */
export function formatDuration(ms: number): string {
  let s = Math.ceil(ms / 1000);
  if (s === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join(' ');
}

/** The plan's lines of a dry run's summary. */
export function formatPlan(plan: RunPlan): string[] {
  const lines = plan.endpoints.map(
    (e) =>
      `  plan      ${e.endpoint}: ${e.minimum ? 'at least ' : ''}${e.requests} requests${e.jobs > 0 ? ` (${e.jobs} bulk jobs)` : ''} at ${e.tier.burst}/s, ${e.tier.steady}/min → at least ${formatDuration(e.leastWallMs)}`,
  );
  const window = plan.window;
  lines.push(
    `  plan      least wall time ${formatDuration(plan.leastWallMs)}` +
      (window ? (window.fits ? ` (fits the ${formatDuration(window.ms)} window)` : `: DOES NOT FIT the ${formatDuration(window.ms)} window`) : ''),
  );
  return lines;
}
