/**
 * Which of a batch's emails and phone numbers belong to members of a list: `GET /api/lists/{id}/profiles` filtered
 * by `any(email,[…])` (then `any(phone_number,[…])`), `fields[profile]=email,phone_number`, `page[size]=100`,
 * following `links.next`; each request through the client, so paced at the endpoint's tier (L). One request per 100
 * values. Used before an unsubscribe from a list (Klaviyo unsubscribes a profile that is not in the list globally)
 * and by the list removal (which needs the members' ids).
 */
import { EtlError } from '../core/errors.js';
import type { KlaviyoClient, KlaviyoResponse } from './client.js';

export const LIST_MEMBERS_KEY = 'GET /api/lists/{id}/profiles';

/** Values per filter, and the page size (at most 100). */
const CHUNK = 100;

/** The members found: profile id by email (lower-cased: Klaviyo matches emails case-insensitively) and by phone. */
export interface ListMembers {
  byEmail: Map<string, string>;
  byPhone: Map<string, string>;
}

const quote = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refused(listId: string, response: KlaviyoResponse): EtlError {
  const said = response.errors.map((e) => [e.code, e.detail ?? e.title].filter(Boolean).join(': ')).join('; ') || 'no error details';
  const cause = response.status === 404 ? `the list ${listId} does not exist in this Klaviyo account` : "the list id or the API key's scopes (lists:read, profiles:read)";
  return new EtlError('KLAVIYO_REQUEST_REJECTED', `Klaviyo refused ${LIST_MEMBERS_KEY} (${response.status}: ${said}) while reading the members of list ${listId}. Likely cause: ${cause}.`, {
    context: { component: 'list-members', endpoint: LIST_MEMBERS_KEY, status: response.status },
  });
}

/** Add the members of one page to `found`; the next page's URL. */
function readPage(listId: string, response: KlaviyoResponse, found: ListMembers): string | undefined {
  const body = response.body;
  if (!isRecord(body) || !Array.isArray(body.data)) {
    throw new EtlError('KLAVIYO_UNAVAILABLE', `Klaviyo answered ${LIST_MEMBERS_KEY} for list ${listId} with ${response.status} and no member list`, {
      context: { component: 'list-members', endpoint: LIST_MEMBERS_KEY, status: response.status },
    });
  }
  for (const resource of body.data as unknown[]) {
    if (!isRecord(resource) || typeof resource.id !== 'string') continue;
    const attrs = isRecord(resource.attributes) ? resource.attributes : {};
    if (typeof attrs.email === 'string') found.byEmail.set(attrs.email.toLowerCase(), resource.id);
    if (typeof attrs.phone_number === 'string') found.byPhone.set(attrs.phone_number, resource.id);
  }
  const links = isRecord(body.links) ? body.links : {};
  return typeof links.next === 'string' && links.next !== '' ? links.next : undefined;
}

/**
 * The members of list `listId` among these emails and phone numbers. Sequential requests (the loader's batches bring
 * the concurrency); a refusal throws KLAVIYO_REQUEST_REJECTED.
 */
export async function listMembersAmong(
  client: KlaviyoClient,
  listId: string,
  identifiers: { emails: readonly string[]; phones: readonly string[] },
): Promise<ListMembers> {
  const found: ListMembers = { byEmail: new Map(), byPhone: new Map() };
  const path = `/api/lists/${encodeURIComponent(listId)}/profiles`;
  const searches: ['email' | 'phone_number', string[]][] = [
    ['email', [...new Set(identifiers.emails.map((e) => e.toLowerCase()))]],
    ['phone_number', [...new Set(identifiers.phones)]],
  ];
  for (const [field, values] of searches) {
    for (let i = 0; i < values.length; i += CHUNK) {
      const filter = `any(${field},[${values.slice(i, i + CHUNK).map(quote).join(',')}])`;
      let next: string | undefined;
      do {
        const query = { filter, 'fields[profile]': 'email,phone_number', 'page[size]': String(CHUNK) };
        const response = await client.request(LIST_MEMBERS_KEY, next === undefined ? { path, query } : { path: next });
        if (!response.ok) throw refused(listId, response);
        next = readPage(listId, response, found);
      } while (next !== undefined);
    }
  }
  return found;
}

/** The member id of a profile named by this email and/or phone number, if it is in the list. */
export function memberId(members: ListMembers, email: string | undefined, phone: string | undefined): string | undefined {
  return (email === undefined ? undefined : members.byEmail.get(email.toLowerCase())) ?? (phone === undefined ? undefined : members.byPhone.get(phone));
}
