/**
 * Query-parameter rules of every operation the emulator serves, as the spec (revision 2026-07-15) states them:
 * allowed `fields[type]` values, `additional-fields[type]` values, `include` values, filter fields and operators
 * (from each `filter` parameter's description), `sort` values and `page[size]` bounds.
 * test/unit/emulator/params.test.ts checks this table against the official spec's copy in test/spec/klaviyo-openapi/,
 * so a drift from the spec fails a test. The server applies `checkQuery` to every `/api` request before its handler runs;
 * handlers take their filter tables from here (`QUERY_RULES[endpoint].filter`).
 */
import { TIERS, type EndpointKey, type TierLimits } from '../klaviyo/endpoints.js';
import { CATALOG_QUERY_RULES } from './catalog-params.js';
import { ApiError, invalidParam } from './http.js';
import type { FilterOp } from './query.js';

export interface QueryRules {
  /** `fields[type]` → allowed values. A type not listed is itself an error. */
  fields?: Readonly<Record<string, readonly string[]>>;
  /** `additional-fields[type]` → allowed values. */
  additional?: Readonly<Record<string, readonly string[]>>;
  /** Allowed `include` values. */
  include?: readonly string[];
  /** Filterable fields → allowed operators (the emulator's parser; see UNSUPPORTED_FILTERS for what it lacks). */
  filter?: Readonly<Record<string, readonly FilterOp[]>>;
  /** Allowed `sort` values. */
  sort?: readonly string[];
  /** `page[size]` default and maximum (minimum is 1). */
  page?: { def: number; max: number };
}

/**
 * Spec filters the emulator does not accept (→ 400, a documented divergence): `has(profile)` / `has(metric)` on
 * events (unary operator) and the suppression filters on profiles.
 */
export const UNSUPPORTED_FILTERS: Readonly<Record<string, readonly string[]>> = {
  'GET /api/events': ['profile', 'metric'],
  'GET /api/profiles': [
    'subscriptions.email.marketing.list_suppressions.reason',
    'subscriptions.email.marketing.list_suppressions.timestamp',
    'subscriptions.email.marketing.list_suppressions.list_id',
    'subscriptions.email.marketing.suppression.reason',
    'subscriptions.email.marketing.suppression.timestamp',
  ],
};

/** Spec sort values the emulator does not accept (→ 400, documented): the suppression timestamps on profiles. */
export const UNSUPPORTED_SORTS: Readonly<Record<string, readonly string[]>> = {
  'GET /api/profiles': [
    'subscriptions.email.marketing.list_suppressions.timestamp',
    '-subscriptions.email.marketing.list_suppressions.timestamp',
    'subscriptions.email.marketing.suppression.timestamp',
    '-subscriptions.email.marketing.suppression.timestamp',
  ],
};

