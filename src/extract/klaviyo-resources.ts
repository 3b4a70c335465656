import type { KlaviyoSourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { EndpointKey } from '../klaviyo/endpoints.js';

/*
 * What each `resource:` of the klaviyo source reads: the collection path, the endpoint key its requests are paced
 * under, the largest page, the time attribute that orders and bounds it (and how it may be filtered), the fixed
 * query parameters, and how one JSON:API resource (with what `included` holds for it) becomes one flat row.
 *
 * Rows: `id`, then the attributes flattened to dotted keys (`location.city`, `event_properties.Value`,
 * `subscriptions.email.marketing.consent`). A to-one relationship gives `<name>.id` (`profile.id`, `metric.id`);
 * an included resource adds its attributes under the same prefix (`profile.email`, `metric.name`). A to-many
 * relationship that was included (a campaign's messages, a flow's actions) is one key holding a JSON array of the
 * flattened related rows (`messages`, `actions`).
 */

/** A JSON:API resource object as a collection returns it. */
export interface ApiResource {
  type?: unknown;
  id?: unknown;
  attributes?: Record<string, unknown>;
  relationships?: Record<string, { data?: unknown }>;
}

/** The time attribute a resource is read by, and the filter operators Klaviyo allows on it. */
export interface TimeField {
  /** Attribute name (also the `sort` value and the filter field). */
  field: string;
  /**
   * `range`: greater-or-equal and less-than; `open`: greater-than and less-than only (GET /api/profiles); `lower`:
   * greater-than only (lists, segments), so a range is cut client-side and the resource is read as one range.
   */
  ops: 'range' | 'open' | 'lower';
}

/** One independently read stream of a resource: a fixed filter (one metric, one channel) or none. */
export interface ResourceStream {
  /** Condition joined to the time conditions, e.g. `equals(metric_id,"AbC")`. */
  filter?: string;
}

/** How a configured klaviyo source reads. */
export interface ResourcePlan {
  /** `klaviyo:events`, `klaviyo:list/<id>`: the records' `pos.source`. */
  source: string;
  endpoint: EndpointKey;
  path: string;
  /** `page[size]` to ask for; undefined: the endpoint takes none. */
  pageSize: number | undefined;
  time: TimeField | undefined;
  streams: ResourceStream[];
  /** Fixed query parameters (fields, include, additional-fields). */
  params: Record<string, string>;
  /** The row of one resource of a page. */
  row(resource: ApiResource, included: IncludedIndex): Record<string, unknown>;
  /**
   * Reads what a page's resources need besides the page (a flow action's messages) and adds it to `included` (and
   * the relationships naming it), before the page's rows are made. Its requests are paced like the page's.
   */
  expand?(page: { included: ApiResource[] }, get: (endpoint: EndpointKey, path: string) => Promise<{ data: ApiResource[]; next: string | undefined }>): Promise<void>;
}

/** Included resources of a page by `type:id`. */
export type IncludedIndex = Map<string, ApiResource>;

/** The `included` array of a page → lookup by type and id. */
export function indexIncluded(included: unknown): IncludedIndex {
  const index: IncludedIndex = new Map();
  if (!Array.isArray(included)) return index;
  for (const r of included as ApiResource[]) {
    if (r && typeof r.type === 'string' && typeof r.id === 'string') index.set(`${r.type}:${r.id}`, r);
  }
  return index;
}

/**
 * Dotted keys already made, by prefix and key. Every record of a page repeats the same keys
 * (`event_properties.ProductID`, …): building each one again per record (a new string, hashed again when it becomes
 * a property name) made flattening a page of 1,000 events 2–3 times slower (2–4 ms against ~1 ms, measured on a
 * generated events page), and it was the export's largest cost after the JSON itself. Bounded: keys come from the data.
 */
const dottedKeys = new Map<string, Map<string, string>>();
let dottedKeyCount = 0;
const MAX_DOTTED_KEYS = 50_000;

function dottedKey(prefix: string, key: string): string {
  let byKey = dottedKeys.get(prefix);
  const known = byKey?.get(key);
  if (known !== undefined) return known;
  const full = `${prefix}.${key}`;
  if (dottedKeyCount < MAX_DOTTED_KEYS) {
    if (!byKey) dottedKeys.set(prefix, (byKey = new Map()));
    byKey.set(key, full);
    dottedKeyCount++;
  }
  return full;
}

/** Adds `value`'s leaves to `row` under dotted keys below `prefix` (arrays and scalars are leaves). */
export function flattenInto(row: Record<string, unknown>, prefix: string, value: unknown): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
    // for…in over own keys (JSON.parse makes no inherited enumerable ones): Object.entries' arrays per object cost GC
    let empty = true;
    for (const k in value) {
      if (!Object.hasOwn(value, k)) continue;
      empty = false;
      flattenInto(row, prefix ? dottedKey(prefix, k) : k, (value as Record<string, unknown>)[k]);
    }
    if (empty && prefix) row[prefix] = undefined;
    return;
  }
  if (prefix) row[prefix] = value;
}

