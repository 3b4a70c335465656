import { describe, expect, it } from 'vitest';
import { buildPlan, formatDuration, leastWallMs, parseWindow } from '../../../src/runner/plan.js';

describe('leastWallMs (fixed 1 s / 60 s / 1 day windows)', () => {
  const M = { burst: 10, steady: 150 };
  it('requests that fit one second take no wait; the burst spreads the rest of a minute over seconds', () => {
    expect(leastWallMs(0, M)).toBe(0);
    expect(leastWallMs(1, M)).toBe(0);
    expect(leastWallMs(10, M)).toBe(0);
    expect(leastWallMs(11, M)).toBe(1000);
    expect(leastWallMs(150, M)).toBe(14_000);
  });
  it('past the steady allowance, whole minutes are waited', () => {
    expect(leastWallMs(151, M)).toBe(60_000);
    expect(leastWallMs(300, M)).toBe(60_000 + 14_000);
    expect(leastWallMs(150 * 60, M)).toBe(59 * 60_000 + 14_000);
  });
  it('a daily limit counts whole days', () => {
    expect(leastWallMs(151, { burst: 10, steady: 150, daily: 150 })).toBe(86_400_000);
  });
});

describe('buildPlan', () => {
  it('per endpoint: requests, jobs, tier and least time; profile jobs add at least one status poll each', () => {
    const plan = buildPlan({ 'POST /api/profile-bulk-import-jobs': 6 }, { 'POST /api/profile-bulk-import-jobs': { burst: 1, steady: 2 } }, 120_000);
    expect(plan.endpoints).toEqual([
      { endpoint: 'POST /api/profile-bulk-import-jobs', requests: 6, jobs: 6, tier: { burst: 1, steady: 2 }, leastWallMs: 121_000 },
      { endpoint: 'GET /api/profile-bulk-import-jobs/{job_id}', requests: 6, jobs: 0, tier: { burst: 10, steady: 150 }, leastWallMs: 0, minimum: true },
    ]);
    expect(plan.leastWallMs).toBe(121_000);
    expect(plan.window).toEqual({ ms: 120_000, fits: false });
  });
  it('the L tier is paced at the documented 700/min', () => {
    const plan = buildPlan({ 'POST /api/profile-subscription-bulk-create-jobs': 701 }, undefined);
    expect(plan.endpoints[0]!.tier).toEqual({ burst: 75, steady: 700 });
    expect(plan.endpoints[0]!.leastWallMs).toBe(60_000);
  });
});

describe('parseWindow / formatDuration', () => {
  it('parses durations and refuses anything else', () => {
    expect(parseWindow('2h')).toBe(7_200_000);
    expect(parseWindow('1h30m')).toBe(5_400_000);
    expect(parseWindow('90m')).toBe(5_400_000);
    expect(parseWindow('45s')).toBe(45_000);
    expect(parseWindow('1d')).toBe(86_400_000);
    for (const bad of ['', '2', 'h', '2x', '-1h', '0h', '2 hours']) expect(parseWindow(bad), bad).toBeUndefined();
  });
  it('formats', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(121_000)).toBe('2m 1s');
    expect(formatDuration(5_400_000)).toBe('1h 30m');
  });
});
