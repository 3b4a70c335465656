/**
 * The shape of a Klaviyo private API key, checked before any request: a key Klaviyo would refuse costs a request,
 * and a key a header cannot carry would fail in undici (retried, then reported as an outage).
 */
import { EtlError } from '../core/errors.js';

/** A public API key: the 6-character site id of client-side Track/Identify and the `/client` endpoints. */
const PUBLIC_KEY_RE = /^[A-Za-z0-9]{6}$/;
/** A private API key: `pk_` and letters, digits (Klaviyo issues 34 of them; the length is not documented, so not checked). */
const PRIVATE_KEY_RE = /^pk_[A-Za-z0-9_-]{4,}$/;

const WHY =
  'klaviyo-etl calls the server-side /api endpoints (bulk import, events, subscriptions, lists), which take only a ' +
  'private API key: create one that starts with `pk_` (Settings → API keys → Create Private API Key) with the ' +
  'scopes the pipeline needs, and put it in the variable that holds the key';

/**
 * Throws MISSING_API_KEY for an empty key and API_KEY_INVALID for a key that cannot be a private key (white space or
 * another character a header cannot carry, a public key, any other shape). The messages never hold the key.
 */
export function checkApiKey(apiKey: unknown): void {
  if (typeof apiKey !== 'string' || apiKey.length === 0) {
    throw new EtlError('MISSING_API_KEY', 'Expected `apiKey` to be a non-empty string');
  }
  // a header cannot carry it: undici's failure would be retried and end as KLAVIYO_UNAVAILABLE (an outage)
  if (/[^\x21-\x7e]/.test(apiKey)) {
    const what = /\s/.test(apiKey) ? 'white space (a trailing newline, as `$(cat keyfile)` or a copied line leaves?)' : 'a character that is not printable ASCII';
    throw new EtlError('API_KEY_INVALID', `The Klaviyo API key holds ${what}: remove it from the variable that holds the key`);
  }
  if (PUBLIC_KEY_RE.test(apiKey)) {
    throw new EtlError(
      'API_KEY_INVALID',
      `The Klaviyo API key is a public key (the 6-character site id of client-side Track/Identify), not a private key: ${WHY}`,
    );
  }
  if (!PRIVATE_KEY_RE.test(apiKey)) {
    throw new EtlError(
      'API_KEY_INVALID',
      `The Klaviyo API key (${apiKey.length} characters${apiKey.startsWith('pk_') ? '' : ', not starting with `pk_`'}) does not have the shape of a private key (\`pk_\` then letters and digits): ${WHY}`,
    );
  }
}