/** A JSON:API profile resource → one flat row: `id`, attributes with nested objects as dotted keys. */
export function flattenProfile(resource: { id?: unknown; attributes?: unknown }): Record<string, unknown> {
  const row: Record<string, unknown> = { id: resource.id };
  flattenInto(row, '', resource.attributes ?? {});
  return row;
}

/**
 * A resource's relationships: to-one as `<name>.id` (+ the included attributes), to-many included as JSON arrays
 * (whose items carry their own to-many relationships the same way, one level down: a flow's actions' messages).
 */
function flattenRelated(row: Record<string, unknown>, resource: ApiResource, included: IncludedIndex, many: Record<string, string>, depth = 0): void {
  for (const [name, rel] of Object.entries(resource.relationships ?? {})) {
    const data = rel?.data;
    if (Array.isArray(data)) {
      const key = many[name];
      if (key === undefined) continue;
      row[key] = data.map((d: { type?: unknown; id?: unknown }) => {
        const r = included.get(`${String(d.type)}:${String(d.id)}`);
        if (!r) return { id: d.id };
        const item = flattenProfile(r);
        if (depth < 1) flattenRelated(item, { relationships: onlyMany(r.relationships) }, included, many, depth + 1);
        return item;
      });
    } else if (data && typeof data === 'object') {
      const d = data as { type?: unknown; id?: unknown };
      row[dottedKey(name, 'id')] = d.id;
      // a page without `included` (events without `include:`): no lookup key to build per record
      const r = included.size === 0 ? undefined : included.get(`${String(d.type)}:${String(d.id)}`);
      if (r) flattenInto(row, name, r.attributes ?? {});
    }
  }
}

/** The to-many relationships of a resource (the to-one ones of a nested item would only repeat its parent). */
function onlyMany(relationships: ApiResource['relationships']): ApiResource['relationships'] {
  return Object.fromEntries(Object.entries(relationships ?? {}).filter(([, r]) => Array.isArray(r?.data)));
}

/** Flows: each included action's messages (GET /api/flow-actions/{id}/flow-messages, every page). */
const expandFlowMessages: NonNullable<ResourcePlan['expand']> = async (page, get) => {
  for (const action of page.included.filter((r) => r.type === 'flow-action' && typeof r.id === 'string')) {
    const messages: ApiResource[] = [];
    let path: string | undefined = `/api/flow-actions/${encodeURIComponent(action.id as string)}/flow-messages?page[size]=50`;
    while (path !== undefined) {
      const got = await get('GET /api/flow-actions/{id}/flow-messages', path);
      messages.push(...got.data);
      path = got.next;
    }
    action.relationships = { ...action.relationships, 'flow-messages': { data: messages.map((m) => ({ type: m.type, id: m.id })) } };
    page.included.push(...messages);
  }
};

function generic(many: Record<string, string> = {}): ResourcePlan['row'] {
  return (resource, included) => {
    const row = flattenProfile(resource);
    flattenRelated(row, resource, included, many);
    return row;
  };
}

/** Sparse profile fieldset that keeps the time attribute the reader orders by. */
function profileFields(config: KlaviyoSourceConfig, params: Record<string, string>, keep: string): void {
  if (config.fields) params['fields[profile]'] = [...new Set([...config.fields, keep])].join(',');
  const extra = [config.subscriptions ? 'subscriptions' : '', config.predictiveAnalytics ? 'predictive_analytics' : ''].filter(Boolean);
  if (extra.length > 0) params['additional-fields[profile]'] = extra.join(',');
}

function pageSize(config: KlaviyoSourceConfig, max: number): number {
  if (config.pageSize !== undefined && config.pageSize > max) {
    throw new EtlError('CONFIG_RULE', `pageSize ${config.pageSize} is more than ${config.resource} allow (${max})`, { context: { component: 'source' } });
  }
  return config.pageSize ?? max;
}

