import { KlaviyoSource, type KlaviyoSourceConfig } from '../config/schema.js';
import { DEFAULT_REVISION, type EndpointKey } from '../klaviyo/endpoints.js';
import { EtlError } from '../core/errors.js';
import type { SourcePosition, SourceRecord } from '../core/record.js';
import { newStats } from '../core/stats.js';
import { connectKlaviyo, type KlaviyoConnection } from '../klaviyo/connect.js';
import type { KlaviyoClient, KlaviyoResponse } from '../klaviyo/client.js';
import type { ExtractContext, SourceReader } from './types.js';
import type { SourceDefinition } from '../components/types.js';

/*
 * Klaviyo source (exports): the members of a list (`GET /api/lists/{id}/profiles`) or segment
 * (`GET /api/segments/{id}/profiles`), `page[size]` ≤ 100, sorted by `joined_group_at`, following `links.next`
 * until it is absent. Each member is flattened into one row (`id`, profile attributes, `location.*`,
 * `properties.*`, `joined_group_at`, `subscriptions.email.marketing.consent`, …).
 *
 * Incremental: the watermark is the highest `joined_group_at` exported plus the ids of the members exported at
 * exactly that instant. The next run asks for `greater-or-equal(joined_group_at, <wm>)` and drops the members at the
 * boundary instant it already exported, so members sharing the boundary timestamp are neither lost nor repeated.
 *
 * Resume: every record's position carries `cursor: {page, index, id, joined_group_at}` where `page` is the request
 * path (with its `page[cursor]`) of the page it came from. A resumed run fetches that page again, skips through
 * the last acknowledged member (found by id, else by index) and continues, numbering `seq` from where it stopped.
 */

/** API key and base URL come from these environment variables (the runner overrides them for `--emulator`). */
export const KLAVIYO_API_KEY_ENV = 'KLAVIYO_API_KEY';
export const KLAVIYO_BASE_URL_ENV = 'KLAVIYO_BASE_URL';

/** Incremental state of a list/segment export, stored in the checkpoint after a successful run. */
export interface KlaviyoWatermark {
  /** The highest `joined_group_at` exported, as Klaviyo wrote it. */
  joined_group_at: string;
  /** Ids of the members exported whose `joined_group_at` is exactly that instant. */
  ids: string[];
}

/** Position cursor of one exported member. */
export interface KlaviyoCursor {
  /** Request path + query of the page the member came from (no origin). */
  page: string;
  /** 0-based index of the member in that page. */
  index: number;
  /** Profile id. */
  id: string;
  joined_group_at: string;
}

/** A running list/segment member export. */
export interface KlaviyoReader extends SourceReader {
  watermark(): KlaviyoWatermark | undefined;
  /** True when the run is bounded by `limit` (its watermark must not be stored). */
  readonly boundedRun: boolean;
}

/** Options for tests and embedding: a client to use instead of one built from the environment. */
export interface KlaviyoReaderOptions {
  client?: KlaviyoClient;
}

/**
 * `joined_group_at` → a number that orders instants at microsecond precision (Date.parse stops at milliseconds).
 * Undefined for a value that is not an ISO 8601 date-time with an offset.
 */
export function instantKey(iso: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$/i.exec(iso);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]!.length === 5 ? m[3]!.slice(0, 3) + ':' + m[3]!.slice(3) : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const micros = Number(((m[2] ?? '') + '000000').slice(0, 6));
  return ms * 1000 + micros;
}

/** A JSON:API profile resource → one flat row: `id`, attributes with nested objects as dotted keys. */
export function flattenProfile(resource: { id?: unknown; attributes?: unknown }): Record<string, unknown> {
  const row: Record<string, unknown> = { id: resource.id };
  const walk = (prefix: string, value: unknown): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0 && prefix) row[prefix] = undefined;
      for (const [k, v] of entries) walk(prefix ? `${prefix}.${k}` : k, v);
      return;
    }
    if (prefix) row[prefix] = value;
  };
  walk('', resource.attributes ?? {});
  return row;
}

function parseWatermark(value: unknown): KlaviyoWatermark | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const w = value as Record<string, unknown>;
  if (typeof w.joined_group_at !== 'string' || instantKey(w.joined_group_at) === undefined) return undefined;
  const ids = Array.isArray(w.ids) ? w.ids.filter((x): x is string => typeof x === 'string') : [];
  return { joined_group_at: w.joined_group_at, ids };
}

function readCursor(pos: SourcePosition | undefined): KlaviyoCursor | undefined {
  const c = pos?.cursor;
  if (!c || typeof c.page !== 'string' || typeof c.index !== 'number') return undefined;
  return {
    page: c.page,
    index: c.index,
    id: typeof c.id === 'string' ? c.id : '',
    joined_group_at: typeof c.joined_group_at === 'string' ? c.joined_group_at : '',
  };
}

