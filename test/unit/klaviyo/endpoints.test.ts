import { describe, expect, it } from 'vitest';
import { DOCUMENTED_TIERS, ENDPOINTS, pacingLimits, TIERS } from '../../../src/klaviyo/endpoints.js';
import { RateLimiter } from '../../../src/klaviyo/rate-limiter.js';
import { readSpec } from '../../helpers/openapi.js';

const spec = readSpec<{
  paths: Record<string, Record<string, { operationId?: string; 'x-klaviyo-ratelimit'?: Record<string, string> }>>;
}>();

describe('endpoint tier table', () => {
  for (const [key, expected] of Object.entries(ENDPOINTS)) {
    it(`${key} matches the spec's x-klaviyo-ratelimit`, () => {
      const [method, path] = key.split(' ');
      const op = spec.paths[path!]?.[method!.toLowerCase()];
      expect(op, `${key} exists in the spec`).toBeDefined();
      expect(op!.operationId).toBe(expected.operationId);
      const rl = op!['x-klaviyo-ratelimit']!;
      expect(Number.parseInt(rl.burst!, 10)).toBe(expected.burst);
      expect(Number.parseInt(rl.steady!, 10)).toBe(expected.steady);
      expect(rl.daily ? Number.parseInt(rl.daily, 10) : undefined).toBe('daily' in expected ? expected.daily : undefined);
    });
  }
});

describe('pacing where the docs and the spec disagree', () => {
  it('the documented tiers are never looser than the spec\'s; L differs (700/min in the docs, 750 in the spec)', () => {
    for (const [name, tier] of Object.entries(TIERS)) {
      const documented = DOCUMENTED_TIERS[name as keyof typeof TIERS];
      expect(documented.burst).toBeLessThanOrEqual(tier.burst);
      expect(documented.steady).toBeLessThanOrEqual(tier.steady);
    }
    expect(TIERS.L.steady).toBe(750);
    expect(DOCUMENTED_TIERS.L.steady).toBe(700);
  });

  it('the loader paces at the stricter value: L endpoints at 700/min, the others at their spec tier', () => {
    const l = new RateLimiter();
    for (const [key, spec] of Object.entries(ENDPOINTS)) {
      const paced = pacingLimits(key)!;
      const isL = spec.burst === TIERS.L.burst && spec.steady === TIERS.L.steady;
      expect(paced, key).toMatchObject({ burst: spec.burst, steady: isL ? 700 : spec.steady });
      expect(l.limits(key), key).toEqual({ burst: paced.burst, steady: paced.steady });
    }
    expect(l.limits('POST /api/profile-subscription-bulk-create-jobs')).toEqual({ burst: 75, steady: 700 });
    expect(pacingLimits('GET /api/unknown')).toBeUndefined();
  });
});
