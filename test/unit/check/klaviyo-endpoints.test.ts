import { describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../../src/config/pipeline.js';
import { klaviyoEndpoints } from '../../../src/check/klaviyo.js';

/** `check` asks for the scopes of the endpoints a run uses: a subscription run reads profiles for the consent guard. */
describe('klaviyoEndpoints of a subscription pipeline', () => {
  const of = (transform: Record<string, unknown>, destination: Record<string, unknown> = {}) =>
    klaviyoEndpoints({ config: { source: {}, transform, destination } as unknown as PipelineConfig, itemKind: 'subscription', readsKlaviyo: false, writesKlaviyo: true });

  it('the consent guard (on by default) and verify read GET /api/profiles (profiles:read)', () => {
    expect(of({})).toEqual(['POST /api/profile-subscription-bulk-create-jobs', 'GET /api/profiles']);
    expect(of({ unsafe_resubscribe_opted_out: true }, { verify: { sample: 5 } })).toContain('GET /api/profiles');
  });

  it('with the guard off and no verify: only the subscribe endpoint', () => {
    expect(of({ unsafe_resubscribe_opted_out: true })).toEqual(['POST /api/profile-subscription-bulk-create-jobs']);
  });
});