/** The high-water mark as members go by: highest instant and the ids at exactly that instant. */
class HighWater {
  key: number | undefined;
  iso: string | undefined;
  ids = new Set<string>();

  constructor(start?: KlaviyoWatermark) {
    if (start) {
      this.key = instantKey(start.joined_group_at);
      this.iso = start.joined_group_at;
      for (const id of start.ids) this.ids.add(id);
    }
  }

  /** True when this member was exported by the run that set the starting watermark. */
  covers(key: number, id: string): boolean {
    return this.key !== undefined && (key < this.key || (key === this.key && this.ids.has(id)));
  }

  see(key: number, iso: string, id: string): void {
    if (this.key === undefined || key > this.key) {
      this.key = key;
      this.iso = iso;
      this.ids = new Set([id]);
    } else if (key === this.key) {
      this.ids.add(id);
    }
  }

  value(): KlaviyoWatermark | undefined {
    return this.iso === undefined ? undefined : { joined_group_at: this.iso, ids: [...this.ids].sort() };
  }
}

interface MemberPage {
  data: Array<{ id?: unknown; attributes?: Record<string, unknown> }>;
  next: string | undefined;
}

class KlaviyoSourceReader implements KlaviyoReader {
  readonly boundedRun: boolean;
  readonly #config: KlaviyoSourceConfig;
  readonly #ctx: ExtractContext;
  readonly #options: KlaviyoReaderOptions;
  readonly #kind: 'list' | 'segment';
  readonly #groupId: string;
  readonly #endpoint: EndpointKey;
  readonly #source: string;
  readonly #previous: KlaviyoWatermark | undefined;
  #high: HighWater;
  #connection: KlaviyoConnection | undefined;

  constructor(config: KlaviyoSourceConfig, ctx: ExtractContext, options: KlaviyoReaderOptions) {
    this.#config = config;
    this.#ctx = ctx;
    this.#options = options;
    this.#kind = config.list !== undefined ? 'list' : 'segment';
    const id = config.list ?? config.segment;
    if (id === undefined) throw new EtlError('CONFIG_RULE', 'a klaviyo source needs list or segment', { context: { component: 'source' } });
    this.#groupId = id;
    this.#endpoint = this.#kind === 'list' ? 'GET /api/lists/{id}/profiles' : 'GET /api/segments/{id}/profiles';
    this.#source = `klaviyo:${this.#kind}/${id}`;
    this.#previous = config.incremental ? parseWatermark(ctx.watermark) : undefined;
    this.#high = new HighWater(this.#previous);
    this.boundedRun = ctx.limit !== undefined;
  }

  watermark(): KlaviyoWatermark | undefined {
    return this.#high.value();
  }

  async close(): Promise<void> {
    const c = this.#connection;
    this.#connection = undefined;
    await c?.close();
  }

  #client(): KlaviyoClient {
    if (this.#options.client) return this.#options.client;
    if (!this.#connection) {
      const env = this.#ctx.env;
      const apiKey = env[KLAVIYO_API_KEY_ENV];
      if (!apiKey) {
        throw new EtlError('MISSING_API_KEY', `set ${KLAVIYO_API_KEY_ENV} to a Klaviyo private API key (or use --emulator)`, {
          context: { component: 'source' },
        });
      }
      this.#connection = connectKlaviyo(
        { baseUrl: env[KLAVIYO_BASE_URL_ENV] || undefined, revision: DEFAULT_REVISION, rateLimits: undefined, retries: 8, timeoutMs: 60_000 },
        { apiKey, stats: this.#ctx.stats ?? newStats(), logger: this.#ctx.logger, signal: this.#ctx.signal },
      );
    }
    return this.#connection.client;
  }

