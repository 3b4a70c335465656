import { durationMs } from '../config/operations.js';
import { KlaviyoSource, type KlaviyoSourceConfig } from '../config/schema.js';
import { DEFAULT_REVISION, pacingLimits } from '../klaviyo/endpoints.js';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import { newStats } from '../core/stats.js';
import { accountTag, connectKlaviyo, type KlaviyoConnection } from '../klaviyo/connect.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import type { ExtractContext, SourceReader } from './types.js';
import type { SourceDefinition } from '../components/types.js';
import { instantKey, RangeReader, readRangeCursor } from './klaviyo-ranges.js';
import { resourcePlan, type ApiResource, type ResourcePlan } from './klaviyo-resources.js';

export { flattenProfile } from './klaviyo-resources.js';
export { instantKey } from './klaviyo-ranges.js';

/*
 * Klaviyo source (exports): `resource:` members of a list or segment, events, profiles, or the catalog (lists,
 * segments, metrics). Each record is one flat row (see klaviyo-resources.ts); a resource with a time attribute
 * (events `datetime`, profiles `updated`/`created`, members `joined_group_at`, lists/segments `updated`) is read
 * sorted by it, as several time ranges at once (klaviyo-ranges.ts), every request paced by the client's limiter.
 *
 * Incremental: the watermark is the run's last instant (the newest record when the run was planned) plus the ids
 * of the records exported at exactly that instant. The next run starts at that instant (events: `lookback` before
 * it) and drops what the watermark names, so records sharing the boundary instant are neither lost nor repeated.
 *
 * Resume: every record's position carries the state of all its ranges (see RangeCursor): a resumed run reads each
 * range from where it stopped, numbering `seq` from where the interrupted attempt stopped.
 */

/** API key and base URL come from these environment variables (the runner overrides them for `--emulator`). */
export const KLAVIYO_API_KEY_ENV = 'KLAVIYO_API_KEY';
export const KLAVIYO_BASE_URL_ENV = 'KLAVIYO_BASE_URL';

/** Incremental state of a klaviyo export, stored in the checkpoint after a successful run. */
export interface KlaviyoWatermark {
  /** The time attribute (`datetime`, `updated`, `joined_group_at`). */
  field: string;
  /** The run's last instant, as Klaviyo wrote it. */
  at: string;
  /** Ids of the records exported whose time is exactly that instant. */
  ids: string[];
}

/** A running klaviyo export. */
export interface KlaviyoReader extends SourceReader {
  watermark(): KlaviyoWatermark | undefined;
  /** True when the run is bounded by `limit` or `--since/--until` (its watermark must not be stored). */
  readonly boundedRun: boolean;
}

/** Options for tests and embedding: a client to use instead of one built from the environment. */
export interface KlaviyoReaderOptions {
  client?: KlaviyoClient;
}

/**
 * Requests in flight that fill an endpoint's burst window when each request takes this long: a 250 ms answer plus
 * what the client and a loaded server add (parsing the page, waiting for the consumer). At burst × 250 ms alone (19
 * for L) the members export sent ~50 requests/s of L's 75 (each took ~380 ms on a shared 2-core host), and the
 * first minute window of a run, often a short one, closed on a fraction of its allowance: one minute window more.
 */
const DESIGN_LATENCY_S = 0.4;
const MAX_DEFAULT_CONCURRENCY = 32;
/**
 * Records of the pages in flight at most, by default. A page of 1,000 events with their profiles is a few MB once
 * parsed, and the export pipeline writes far fewer rows per second than XL's burst would deliver: 300,000 events
 * with `include: [profile, metric]` took 57 s at peak RSS 217 MB with 4 ranges, 86 s at 302 MB with 16 (250 ms
 * latency not needed to show it: 50 ms, a loaded 2-core host), so events default to 4.
 */
const MAX_DEFAULT_RECORDS_IN_FLIGHT = 4_000;

/**
 * Default `concurrency`: the endpoint's burst allowance × 400 ms (tier M for `predictive_analytics`), at least 1, at
 * most 32 and at most 4,000 records of pages in flight (L: 30; M: 4; events at 1,000 per page: 4).
 */
