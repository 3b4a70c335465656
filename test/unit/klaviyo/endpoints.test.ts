import { describe, expect, it } from 'vitest';
import { ENDPOINTS } from '../../../src/klaviyo/endpoints.js';
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