const sub = (prefix: string, leaves: readonly string[]): string[] => [prefix, ...leaves.map((l) => `${prefix}.${l}`)];
const LOCATION = sub('location', ['address1', 'address2', 'city', 'country', 'ip', 'latitude', 'longitude', 'region', 'timezone', 'zip']);
const PREDICTIVE = sub('predictive_analytics', [
  'average_days_between_orders',
  'average_order_value',
  'churn_probability',
  'expected_date_of_next_order',
  'historic_clv',
  'historic_number_of_orders',
  'predicted_clv',
  'predicted_number_of_orders',
  'ranked_channel_affinity',
  'total_clv',
]);
const OPT_IN = ['can_receive', 'consent', 'consent_timestamp', 'created_timestamp', 'last_updated', 'metadata', 'valid_until'];
const SMS = ['consent', 'consent_timestamp', 'last_updated', 'method', 'method_detail'];
const SUBSCRIPTIONS = [
  'subscriptions',
  'subscriptions.email',
  ...sub('subscriptions.email.marketing', [
    'can_receive_email_marketing',
    'consent',
    'consent_timestamp',
    'custom_method_detail',
    'double_optin',
    'last_updated',
    'list_suppressions',
    'method',
    'method_detail',
    'suppression',
  ]),
  ...sub('subscriptions.email.open_tracking', OPT_IN),
  'subscriptions.mobile_push',
  ...sub('subscriptions.mobile_push.marketing', ['can_receive_push_marketing', 'consent', 'consent_timestamp']),
  'subscriptions.sms',
  ...sub('subscriptions.sms.marketing', ['can_receive_sms_marketing', ...SMS]),
  ...sub('subscriptions.sms.transactional', ['can_receive_sms_transactional', ...SMS]),
  'subscriptions.whatsapp',
  ...['conversational', 'marketing', 'transactional'].flatMap((c) => sub(`subscriptions.whatsapp.${c}`, [...OPT_IN, 'phone_number'])),
];
const PROFILE_BASIC = ['created', 'email', 'external_id', 'first_name', 'id', 'image', 'last_event_date', 'last_name', 'locale', ...LOCATION, 'organization', 'phone_number'];
/** `fields[profile]` of the profile endpoints. */
export const PROFILE_FIELDS: readonly string[] = [...PROFILE_BASIC, ...PREDICTIVE, 'properties', ...SUBSCRIPTIONS, 'title', 'updated'];
/** `fields[profile]` of list/segment members (adds `joined_group_at`). */
const MEMBER_FIELDS: readonly string[] = [...PROFILE_FIELDS, 'joined_group_at'];
/** `fields[profile]` of events' included profiles (no consent or predictive analytics). */
const EVENT_PROFILE_FIELDS: readonly string[] = [...PROFILE_BASIC, 'properties', 'title', 'updated'];
const PUSH_TOKEN_FIELDS = [
  'background',
  'created',
  'enablement_status',
  'id',
  ...sub('metadata', ['app_build', 'app_id', 'app_name', 'app_version', 'device_id', 'device_model', 'environment', 'klaviyo_sdk', 'manufacturer', 'os_name', 'os_version', 'sdk_version']),
  'platform',
  'recorded_date',
  'token',
  'vendor',
];
const LIST_FIELDS = ['created', 'id', 'name', 'opt_in_process', 'updated'];
const SEGMENT_FIELDS = ['created', 'definition', 'definition.condition_groups', 'id', 'is_active', 'is_processing', 'is_starred', 'name', 'updated'];
const FLOW_FIELDS = ['archived', 'created', 'id', 'name', 'status', 'trigger_type', 'updated'];
const TAG_FIELDS = ['id', 'name'];
const METRIC_FIELDS = ['created', 'id', 'integration', 'name', 'updated'];
const EVENT_FIELDS = ['datetime', 'event_properties', 'id', 'timestamp', 'uuid'];
const JOB_FIELDS = ['completed_at', 'completed_count', 'created_at', 'expires_at', 'failed_count', 'id', 'started_at', 'status', 'total_count'];
const PROFILE_ADDITIONAL = { profile: ['subscriptions', 'predictive_analytics'] };
const EQ_ANY = ['equals', 'any'] as const;
const COMPARE = ['greater-or-equal', 'greater-than', 'less-or-equal', 'less-than'] as const;
const MEMBER_FILTERS = { email: EQ_ANY, phone_number: EQ_ANY, push_token: EQ_ANY, _kx: ['equals'], joined_group_at: COMPARE } as const;
const MEMBER_SORT = ['joined_group_at', '-joined_group_at'];
const GROUP_SORT = ['created', '-created', 'id', '-id', 'name', '-name', 'updated', '-updated'];
const PAGE_100 = { def: 20, max: 100 };
const PAGE_10 = { def: 10, max: 10 };