/** Klaviyo lists archived campaigns and flows only under `equals(archived,true)`: both are read. */
const ARCHIVED = [false, true] as const;

/** Largest `page[size]` per resource (Klaviyo's spec, revision 2026-07-15). */
export const MAX_PAGE: Readonly<Record<KlaviyoSourceConfig['resource'], number | undefined>> = {
  members: 100,
  events: 1000,
  profiles: 100,
  lists: 10,
  segments: 10,
  metrics: undefined,
  campaigns: 100,
  flows: 50,
  templates: 10,
};

/**
 * The plan of a configured source. `metricIds`: the events' metric ids, resolved from `metrics:` by the caller
 * (names need a request).
 */
export function resourcePlan(config: KlaviyoSourceConfig, metricIds?: string[]): ResourcePlan {
  const size = MAX_PAGE[config.resource] === undefined ? undefined : pageSize(config, MAX_PAGE[config.resource]!);
  const base = { pageSize: size, streams: [{}] as ResourceStream[], params: {} as Record<string, string>, row: generic() };
  switch (config.resource) {
    case 'members': {
      const kind = config.list !== undefined ? 'list' : 'segment';
      const id = config.list ?? config.segment;
      if (id === undefined) throw new EtlError('CONFIG_RULE', 'resource members needs list or segment', { context: { component: 'source' } });
      const plan: ResourcePlan = {
        ...base,
        source: `klaviyo:${kind}/${id}`,
        endpoint: kind === 'list' ? 'GET /api/lists/{id}/profiles' : 'GET /api/segments/{id}/profiles',
        path: `/api/${kind}s/${encodeURIComponent(id)}/profiles`,
        time: { field: 'joined_group_at', ops: 'range' },
      };
      profileFields(config, plan.params, 'joined_group_at');
      return plan;
    }
    case 'profiles': {
      const plan: ResourcePlan = { ...base, source: 'klaviyo:profiles', endpoint: 'GET /api/profiles', path: '/api/profiles', time: { field: config.by, ops: 'open' } };
      profileFields(config, plan.params, config.by);
      return plan;
    }
    case 'events': {
      const params: Record<string, string> = {};
      if (config.include && config.include.length > 0) params.include = [...new Set(config.include)].join(',');
      const streams = metricIds ? metricIds.map((m) => ({ filter: `equals(metric_id,${JSON.stringify(m)})` })) : [{}];
      return { ...base, source: 'klaviyo:events', endpoint: 'GET /api/events', path: '/api/events', time: { field: 'datetime', ops: 'range' }, streams, params };
    }
    case 'lists':
    case 'segments':
      return {
        ...base,
        source: `klaviyo:${config.resource}`,
        endpoint: config.resource === 'lists' ? 'GET /api/lists' : 'GET /api/segments',
        path: `/api/${config.resource}`,
        time: { field: 'updated', ops: 'lower' },
      };
    case 'metrics':
      return { ...base, source: 'klaviyo:metrics', endpoint: 'GET /api/metrics', path: '/api/metrics', time: undefined };
    case 'campaigns': {
      // Klaviyo lists the campaigns of one channel per request (a channel filter is required)
      const channels = config.channels ?? ['email', 'sms', 'mobile_push'];
      return {
        ...base,
        source: 'klaviyo:campaigns',
        endpoint: 'GET /api/campaigns',
        path: '/api/campaigns',
        time: { field: 'updated_at', ops: 'range' },
        // archived campaigns are listed only when asked for: both, per channel
        streams: [...new Set(channels)].flatMap((c) => ARCHIVED.map((a) => ({ filter: `equals(messages.channel,'${c}'),equals(archived,${a})` }))),
        params: { include: 'campaign-messages' },
        row: generic({ 'campaign-messages': 'messages' }),
      };
    }
    case 'flows':
      return {
        ...base,
        source: 'klaviyo:flows',
        endpoint: 'GET /api/flows',
        path: '/api/flows',
        time: { field: 'updated', ops: 'range' },
        streams: ARCHIVED.map((a) => ({ filter: `equals(archived,${a})` })),
        params: { include: 'flow-actions' },
        row: generic({ 'flow-actions': 'actions', 'flow-messages': 'messages' }),
        expand: expandFlowMessages,
      };
    case 'templates':
      return { ...base, source: 'klaviyo:templates', endpoint: 'GET /api/templates', path: '/api/templates', time: { field: 'updated', ops: 'range' } };
  }
}