  /** Path + query of the first page. */
  #firstPage(filter: string | undefined, idsOnly = false): string {
    const params = new URLSearchParams();
    params.set('page[size]', String(idsOnly ? 100 : this.#config.pageSize));
    params.set('sort', 'joined_group_at');
    if (filter) params.set('filter', filter);
    // joined_group_at is a sparse field of its own: a fieldset that does not name it leaves it out
    if (idsOnly) params.set('fields[profile]', 'email,joined_group_at');
    else if (this.#config.subscriptions) params.set('additional-fields[profile]', 'subscriptions');
    return `/api/${this.#kind}s/${encodeURIComponent(this.#groupId)}/profiles?${params.toString()}`;
  }

  async #fetch(page: string): Promise<MemberPage> {
    const response: KlaviyoResponse = await this.#client().request(this.#endpoint, { path: page });
    if (!response.ok) {
      const detail = response.errors.map((e) => e.detail ?? e.title ?? e.code).join('; ') || `status ${response.status}`;
      throw new EtlError(
        response.status === 404 ? 'SOURCE_NOT_FOUND' : 'KLAVIYO_REQUEST_REJECTED',
        `Klaviyo answered ${response.status} listing the members of ${this.#kind} ${this.#groupId}: ${detail}`,
        { context: { component: 'source', source: this.#source, status: response.status } },
      );
    }
    const body = response.body as { data?: unknown; links?: { next?: unknown } } | undefined;
    const data = Array.isArray(body?.data) ? (body.data as MemberPage['data']) : [];
    const next = typeof body?.links?.next === 'string' && body.links.next !== '' ? relative(body.links.next) : undefined;
    return { data, next };
  }

  /** On resume: the ids already exported at the resume instant (they are part of the watermark this run ends with). */
  async #idsAt(iso: string): Promise<void> {
    const key = instantKey(iso);
    if (key === undefined) return;
    const filter = `greater-or-equal(joined_group_at,${iso}),less-or-equal(joined_group_at,${iso})`;
    let page: string | undefined = this.#firstPage(filter, true);
    while (page !== undefined) {
      const { data, next } = await this.#fetch(page);
      for (const r of data) {
        const at = r.attributes?.joined_group_at;
        if (typeof r.id === 'string' && typeof at === 'string' && instantKey(at) === key) this.#high.see(key, at, r.id);
      }
      page = next;
    }
  }

  async *records(): AsyncGenerator<SourceRecord> {
    const ctx = this.#ctx;
    const resume = readCursor(ctx.startAfter);
    let seq = ctx.startAfter ? ctx.startAfter.seq + 1 : 0;
    let page: string | undefined;
    let skip: KlaviyoCursor | undefined;
    if (resume) {
      page = resume.page;
      skip = resume;
      if (resume.joined_group_at) await this.#idsAt(resume.joined_group_at);
    } else {
      const prev = this.#previous;
      page = this.#firstPage(prev ? `greater-or-equal(joined_group_at,${prev.joined_group_at})` : undefined);
    }
    const previous = new HighWater(this.#previous);
    let yielded = 0;
    while (page !== undefined) {
      if (ctx.signal?.aborted) return;
      const current = page;
      const { data, next } = await this.#fetch(current);
      let from = 0;
      if (skip) {
        const byId = skip.id ? data.findIndex((r) => r.id === skip!.id) : -1;
        if (byId < 0) {
          ctx.logger.warn('resume: the last exported member is not on its page any more; resuming by index', {
            source: this.#source,
            index: skip.index,
          });
        }
        from = (byId >= 0 ? byId : skip.index) + 1;
        skip = undefined;
      }
      for (let index = from; index < data.length; index++) {
        const resource = data[index]!;
        const id = typeof resource.id === 'string' ? resource.id : '';
        const at = resource.attributes?.joined_group_at;
        const iso = typeof at === 'string' ? at : '';
        const key = instantKey(iso);
        if (key !== undefined && id && previous.covers(key, id)) continue; // exported by an earlier run
        if (ctx.limit !== undefined && yielded >= ctx.limit) return;
        const cursor: KlaviyoCursor = { page: current, index, id, joined_group_at: iso };
        const pos: SourcePosition = { seq: seq++, source: this.#source, cursor: { ...cursor } };
        const row = flattenProfile(resource);
        if (key !== undefined && id) this.#high.see(key, iso, id);
        yielded++;
        if (!id || key === undefined) {
          yield {
            pos,
            row,
            error: { code: 'INVALID_VALUE', message: `member without ${id ? 'a valid joined_group_at' : 'an id'}` },
          };
        } else {
          yield { pos, row };
        }
      }
      page = next;
    }
  }
}

/** A full `links.next` URL → its path and query (the client adds the origin; the origin is never stored). */
function relative(link: string): string {
  try {
    const u = new URL(link);
    return u.pathname + u.search;
  } catch {
    return link;
  }
}

/** Create a list/segment member reader (the registry's `create`, plus test options). */
export function createKlaviyoReader(config: KlaviyoSourceConfig, ctx: ExtractContext, options: KlaviyoReaderOptions = {}): KlaviyoReader {
  return new KlaviyoSourceReader(config, ctx, options);
}

export const klaviyoSource: SourceDefinition<typeof KlaviyoSource> = {
  type: 'klaviyo',
  summary: 'Members of a Klaviyo list or segment (exports), incremental on joined_group_at, resumable by page cursor.',
  config: KlaviyoSource,
  capabilities: { yields: 'klaviyo-profiles', readsKlaviyo: true },
  create(config: KlaviyoSourceConfig, ctx: ExtractContext): KlaviyoReader {
    return createKlaviyoReader(config, ctx);
  },
};