export const QUERY_RULES: Readonly<Record<EndpointKey, QueryRules>> = {
  'GET /api/profiles': {
    fields: { profile: PROFILE_FIELDS, conversation: ['channel', 'id'], 'push-token': PUSH_TOKEN_FIELDS },
    additional: PROFILE_ADDITIONAL,
    include: ['conversations', 'push-tokens'],
    filter: {
      id: EQ_ANY,
      email: EQ_ANY,
      phone_number: EQ_ANY,
      external_id: EQ_ANY,
      _kx: ['equals'],
      created: ['greater-than', 'less-than'],
      updated: ['greater-than', 'less-than'],
    },
    sort: ['created', '-created', 'email', '-email', 'id', '-id', 'updated', '-updated'],
    page: PAGE_100,
  },
  'POST /api/profiles': { fields: { profile: PROFILE_FIELDS }, additional: PROFILE_ADDITIONAL },
  'GET /api/profiles/{id}': {
    fields: { profile: PROFILE_FIELDS, conversation: ['channel', 'id'], list: LIST_FIELDS, 'push-token': PUSH_TOKEN_FIELDS, segment: SEGMENT_FIELDS },
    additional: PROFILE_ADDITIONAL,
    include: ['conversations', 'lists', 'push-tokens', 'segments'],
  },
  'PATCH /api/profiles/{id}': { fields: { profile: PROFILE_FIELDS }, additional: PROFILE_ADDITIONAL },
  'POST /api/profile-import': { fields: { profile: PROFILE_FIELDS }, additional: PROFILE_ADDITIONAL },
  'GET /api/profile-bulk-import-jobs': {
    fields: { 'profile-bulk-import-job': JOB_FIELDS },
    filter: { status: EQ_ANY },
    sort: ['created_at', '-created_at'],
    page: PAGE_100,
  },
  'POST /api/profile-bulk-import-jobs': { fields: { 'profile-bulk-import-job': JOB_FIELDS } },
  'GET /api/profile-bulk-import-jobs/{job_id}': { fields: { list: LIST_FIELDS, 'profile-bulk-import-job': JOB_FIELDS }, include: ['lists'] },
  'GET /api/profile-bulk-import-jobs/{id}/import-errors': {
    fields: { 'import-error': ['code', 'detail', 'id', 'original_payload', 'source', 'source.pointer', 'title'] },
    page: PAGE_100,
  },
  'GET /api/profile-bulk-import-jobs/{id}/profiles': { fields: { profile: PROFILE_FIELDS }, additional: PROFILE_ADDITIONAL, page: PAGE_100 },
  'GET /api/profile-bulk-import-jobs/{id}/relationships/profiles': { page: PAGE_100 },
  'GET /api/events': {
    fields: { attribution: ['id'], event: EVENT_FIELDS, metric: METRIC_FIELDS, profile: EVENT_PROFILE_FIELDS },
    include: ['attributions', 'metric', 'profile'],
    filter: { metric_id: ['equals'], profile_id: ['equals'], datetime: COMPARE, timestamp: COMPARE },
    sort: ['datetime', '-datetime', 'timestamp', '-timestamp'],
    page: { def: 200, max: 1000 },
  },
  'POST /api/events': {},
  'GET /api/events/{id}': {
    fields: { attribution: ['id'], event: EVENT_FIELDS, metric: METRIC_FIELDS, profile: EVENT_PROFILE_FIELDS },
    include: ['attributions', 'metric', 'profile'],
  },
  'POST /api/event-bulk-create-jobs': {},
  'GET /api/metrics': {
    fields: { flow: FLOW_FIELDS, metric: METRIC_FIELDS },
    include: ['flow-triggers'],
    filter: { 'integration.name': ['equals'], 'integration.category': ['equals'] },
  },
  'GET /api/metrics/{id}': { fields: { flow: FLOW_FIELDS, metric: METRIC_FIELDS }, include: ['flow-triggers'] },
  'POST /api/profile-subscription-bulk-create-jobs': {},
  'POST /api/profile-subscription-bulk-delete-jobs': {},
  'POST /api/profile-suppression-bulk-create-jobs': {
    fields: { 'profile-suppression-bulk-create-job': ['completed_at', 'completed_count', 'created_at', 'id', 'skipped_count', 'status', 'total_count'] },
  },
  'GET /api/lists': {
    fields: { flow: FLOW_FIELDS, list: LIST_FIELDS, tag: TAG_FIELDS },
    include: ['flow-triggers', 'tags'],
    filter: { name: EQ_ANY, id: EQ_ANY, created: ['greater-than'], updated: ['greater-than'] },
    sort: GROUP_SORT,
    page: PAGE_10,
  },
  'POST /api/lists': { fields: { list: LIST_FIELDS } },
  'GET /api/lists/{id}': {
    fields: { flow: FLOW_FIELDS, list: [...LIST_FIELDS, 'profile_count'], tag: TAG_FIELDS },
    additional: { list: ['profile_count'] },
    include: ['flow-triggers', 'tags'],
  },
  'GET /api/lists/{id}/profiles': {
    fields: { profile: MEMBER_FIELDS },
    additional: PROFILE_ADDITIONAL,
    filter: MEMBER_FILTERS,
    sort: MEMBER_SORT,
    page: PAGE_100,
  },
  'GET /api/lists/{id}/relationships/profiles': { filter: MEMBER_FILTERS, sort: MEMBER_SORT, page: PAGE_100 },
  'POST /api/lists/{id}/relationships/profiles': {},
  'DELETE /api/lists/{id}/relationships/profiles': {},
  'GET /api/segments': {
    fields: { flow: FLOW_FIELDS, segment: SEGMENT_FIELDS, tag: TAG_FIELDS },
    include: ['flow-triggers', 'tags'],
    filter: { name: EQ_ANY, id: EQ_ANY, created: ['greater-than'], updated: ['greater-than'], is_active: EQ_ANY, is_starred: ['equals'] },
    sort: GROUP_SORT,
    page: PAGE_10,
  },
  'GET /api/segments/{id}': {
    fields: { flow: FLOW_FIELDS, segment: [...SEGMENT_FIELDS, 'profile_count'], tag: TAG_FIELDS },
    additional: { segment: ['profile_count'] },
    include: ['flow-triggers', 'tags'],
  },
  'GET /api/segments/{id}/profiles': {
    fields: { profile: MEMBER_FIELDS },
    additional: PROFILE_ADDITIONAL,
    filter: { profile_id: EQ_ANY, ...MEMBER_FILTERS },
    sort: MEMBER_SORT,
    page: PAGE_100,
  },
  ...CATALOG_QUERY_RULES,
};

