/**
 * Look profiles up by the emails, phone numbers or external ids of a batch: `GET /api/profiles?filter=any(email,[…])`
 * (and `any(phone_number,[…])`, `any(external_id,[…])`: the spec allows `any` and `equals` on all three), `page[size]=100`, following `links.next`, each request through the client and so
 * through the shared limiter at `GET /api/profiles`' tier (L: 75/s, 700/min as the loader paces it). One request per
 * 100 values (one page each, as an email, phone number or external id names at most one profile); values are sent as
 * given.
 *
 * Used by the subscription loader to read the current consent of a batch before subscribing it
 * (`additional-fields[profile]=subscriptions`), by the unsubscribe/suppression loaders to find profile ids, and by
 * `clear: true` (src/load/profile-clears.ts) to find the profiles whose fields it clears.
 */
import { EtlError } from '../core/errors.js';
import type { KlaviyoClient, KlaviyoResponse } from './client.js';

export const PROFILES_LOOKUP_KEY = 'GET /api/profiles';

/** Values per filter (and the page size): `page[size]` is at most 100. */
export const LOOKUP_CHUNK = 100;

/** One profile as Klaviyo returned it. */
export interface FoundProfile {
  id: string;
  /** The profile's attributes (with `subscriptions` when asked for). */
  attributes: Record<string, unknown>;
}

/** What a lookup asks for besides the identifiers. */
export interface ProfileLookupOptions {
  /** `additional-fields[profile]`, e.g. `['subscriptions']`. @default none */
  additionalFields?: readonly 'subscriptions'[];
  /** `fields[profile]` (sparse fieldset); `undefined` asks for every attribute. @default every attribute */
  fields?: readonly string[];
}

/**
 * The profiles found, by identifier: emails lower-cased (Klaviyo matches them case-insensitively), phones and
 * external ids as sent.
 */
export interface ProfileLookup {
  byEmail: Map<string, FoundProfile>;
  byPhone: Map<string, FoundProfile>;
  byExternalId: Map<string, FoundProfile>;
  /** Requests made. */
  requests: number;
}

/** A filter value: a double-quoted string (backslash escapes `"` and `\`). */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function unique(values: readonly string[] | undefined, normalize: (v: string) => string): string[] {
  const seen = new Set<string>();
  for (const v of values ?? []) if (v !== '') seen.add(normalize(v));
  return [...seen];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The profiles of one page and the next page's URL. */
function readPage(response: KlaviyoResponse): { profiles: FoundProfile[]; next: string | undefined } {
  const body = response.body;
  if (!isRecord(body) || !Array.isArray(body.data)) {
    throw new EtlError('KLAVIYO_UNAVAILABLE', `Klaviyo answered ${PROFILES_LOOKUP_KEY} with ${response.status} and no profile list`, {
      context: { component: 'profile-lookup', endpoint: PROFILES_LOOKUP_KEY, status: response.status },
    });
  }
  const profiles: FoundProfile[] = [];
  for (const resource of body.data as unknown[]) {
    if (!isRecord(resource) || typeof resource.id !== 'string') continue;
    profiles.push({ id: resource.id, attributes: isRecord(resource.attributes) ? resource.attributes : {} });
  }
  const links = isRecord(body.links) ? body.links : {};
  return { profiles, next: typeof links.next === 'string' && links.next !== '' ? links.next : undefined };
}

function refused(response: KlaviyoResponse, field: string): EtlError {
  const said = response.errors.map((e) => [e.code, e.detail ?? e.title].filter(Boolean).join(': ')).join('; ') || 'no error details';
  return new EtlError(
    'KLAVIYO_REQUEST_REJECTED',
    `Klaviyo refused ${PROFILES_LOOKUP_KEY} (${response.status}: ${said}) while looking profiles up by ${field}. Likely cause: the API key's scopes (profiles:read is needed).`,
    { context: { component: 'profile-lookup', endpoint: PROFILES_LOOKUP_KEY, status: response.status } },
  );
}

/** The identifiers profiles are looked up by. */
type LookupField = 'email' | 'phone_number' | 'external_id';

/** Every profile whose `field` is one of `values` (one filter, every page). */
async function lookupChunk(
  client: KlaviyoClient,
  field: LookupField,
  values: string[],
  options: ProfileLookupOptions,
  found: FoundProfile[],
): Promise<number> {
  const query: Record<string, string> = {
    filter: `any(${field},[${values.map(quote).join(',')}])`,
    'page[size]': String(LOOKUP_CHUNK),
  };
  if (options.additionalFields && options.additionalFields.length > 0) query['additional-fields[profile]'] = options.additionalFields.join(',');
  if (options.fields) query['fields[profile]'] = options.fields.join(',');
  let requests = 0;
  let next: string | undefined;
  do {
    const response = await client.request(PROFILES_LOOKUP_KEY, next === undefined ? { query } : { path: next });
    requests++;
    if (!response.ok) throw refused(response, field);
    const page = readPage(response);
    found.push(...page.profiles);
    next = page.next;
  } while (next !== undefined);
  return requests;
}

/**
 * Look up the profiles holding these emails, phone numbers and external ids. Sequential requests (the caller's batches bring the
 * concurrency); a refusal throws KLAVIYO_REQUEST_REJECTED (auth answers throw KLAVIYO_AUTH from the client).
 */
export async function lookupProfiles(
  client: KlaviyoClient,
  identifiers: { emails?: readonly string[]; phones?: readonly string[]; externalIds?: readonly string[] },
  options: ProfileLookupOptions = {},
): Promise<ProfileLookup> {
  const result: ProfileLookup = { byEmail: new Map(), byPhone: new Map(), byExternalId: new Map(), requests: 0 };
  const searches: [LookupField, string[]][] = [
    ['email', unique(identifiers.emails, (v) => v.trim().toLowerCase())],
    ['phone_number', unique(identifiers.phones, (v) => v.trim())],
    ['external_id', unique(identifiers.externalIds, (v) => v)],
  ];
  // a sparse fieldset keeps the identifiers searched by: the answers are matched to the values by them
  const searched = searches.flatMap(([field, values]) => (values.length > 0 ? [field] : []));
  const fields = options.fields === undefined ? undefined : [...new Set([...options.fields, 'email', 'phone_number', ...searched])];
  const opts = { ...options, ...(fields ? { fields } : {}) };
  for (const [field, values] of searches) {
    for (let i = 0; i < values.length; i += LOOKUP_CHUNK) {
      const found: FoundProfile[] = [];
      result.requests += await lookupChunk(client, field, values.slice(i, i + LOOKUP_CHUNK), opts, found);
      for (const profile of found) {
        const value = profile.attributes[field];
        if (typeof value !== 'string') continue;
        if (field === 'email') result.byEmail.set(value.toLowerCase(), profile);
        else if (field === 'phone_number') result.byPhone.set(value, profile);
        else result.byExternalId.set(value, profile);
      }
    }
  }
  return result;
}