export function defaultConcurrency(plan: Pick<ResourcePlan, 'endpoint' | 'pageSize'>, predictive = false): number {
  const burst = predictive ? 10 : (pacingLimits(plan.endpoint)?.burst ?? 10);
  const byMemory = Math.max(1, Math.floor(MAX_DEFAULT_RECORDS_IN_FLIGHT / (plan.pageSize ?? 100)));
  return Math.min(MAX_DEFAULT_CONCURRENCY, byMemory, Math.max(1, Math.ceil(burst * DESIGN_LATENCY_S)));
}

function parseWatermark(value: unknown): KlaviyoWatermark | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const w = value as Record<string, unknown>;
  // `joined_group_at`: the watermark of list/segment exports before `resource:` existed
  const at = typeof w.at === 'string' ? w.at : typeof w.joined_group_at === 'string' ? w.joined_group_at : undefined;
  if (at === undefined || instantKey(at) === undefined) return undefined;
  const ids = Array.isArray(w.ids) ? w.ids.filter((x): x is string => typeof x === 'string') : [];
  return { field: typeof w.field === 'string' ? w.field : 'joined_group_at', at, ids };
}

/** `since`/`until` text (a date-time with offset, or a date: midnight UTC) → microseconds. */
function boundKey(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const iso = /^\d{4}-\d\d-\d\d$/.test(text) ? `${text}T00:00:00Z` : /T\d\d:\d\d(Z|[+-])/i.test(text) ? text.replace(/(T\d\d:\d\d)/i, '$1:00') : text;
  const key = instantKey(iso);
  if (key === undefined) throw new EtlError('CONFIG_INVALID', `${what} ${JSON.stringify(text)} is not an ISO 8601 date-time with an offset`, { context: { component: 'source' } });
  return key;
}

const maxOf = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
const minOf = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

class KlaviyoSourceReader implements KlaviyoReader {
  readonly boundedRun: boolean;
  readonly #config: KlaviyoSourceConfig;
  readonly #ctx: ExtractContext;
  readonly #options: KlaviyoReaderOptions;
  readonly #previous: KlaviyoWatermark | undefined;
  #connection: KlaviyoConnection | undefined;
  #ranges: RangeReader | undefined;
  #field: string | undefined;

  constructor(config: KlaviyoSourceConfig, ctx: ExtractContext, options: KlaviyoReaderOptions) {
    this.#config = config;
    this.#ctx = ctx;
    this.#options = options;
    resourcePlan(config); // configuration errors before the first request
    this.#previous = config.incremental ? parseWatermark(ctx.watermark) : undefined;
    this.boundedRun = ctx.limit !== undefined || ctx.since !== undefined || ctx.until !== undefined;
  }