const BRACKET = /^(fields|additional-fields)\[([^\]]*)\]$/;

/** Comma-separated values of an array parameter (explode: false), trimmed, empties dropped. */
function values(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * Reject what Klaviyo rejects in the query string of an operation with these rules: unknown `fields[...]` /
 * `additional-fields[...]` types or values, unknown `include` values, a `sort` outside the enum, `page[size]`
 * outside 1..max (or on an operation without paging: ignored). Filters are checked by the handler (parseFilter).
 */
export function checkQuery(rules: QueryRules, query: URLSearchParams): void {
  for (const [name, raw] of query) {
    const m = BRACKET.exec(name);
    if (m) {
      const table = m[1] === 'fields' ? rules.fields : rules.additional;
      const allowed = table?.[m[2]!];
      if (!allowed) throw new ApiError(400, invalidParam(`'${name}' is not a valid parameter for this endpoint.`, name));
      for (const v of values(raw)) {
        if (!allowed.includes(v)) {
          const what = m[1] === 'fields' ? 'field' : 'additional field';
          throw new ApiError(400, invalidParam(`'${v}' is not a valid ${what} for '${m[2]}'. Allowed: ${allowed.join(', ')}.`, name));
        }
      }
    } else if (name === 'include') {
      if (!rules.include) throw new ApiError(400, invalidParam("'include' is not a valid parameter for this endpoint.", 'include'));
      for (const v of values(raw)) {
        if (!rules.include.includes(v)) throw new ApiError(400, invalidParam(`'${v}' is not an allowed include parameter for this resource.`, 'include'));
      }
    } else if (name === 'sort') {
      if (!rules.sort) throw new ApiError(400, invalidParam("'sort' is not a valid parameter for this endpoint.", 'sort'));
      if (!rules.sort.includes(raw)) throw new ApiError(400, invalidParam(`'${raw}' is not a valid sort. Allowed: ${rules.sort.join(', ')}.`, 'sort'));
    } else if (name === 'filter') {
      if (!rules.filter) throw new ApiError(400, invalidParam("'filter' is not a valid parameter for this endpoint.", 'filter'));
    } else if (name === 'page[size]' && rules.page) {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > rules.page.max) {
        throw new ApiError(400, invalidParam(`Page size must be an integer between 1 and ${rules.page.max}.`, 'page[size]'));
      }
    }
  }
}

/** A stricter limit that a request also counts against when a query parameter asks for costly extra data. */
export interface ExtraLimit {
  /** Query parameter (`additional-fields[profile]`, `include`) and the value that triggers the limit. */
  param: string;
  value: string;
  tier: TierLimits;
}

/**
 * The extra limits stated in the operations' descriptions (revision 2026-07-15): `predictive_analytics` costs
 * 10/s, 150/m on profiles and list members; `include=lists` / `include=segments` on one profile cost 1/s, 15/m.
 */
export const EXTRA_LIMITS: Readonly<Partial<Record<EndpointKey, readonly ExtraLimit[]>>> = {
  'GET /api/profiles': [{ param: 'additional-fields[profile]', value: 'predictive_analytics', tier: TIERS.M }],
  'GET /api/lists/{id}/profiles': [{ param: 'additional-fields[profile]', value: 'predictive_analytics', tier: TIERS.M }],
  'GET /api/lists/{id}/relationships/profiles': [{ param: 'additional-fields[profile]', value: 'predictive_analytics', tier: TIERS.M }],
  'GET /api/profiles/{id}': [
    { param: 'include', value: 'lists', tier: TIERS.XS },
    { param: 'include', value: 'segments', tier: TIERS.XS },
  ],
};

/** The windows a request counts against: the endpoint's own, then each extra limit its query triggers. */
export function limitKeys(endpoint: EndpointKey, tier: TierLimits, query: URLSearchParams): { key: string; tier: TierLimits }[] {
  const out = [{ key: endpoint as string, tier }];
  const extras = EXTRA_LIMITS[endpoint];
  if (extras && query.size > 0) {
    for (const x of extras) {
      const raw = query.get(x.param);
      if (raw !== null && values(raw).includes(x.value)) out.push({ key: `${endpoint} ${x.param}=${x.value}`, tier: x.tier });
    }
  }
  return out;
}
