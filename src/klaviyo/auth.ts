/**
 * Klaviyo's answers to a key it will not accept, and what they most likely mean. Klaviyo documents 401
 * (`not_authenticated`, `authentication_failed`) and 403 (`permission_denied`: a scope the key lacks), and also "a 400
 * error indicates an invalid or missing API key" (developers.klaviyo.com, Authenticate, v2024-05-15): a 400 carrying
 * one of these codes is an auth answer too. None of them is retried or blamed on a row.
 */
import type { JsonApiError } from './client.js';

/** The `code`s Klaviyo gives an auth refusal (Django REST framework's, which Klaviyo's API answers with). */
export const AUTH_ERROR_CODES: ReadonlySet<string> = new Set(['not_authenticated', 'authentication_failed', 'permission_denied']);

/** Whether an answer refuses the key: any 401 or 403, and a 400 whose errors carry an auth code. */
export function isAuthRefusal(status: number, errors: readonly JsonApiError[]): boolean {
  if (status === 401 || status === 403) return true;
  return status === 400 && errors.some((e) => e.code !== undefined && AUTH_ERROR_CODES.has(e.code));
}

/** The scope an endpoint needs, from its key (`POST /api/profile-bulk-import-jobs` → `profiles:write`). */
export function scopeOf(endpointKey: string): string | undefined {
  const m = /^(\w+) \/api\/([a-z-]+)/.exec(endpointKey);
  if (!m) return undefined;
  const resource = m[2]!;
  const scope = resource.startsWith('profile-subscription')
    ? 'subscriptions'
    : resource.startsWith('profile') || resource === 'profiles'
      ? 'profiles'
      : resource.startsWith('event')
        ? 'events'
        : resource.replace(/s?$/, 's');
  return `${scope}:${m[1] === 'GET' ? 'read' : 'write'}`;
}

/** The likely cause of an auth refusal, for the error message (never the key itself). */
export function authCause(status: number, errors: readonly JsonApiError[], endpointKey: string): string {
  const codes = new Set(errors.map((e) => e.code));
  if (codes.has('permission_denied') || (status === 403 && !codes.has('authentication_failed') && !codes.has('not_authenticated'))) {
    const scope = scopeOf(endpointKey);
    return `Likely cause: the key lacks a scope this endpoint needs${scope ? ` (${scope})` : ''}; edit the key's scopes in Klaviyo (Settings → API keys) or use a key that has them.`;
  }
  if (codes.has('not_authenticated')) {
    return 'Likely cause: no usable key reached Klaviyo (the request needs `Authorization: Klaviyo-API-Key pk_…`): check the variable that holds the key and any proxy in between.';
  }
  return 'Likely cause: the key is wrong, revoked, or belongs to another Klaviyo account: check the variable that holds the key (KLAVIYO_API_KEY; for a klaviyo destination, the one its apiKeyEnv names).';
}