  watermark(): KlaviyoWatermark | undefined {
    const done = this.#ranges?.result();
    if (!this.#config.incremental || this.#field === undefined) return undefined;
    if (!done?.complete || done.last === null) return this.#previous;
    return { field: this.#field, at: done.last, ids: done.ids };
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
        { baseUrl: env[KLAVIYO_BASE_URL_ENV] || undefined, revision: DEFAULT_REVISION, rateLimits: this.#config.rateLimits, retries: 8, timeoutMs: 60_000 },
        {
          apiKey,
          stats: this.#ctx.stats ?? newStats(),
          logger: this.#ctx.logger,
          signal: this.#ctx.signal,
          // the account's limits are shared with the run's other processes (same prefix as the klaviyo destination)
          redis: this.#ctx.redisUrl ? { url: this.#ctx.redisUrl, prefix: `klaviyo-etl:${accountTag(apiKey)}` } : undefined,
        },
      );
    }
    return this.#connection.client;
  }

  /** `metrics:` names and ids → metric ids (GET /api/metrics, every page); undefined: every metric. */
  async #metricIds(): Promise<string[] | undefined> {
    const wanted = this.#config.metrics;
    if (!wanted || this.#config.resource !== 'events') return undefined;
    const byName = new Map<string, string>();
    const ids = new Set<string>();
    let path: string | undefined = '/api/metrics?fields[metric]=name';
    while (path !== undefined) {
      const response = await this.#client().request('GET /api/metrics', { path });
      if (!response.ok) throw new EtlError('KLAVIYO_REQUEST_REJECTED', `Klaviyo answered ${response.status} listing the metrics`, { context: { component: 'source', status: response.status } });
      const body = response.body as { data?: ApiResource[]; links?: { next?: unknown } };
      for (const m of body.data ?? []) {
        if (typeof m.id !== 'string') continue;
        ids.add(m.id);
        const name = m.attributes?.name;
        if (typeof name === 'string' && !byName.has(name)) byName.set(name, m.id);
      }
      const next = body.links?.next;
      const url = typeof next === 'string' && next !== '' ? new URL(next, 'http://localhost') : undefined;
      path = url ? url.pathname + url.search : undefined;
    }
    return wanted.map((m) => {
      const id = byName.get(m) ?? (ids.has(m) ? m : undefined);
      if (id === undefined) {
        throw new EtlError('SOURCE_NOT_FOUND', `no metric named ${JSON.stringify(m)} in this Klaviyo account (names are case-sensitive)`, {
          context: { component: 'source', source: 'klaviyo:events' },
        });
      }
      return id;
    });
  }

  async *records(): AsyncGenerator<SourceRecord> {
    yield* (await this.#reader()).records();
  }

  /** The records a page at a time (see RangeReader.batches). */
  async *batches(): AsyncGenerator<SourceRecord[]> {
    yield* (await this.#reader()).batches();
  }

  /** The range reader of this run (its plan needs the metric ids: a request). */
  async #reader(): Promise<RangeReader> {
    const config = this.#config;
    const ctx = this.#ctx;
    const plan = resourcePlan(config, await this.#metricIds());
    this.#field = plan.time?.field;
    const prev = this.#previous && this.#previous.field === plan.time?.field ? this.#previous : undefined;
    const lookback = config.lookback ? durationMs(config.lookback) * 1000 : 0;
    const prevKey = prev ? instantKey(prev.at)! : undefined;
    const prevIds = new Set(prev?.ids ?? []);
    const covered = prev && lookback === 0 ? (key: number, id: string) => key < prevKey! || (key === prevKey && prevIds.has(id)) : undefined;
    const lower = maxOf(maxOf(boundKey(config.since, 'since'), boundKey(ctx.since, '--since')), prevKey === undefined ? undefined : prevKey - lookback);
    const upper = minOf(boundKey(config.until, 'until'), boundKey(ctx.until, '--until'));
    const predictive = config.predictiveAnalytics && (config.resource === 'members' || config.resource === 'profiles');
    this.#ranges = new RangeReader({
      client: () => this.#client(),
      plan,
      concurrency: config.concurrency ?? defaultConcurrency(plan, predictive),
      lower,
      upper,
      covered,
      previousTop: prev && lookback === 0 ? { key: prevKey!, ids: prev.ids } : undefined,
      resume: readRangeCursor(ctx.startAfter),
      firstSeq: ctx.startAfter ? ctx.startAfter.seq + 1 : 0,
      limit: ctx.limit,
      signal: ctx.signal,
      what: `the ${config.resource === 'members' ? `members of ${plan.source.slice('klaviyo:'.length)}` : config.resource}`,
    });
    return this.#ranges;
  }
}

/** Create a klaviyo export reader (the registry's `create`, plus test options). */
export function createKlaviyoReader(config: KlaviyoSourceConfig, ctx: ExtractContext, options: KlaviyoReaderOptions = {}): KlaviyoReader {
  return new KlaviyoSourceReader(config, ctx, options);
}

export const klaviyoSource: SourceDefinition<typeof KlaviyoSource> = {
  type: 'klaviyo',
  summary:
    'Export from Klaviyo: list/segment members, events, profiles, lists, segments, metrics; incremental by time, read as several time ranges at once, resumable.',
  config: KlaviyoSource,
  capabilities: { yields: 'klaviyo-records', readsKlaviyo: true, cursorBounds: true },
  create(config: KlaviyoSourceConfig, ctx: ExtractContext): KlaviyoReader {
    return createKlaviyoReader(config, ctx);
  },
};
