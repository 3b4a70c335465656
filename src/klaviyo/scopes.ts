/**
 * The private-key scopes each Klaviyo operation needs, as the spec's `x-klaviyo-scopes` states them (revision
 * 2026-07-15; test/unit/klaviyo/scopes.test.ts checks this table against the spec copy). Klaviyo answers 403
 * `permission_denied` to a key without one of them; the emulator does the same for keys given scopes
 * (`EmulatorOptions.keyScopes`), and `klaviyo-etl check` probes them.
 */
import { scopeOf } from './auth.js';
import type { EndpointKey } from './endpoints.js';

export const ENDPOINT_SCOPES: Partial<Record<EndpointKey, readonly string[]>> = {
  'GET /api/profiles': ['profiles:read'],
  'POST /api/profiles': ['profiles:write'],
  'GET /api/profiles/{id}': ['profiles:read'],
  'PATCH /api/profiles/{id}': ['profiles:write'],
  'POST /api/profile-import': ['profiles:write'],
  'GET /api/profile-bulk-import-jobs': ['lists:read', 'profiles:read'],
  'POST /api/profile-bulk-import-jobs': ['lists:write', 'profiles:write'],
  'GET /api/profile-bulk-import-jobs/{job_id}': ['lists:read', 'profiles:read'],
  'GET /api/profile-bulk-import-jobs/{id}/import-errors': ['profiles:read'],
  'GET /api/profile-bulk-import-jobs/{id}/profiles': ['profiles:read'],
  'GET /api/profile-bulk-import-jobs/{id}/relationships/profiles': ['profiles:read'],
  'GET /api/events': ['events:read'],
  'POST /api/events': ['events:write'],
  'GET /api/events/{id}': ['events:read'],
  'POST /api/event-bulk-create-jobs': ['events:write'],
  'GET /api/metrics': ['metrics:read'],
  'GET /api/metrics/{id}': ['metrics:read'],
  'POST /api/profile-subscription-bulk-create-jobs': ['lists:write', 'profiles:write', 'subscriptions:write'],
  'POST /api/profile-subscription-bulk-delete-jobs': ['lists:write', 'profiles:write', 'subscriptions:write'],
  'GET /api/lists': ['lists:read'],
  'POST /api/lists': ['lists:write'],
  'GET /api/lists/{id}': ['lists:read'],
  'GET /api/lists/{id}/profiles': ['lists:read', 'profiles:read'],
  'GET /api/lists/{id}/relationships/profiles': ['lists:read', 'profiles:read'],
  'POST /api/lists/{id}/relationships/profiles': ['lists:write', 'profiles:write'],
  'DELETE /api/lists/{id}/relationships/profiles': ['lists:write', 'profiles:write'],
  'GET /api/segments': ['segments:read'],
  'GET /api/segments/{id}': ['segments:read'],
  'GET /api/segments/{id}/profiles': ['profiles:read', 'segments:read'],
  'GET /api/campaigns': ['campaigns:read'],
  'GET /api/campaigns/{id}': ['campaigns:read'],
  'GET /api/campaigns/{id}/campaign-messages': ['campaigns:read'],
  'GET /api/campaign-messages/{id}': ['campaigns:read'],
  'GET /api/flows': ['flows:read'],
  'GET /api/flows/{id}': ['flows:read'],
  'GET /api/flows/{id}/flow-actions': ['flows:read'],
  'GET /api/flow-actions/{id}': ['flows:read'],
  'GET /api/flow-actions/{id}/flow-messages': ['flows:read'],
  'GET /api/flow-messages/{id}': ['flows:read'],
  'GET /api/templates': ['templates:read'],
  'GET /api/templates/{id}': ['templates:read'],
};

/** The scopes an endpoint key needs: the table's, else the one its path suggests (`scopeOf`). */
export function scopesOf(key: string): readonly string[] {
  const listed = (ENDPOINT_SCOPES as Record<string, readonly string[] | undefined>)[key];
  if (listed) return listed;
  const guessed = scopeOf(key);
  return guessed ? [guessed] : [];
}
