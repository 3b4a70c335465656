import { EtlError } from '../core/errors.js';
import type { ProfileItem } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import type { KlaviyoClient, KlaviyoResponse } from '../klaviyo/client.js';
import { lookupProfiles, type FoundProfile, type ProfileLookup } from '../klaviyo/profile-lookup.js';
import { describeRange, errorMessage, itemReject } from './bulk.js';
import type { LoadContext } from './types.js';

export const PATCH_PROFILE_KEY = 'PATCH /api/profiles/{id}';
/** Profiles with fields to clear held before they are looked up together (one `GET /api/profiles` per 100). */
const CLEAR_CHUNK = 100;

/** The value at a cleared path (`phone_number`, `location.city`, `properties.tier`) of a profile's attributes. */
function valueAt(attributes: Record<string, unknown>, path: string): unknown {
  const dot = path.indexOf('.');
  if (dot < 0) return attributes[path];
  const parent = attributes[path.slice(0, dot)];
  return typeof parent === 'object' && parent !== null ? (parent as Record<string, unknown>)[path.slice(dot + 1)] : undefined;
}

const holds = (value: unknown): boolean => value !== undefined && value !== null && value !== '';

/**
 * The PATCH body clearing these paths: attributes (and `location.*`) set to null, which clears them ("setting a field
 * to null will clear out the field"); custom properties removed with `meta.patch_properties.unset`.
 */
export function clearBody(id: string, paths: readonly string[]): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const path of paths) {
    if (path.startsWith('properties.')) unset.push(path.slice('properties.'.length));
    else if (path.startsWith('location.')) ((attributes.location ??= {}) as Record<string, unknown>)[path.slice('location.'.length)] = null;
    else attributes[path] = null;
  }
  return { data: { type: 'profile', id, attributes, ...(unset.length > 0 ? { meta: { patch_properties: { unset } } } : {}) } };
}

/**
 * Clears, through `PATCH /api/profiles/{id}` (L tier), the fields a profile mapping marks `clear: true` whose value is
 * empty in the row: the bulk import the item then joins ignores empty values, so without this a value removed at the
 * source would stay in Klaviyo forever. Items arrive with `clear` (the empty paths); they are looked up 100 at a time
 * by their first identifier of email, phone number and external id (src/klaviyo/profile-lookup.ts), and only a profile
 * that holds a value at one of those paths is patched, once, with all of them. A profile Klaviyo does not know yet
 * has nothing to clear. An item is handed on to the bulk import (`next`) only after its PATCH succeeded, so a
 * checkpoint never passes a clear that was not made; a PATCH refused with a pointer rejects the row
 * (KLAVIYO_REJECTED), which is then not imported.
 */
export class ProfileClearer {
  readonly #client: KlaviyoClient | undefined;
  readonly #ctx: LoadContext;
  readonly #concurrency: number;
  readonly #next: (item: ProfileItem) => Promise<void>;
  #held: ProfileItem[] = [];

  constructor(client: KlaviyoClient | undefined, ctx: LoadContext, concurrency: number, next: (item: ProfileItem) => Promise<void>) {
    this.#client = client;
    this.#ctx = ctx;
    this.#concurrency = concurrency;
    this.#next = next;
  }

  /** Hold an item with fields to clear; clear a full chunk. */
  async add(item: ProfileItem): Promise<void> {
    this.#held.push(item);
    if (this.#held.length >= CLEAR_CHUNK) await this.flush();
  }

  /** Clear what is held, then hand the items on. */
  async flush(): Promise<void> {
    const items = this.#held;
    this.#held = [];
    if (items.length === 0) return;
    const stats = this.#ctx.stats;
    if (!this.#client || this.#ctx.dryRun) {
      stats.plannedRequests += 1 + items.length; // a lookup, and at most one PATCH per profile
      for (const item of items) await this.#next(item);
      return;
    }
    // each row by its first identifier (email, else phone number, else external id): one request per 100 rows, not three
    const keys = items.map(lookupKey);
    const by = (field: Identifier): string[] => keys.flatMap((k) => (k?.[0] === field ? [k[1]] : []));
    const found = await lookupProfiles(this.#client, { emails: by('email'), phones: by('phone_number'), externalIds: by('external_id') });
    const work = items.map((item) => ({ item, profile: profileOf(found, item) }));
    let at = 0;
    const worker = async (): Promise<void> => {
      while (at < work.length) {
        const { item, profile } = work[at++]!;
        await this.#clear(item, profile);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, work.length) }, worker));
    for (const { item } of work) if (!this.#rejected.has(item)) await this.#next(item);
    this.#rejected.clear();
  }

  readonly #rejected = new Set<ProfileItem>();

  async #clear(item: ProfileItem, profile: FoundProfile | undefined): Promise<void> {
    const stats = this.#ctx.stats.clears;
    const paths = profile === undefined ? [] : (item.clear ?? []).filter((p) => holds(valueAt(profile.attributes, p)));
    if (profile === undefined || paths.length === 0) {
      stats.unchanged++;
      return;
    }
    const response = await this.#client!.request(PATCH_PROFILE_KEY, {
      path: `/api/profiles/${encodeURIComponent(profile.id)}`,
      body: clearBody(profile.id, paths),
      idempotent: true, // setting nulls twice leaves the same profile
    });
    if (response.ok) {
      stats.profiles++;
      stats.fields += paths.length;
      return;
    }
    this.#refused(item, response);
  }

  /** A 400/409 naming the body rejects the row; anything else fails the run. */
  #refused(item: ProfileItem, response: KlaviyoResponse): void {
    const said = response.errors.map(errorMessage).join('; ') || `${response.status} without details`;
    if (response.status === 400 || response.status === 409) {
      const field = response.errors.find((e) => e.source?.pointer?.startsWith('/data/attributes/'))?.source?.pointer?.slice('/data/attributes/'.length);
      this.#ctx.onReject([itemReject(item, item.first, 'KLAVIYO_REJECTED', `clearing ${item.clear!.join(', ')}: ${said}`, field)]);
      this.#rejected.add(item);
      return;
    }
    throw new EtlError('KLAVIYO_REQUEST_REJECTED', `Klaviyo refused ${PATCH_PROFILE_KEY} (${response.status}: ${said}) for ${describeRange([item])}. Nothing was rejected: the next run resumes from this row.`, {
      context: { component: 'loader', endpoint: PATCH_PROFILE_KEY, status: response.status, file: item.first.source, line: item.first.line },
    });
  }
}

type Identifier = 'email' | 'phone_number' | 'external_id';

/** The identifier a row's profile is looked up by: the first it has of email, phone number, external id. */
function lookupKey(item: ProfileItem): [Identifier, string] | undefined {
  for (const key of ['email', 'phone_number', 'external_id'] as const) {
    const value = item.payload[key];
    if (typeof value === 'string' && value !== '') return [key, value];
  }
  return undefined;
}

function profileOf(found: ProfileLookup, item: ProfileItem): FoundProfile | undefined {
  const key = lookupKey(item);
  if (key === undefined) return undefined;
  if (key[0] === 'email') return found.byEmail.get(key[1].trim().toLowerCase());
  return key[0] === 'phone_number' ? found.byPhone.get(key[1].trim()) : found.byExternalId.get(key[1]);
}
