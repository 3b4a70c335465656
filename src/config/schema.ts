import { z } from 'zod';
import { isKnownEncoding } from '../extract/encoding.js';
import { Field, FieldMap, FieldObject } from './field.js';
import { Where } from './where.js';

/*
 * The config schemas of the built-in components and of the pipeline's own sections: the single source of truth
 * for pipeline configuration. Each component's definition (src/extract, src/transform, src/destinations) names its
 * schema here, and src/config/pipeline.ts composes the pipeline schema from the registered definitions. Types are
 * inferred, `klaviyo-etl schema` prints the JSON Schema generated from it, and every object is strict (unknown keys
 * are errors). Cross-field rules that zod cannot express live in rules.ts.
 */

/** The longest delay a Node.js timer keeps (2^31 − 1 ms); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

// ---------------------------------------------------------------- sources

/** Names a CSV delimiter may be written as (a tab is hard to see, and `'\t'` in single quotes is two characters). */
const DELIMITER_NAMES: Readonly<Record<string, string>> = { tab: '\t', '\\t': '\t' };

/** The delimiter a `delimiter:` setting means: `tab` and `\t` (backslash, t) are a tab; anything else is itself. */
export function csvDelimiter(value: string): string {
  return DELIMITER_NAMES[value] ?? value;
}

const csvOptions = {
  delimiter: z
    .string()
    .min(1)
    .max(4)
    .default(',')
    .describe('Field delimiter, e.g. `;` or `|`; `tab` (or `\\t`) for a tab-separated file. @default ","'),
  quote: z.string().length(1).default('"').describe('Quote character. @default \'"\''),
  escape: z.string().length(1).optional().describe('Escape character inside quoted fields. @default the quote character'),
  header: z
    .union([z.literal(true), z.array(z.string()).min(1)])
    .default(true)
    .describe('`true`: the first line names the columns; or the list of column names when the file has no header.'),
  encoding: z
    .string()
    .refine(isKnownEncoding, { message: 'unknown encoding: use utf8, latin1, windows-1252, utf-16le or another name iconv-lite knows' })
    .default('utf8')
    .describe(
      'File encoding: `utf8`, `latin1`, `windows-1252` (Excel on Windows), `iso-8859-15`, `utf-16le`, `utf-16be`, `shift_jis`… (any encoding iconv-lite knows). A BOM at the start of a file overrides it (UTF-8, UTF-16LE/BE). Bytes that are not UTF-8 in a UTF-8 file reject their row (INVALID_ENCODING). @default utf8',
    ),
  relaxColumnCount: z
    .boolean()
    .default(false)
    .describe('Accept rows with a different number of fields than the header instead of rejecting them (CSV_RAGGED_ROW). @default false'),
};

const onChangedFile = z
  .enum(['refuse', 'reread'])
  .default('refuse')
  .describe(
    'What a resume does when the file it was reading changed since the interrupted attempt (size, modification time or content up to the checkpoint): `refuse` fails the run with SOURCE_CHANGED; `reread` reads the file again from its start. @default refuse',
  );

export const CsvSource = z
  .strictObject({
    type: z.literal('csv'),
    path: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe('File path or glob (or a list of them), relative to the pipeline file. `.gz` files are decompressed. Files are read in sorted path order.'),
    ...csvOptions,
    onChangedFile,
  })
  .describe('Local CSV files.');

export const NdjsonSource = z
  .strictObject({
    type: z.literal('ndjson'),
    path: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe('File path or glob (or a list), relative to the pipeline file; one JSON object per line; `.gz` decompressed.'),
    onChangedFile,
  })
  .describe('Local newline-delimited JSON files.');

export const PostgresSource = z
  .strictObject({
    type: z.literal('postgres'),
    url: z.string().min(1).describe('Connection URL, normally `${DATABASE_URL}`.'),
    table: z.string().min(1).optional().describe('Table (optionally schema-qualified) to read; use with `columns`.'),
    columns: z.array(z.string().min(1)).min(1).optional().describe('Columns to read from `table`. @default all columns'),
    query: z
      .string()
      .min(1)
      .optional()
      .describe('A SELECT to read instead of `table`. It is wrapped as a subquery so the cursor condition can be added.'),
    cursor: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Columns of the incremental cursor, in order (e.g. `[updated_at, id]`). Enables keyset paging and watermarks.'),
    lookback: z
      .string()
      .regex(/^\d+\s*(ms|s|m|h|d)$/)
      .optional()
      .describe('Re-read rows this far behind the stored watermark (late-arriving rows), e.g. `2h`. First cursor column must be a timestamp.'),
    shardKey: z
      .string()
      .min(1)
      .optional()
      .describe('Column whose hash splits the rows between `run --shard i/n` processes. @default the last `cursor` column'),
    batchSize: z.number().int().min(1).max(100_000).default(5_000).describe('Rows fetched per cursor read. @default 5000'),
    ssl: z
      .union([
        z.boolean(),
        z.strictObject({
          rejectUnauthorized: z.boolean().default(true),
          ca: z.string().optional().describe('Path to a CA certificate file.'),
        }),
      ])
      .optional()
      .describe('TLS: `true`, or options.'),
    statementTimeout: z.number().int().min(0).max(MAX_TIMER_MS).optional().describe('statement_timeout in milliseconds.'),
    applicationName: z.string().default('klaviyo-etl').describe('application_name reported to the server. @default klaviyo-etl'),
    numeric: z
      .enum(['string', 'number'])
      .default('string')
      .describe('How numeric and bigint values arrive: `string` keeps full precision. @default string'),
  })
  .describe('A PostgreSQL table or query, streamed with a server-side cursor.');

export const S3Source = z
  .strictObject({
    type: z.literal('s3'),
    bucket: z.string().min(1),
    prefix: z.string().default('').describe('Key prefix to list. @default ""'),
    glob: z.string().optional().describe('Glob the key (after the prefix) must match, e.g. `*.csv.gz`.'),
    format: z.enum(['csv', 'ndjson']).default('csv').describe('@default csv'),
    region: z.string().optional().describe('AWS region. @default from the environment, else us-east-1'),
    endpoint: z.string().optional().describe('Custom endpoint for S3-compatible stores (MinIO, R2, s3rver).'),
    forcePathStyle: z.boolean().default(false).describe('Path-style addressing (needed by most S3-compatible stores). @default false'),
    ...csvOptions,
  })
  .describe('Objects under an S3 prefix, in key order.');

/** What a `klaviyo` source reads (see docs/export.md for the columns of each). */
export const KLAVIYO_RESOURCES = ['members', 'events', 'profiles', 'lists', 'segments', 'metrics', 'campaigns', 'flows', 'templates'] as const;

/** An ISO 8601 date-time with an offset (`2026-01-01T00:00:00Z`), or a date (`2026-01-01`, midnight UTC). */
const InstantText = z
  .string()
  .regex(/^\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d))?$/i, 'expected an ISO 8601 date-time with an offset, e.g. 2026-01-01T00:00:00Z, or a date');

/** A rate-limit tier: Klaviyo's burst (1 s) and steady (1 min) allowances of an endpoint. */
export const Tier = z.strictObject({
  burst: z.number().int().min(1).describe('Requests per second.'),
  steady: z.number().int().min(1).describe('Requests per minute.'),
});

export const KlaviyoSource = z
  .strictObject({
    type: z.literal('klaviyo'),
    resource: z
      .enum(KLAVIYO_RESOURCES)
      .default('members')
      .describe(
        'What to export: `members` of a list or segment, `events`, `profiles`, or the catalog: `lists`, `segments`, `metrics`, `campaigns` (with their messages), `flows` (with their actions and messages), `templates`. Every row keeps Klaviyo\'s `id`. @default members',
      ),
    list: z.string().min(1).optional().describe('members: the list id whose members to export.'),
    segment: z.string().min(1).optional().describe('members: the segment id whose members to export.'),
    metrics: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('events: only the events of these metrics, by name or id (names are looked up with GET /api/metrics). @default every metric'),
    include: z
      .array(z.enum(['profile', 'metric']))
      .optional()
      .describe("events: add the event's profile (`profile.email`, `profile.first_name`, …) and metric (`metric.name`) to each row. @default none (the row has `profile.id` and `metric.id`)"),
    by: z
      .enum(['updated', 'created'])
      .default('updated')
      .describe('profiles: the time that orders, bounds and increments the export (`updated`: profiles changed since the last run). @default updated'),
    fields: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('members, profiles: only these profile attributes (`fields[profile]`, e.g. `[email, first_name, location.city]`). @default all'),
    subscriptions: z.boolean().default(false).describe('members, profiles: ask for consent (`additional-fields[profile]=subscriptions`). @default false'),
    predictiveAnalytics: z
      .boolean()
      .default(false)
      .describe('members, profiles: ask for `predictive_analytics` too. It drops the endpoint to tier M (10/s, 150/min), so only when needed. @default false'),
    channels: z
      .array(z.enum(['email', 'sms', 'mobile_push']))
      .min(1)
      .optional()
      .describe('campaigns: the channels to export (Klaviyo lists the campaigns of one channel per request). @default [email, sms, mobile_push]'),
    since: InstantText.optional().describe('Only records at or after this time (events: `datetime`, profiles: `by`, members: `joined_group_at`, campaigns: `updated_at`, other catalog: `updated`).'),
    until: InstantText.optional().describe('Only records before this time.'),
    lookback: z
      .string()
      .regex(/^\d+\s*(ms|s|m|h|d)$/)
      .optional()
      .describe('events: start each incremental run this far before the last exported event time, to catch events sent late with an earlier time (rows in that window are exported again: upsert by `id`), e.g. `1d`. @default 0'),
    pageSize: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe('`page[size]` of each request. @default the largest the resource allows (events 1000, members/profiles/campaigns 100, flows 50, lists/segments/templates 10)'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'Time ranges read at once (events, profiles, members, campaigns, flows, templates): the time span is split into ranges, each read by its own cursor, a range found large split again. All requests share the rate limiter. 1 reads one cursor. @default enough requests in flight to fill the endpoint\'s burst window at 400 ms per request (250 ms latency plus parsing), at most 32 and at most 4,000 records in flight (events 4, members/profiles/templates 30, campaigns 4, flows 2)',
      ),
    rateLimits: z
      .record(z.string(), Tier)
      .optional()
      .describe(
        'Override tiers per endpoint key (e.g. `"GET /api/lists/{id}/profiles": {burst: 75, steady: 750}`): the allowance the account has, when it is not the documented one (custom limits, or L at the spec\'s 750/min where the loader paces at the docs\' 700/min by default). Stated allowances are trusted: the first request does not go alone to learn them.',
      ),
    incremental: z
      .boolean()
      .default(true)
      .describe('Only what is new since the last successful export (events by `datetime`, profiles by `by`, members by `joined_group_at`, campaigns by `updated_at`, lists/segments/flows/templates by `updated`; metrics are read whole). @default true'),
  })
  .describe('Export from Klaviyo: list/segment members, events, profiles, or the catalog (lists, segments, metrics, campaigns, flows, templates).');

// ---------------------------------------------------------------- transforms

export const Location = z
  .strictObject({
    address1: Field.optional(),
    address2: Field.optional(),
    city: Field.optional(),
    country: Field.optional(),
    region: Field.optional(),
    zip: Field.optional(),
    timezone: Field.optional(),
    latitude: Field.optional(),
    longitude: Field.optional(),
    ip: Field.optional(),
  })
  .describe('Profile location fields.');

export const ProfileMapping = z
  .strictObject({
    email: Field.optional(),
    phone_number: Field.optional(),
    external_id: Field.optional(),
    first_name: Field.optional(),
    last_name: Field.optional(),
    organization: Field.optional(),
    title: Field.optional(),
    locale: Field.optional(),
    image: Field.optional(),
    location: Location.optional(),
    properties: FieldMap.optional().describe('Custom profile properties: name → field.'),
    properties_from: Field.optional().describe(
      'A field holding a JSON object (a `json` column, an NDJSON object, a PostgreSQL jsonb) whose keys all become custom properties, e.g. the `properties` column of a profiles export; entries of `properties:` win over its keys.',
    ),
  })
  .describe('How a row maps onto a Klaviyo profile. At least one of email, phone_number, external_id.');

const ConsentChannel = z.strictObject({
  marketing: z.boolean().default(true).describe('Subscribe to marketing. @default true'),
  transactional: z.boolean().optional().describe('SMS only: also transactional.'),
});

/**
 * The consent settings of the subscription transform and of a profile transform's `subscribe:` (one builder:
 * src/transform/consent.ts).
 */
const consentShape = {
  consented_at: Field.optional().describe('When consent was given (datetime); required with historical_import.'),
  historical_import: z.boolean().default(false).describe('Import past consent without double opt-in or flows. @default false'),
  list: z.string().optional().describe('List id to subscribe into.'),
  custom_source: z.string().optional().describe('Consent source recorded in Klaviyo.'),
  sms_regions: z
    .array(z.string().regex(/^[A-Z]{2}$/, 'Expected an upper-case ISO 3166 region code, e.g. US'))
    .min(1)
    .optional()
    .describe(
      'SMS channel: the regions (ISO 3166 codes) this Klaviyo account has sending numbers for. A row whose phone number is of another region gets no SMS consent: that consent is rejected (SMS_REGION_UNSUPPORTED, the row in the rejects file), not sent, as Klaviyo answers 400 to SMS consent it cannot send to; the row\'s email consent is subscribed all the same. @default every region Klaviyo SMS is available in (US, CA, GB, IE, DE, NL, FR, BE, AT, ES, CH, DK, SE, NO, FI, IT, PT, AU, NZ)',
    ),
  unsafe_resubscribe_opted_out: z
    .boolean()
    .default(false)
    .describe(
      'Turn the consent guard off: subscribe every row even when its profile unsubscribed, was suppressed or marked spam after the row\'s consent (subscribing lifts those suppressions). By default each batch\'s current consent is read first (GET /api/profiles) and such rows are skipped (CONSENT_OPTED_OUT). @default false',
    ),
};

/** Consent of a profile transform's rows: each row's profile is imported first, then subscribed. */
export const SubscribeSection = z
  .strictObject({
    channels: z
      .strictObject({ email: ConsentChannel.optional(), sms: ConsentChannel.optional() })
      .describe('Channels to subscribe the profile to (email needs profile.email, sms profile.phone_number).'),
    ...consentShape,
    when: Field.optional().describe('Only rows where this field is a true boolean are subscribed (their profile is imported either way).'),
  })
  .describe(
    'Also subscribe each row\'s profile (same email / phone_number), after its profile import was processed: profile attributes and consent from one file in one pipeline.',
  );

export const ProfileTransform = z
  .strictObject({
    type: z.literal('profile'),
    profile: ProfileMapping,
    subscribe: SubscribeSection.optional(),
    where: Where.optional(),
  })
  .describe('One profile per row (bulk import: upsert; empty values are left unchanged in Klaviyo).');

export const GroupConfig = z
  .strictObject({
    by: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe('Column(s) whose value identifies a group; consecutive rows with the same key become one event.'),
    value: z
      .enum(['sum', 'first'])
      .default('sum')
      .describe(
        'How the event `value` of a group is computed: `sum` adds the non-empty `value` of every row (a per-row line price, or a total filled only on the first row); `first` takes the first row\'s value and ignores the others (a total repeated on every row). @default sum',
      ),
    itemsProperty: z.string().default('Items').describe('Event property that receives the items array. @default Items'),
    items: FieldMap.describe('Per-row item fields: name → field (e.g. ProductName, SKU, Quantity, ItemPrice).'),
    itemEvents: z
      .strictObject({
        metric: z.string().min(1).max(127),
        unique_id: Field.describe('Per-item unique id, e.g. `{template: "{{Name}}-{{Lineitem sku}}"}`.'),
        value: Field.optional(),
        properties: FieldMap.optional().describe('Per-item event properties (the item fields are included too).'),
      })
      .optional()
      .describe('Also send one event per item (e.g. `Ordered Product`).'),
  })
  .describe('Group consecutive rows (one row per line item) into one event with an items array and summed value.');

export const EventTransform = z
  .strictObject({
    type: z.literal('event'),
    metric: z
      .union([z.string().min(1).max(127), FieldObject])
      .describe(
        'Metric name, e.g. `Placed Order` (< 128 characters); or a field object (`{column: metric}`) to take each row\'s metric from the row (an empty or over-long name rejects the row: MISSING_REQUIRED / INVALID_VALUE).',
      ),
    profile: ProfileMapping,
    unique_id: Field.optional().describe(
      'Deterministic id of the event, e.g. `{template: "{{Order ID}}"}`. Required: without it Klaviyo keeps one event per profile per second.',
    ),
    time: Field.optional().describe('Event time (type datetime or date, with format and zone). @default the time Klaviyo receives it'),
    value: Field.optional().describe('Monetary value (summed over a group).'),
    value_currency: Field.optional().describe('ISO 4217 currency code.'),
    properties: FieldMap.optional().describe('Event properties: name → field.'),
    properties_from: Field.optional().describe(
      'A field holding a JSON object (a `json` column, an NDJSON object, a PostgreSQL jsonb) whose keys all become event properties, e.g. the `properties` column of an events export; entries of `properties:` win over its keys.',
    ),
    backfill: z.boolean().default(false).describe('Historical load: recorded without triggering flows. @default false'),
    group: GroupConfig.optional(),
    where: Where.optional(),
  })
  .describe('One event per row (or per group of rows).');

export const SubscriptionTransform = z
  .strictObject({
    type: z.literal('subscription'),
    profile: z.strictObject({ email: Field.optional(), phone_number: Field.optional() }),
    channels: z
      .strictObject({ email: ConsentChannel.optional(), sms: ConsentChannel.optional() })
      .describe('Channels to subscribe the profile to.'),
    ...consentShape,
    when: Field.optional().describe('Only rows where this field is a true boolean are subscribed; others are skipped and counted.'),
    where: Where.optional(),
  })
  .describe('Subscribe profiles with explicit consent.');

const UnsubscribeChannel = z.strictObject({
  marketing: z.boolean().default(true).describe('Unsubscribe from marketing. @default true'),
  transactional: z.boolean().optional().describe('SMS only: also from transactional messages.'),
});

/** Who a consent-removing transform names: a profile by email and/or phone number. */
const ConsentProfile = z.strictObject({ email: Field.optional(), phone_number: Field.optional() });

export const UnsubscribeTransform = z
  .strictObject({
    type: z.literal('unsubscribe'),
    profile: ConsentProfile,
    channels: z
      .strictObject({ email: UnsubscribeChannel.optional(), sms: UnsubscribeChannel.optional() })
      .describe('Channels to unsubscribe the profile from (a channel is included when its identifier is present).'),
    list: z
      .string()
      .min(1)
      .optional()
      .describe('List id to unsubscribe from (the profile also leaves the list). Without it, the unsubscribe is global.'),
    notInList: z
      .enum(['skip', 'unsubscribe-globally'])
      .default('skip')
      .describe(
        'With `list`: Klaviyo globally unsubscribes a profile that is not in the list. `skip` reads the list\'s membership of each batch first (GET /api/lists/{id}/profiles, one request per 100 emails or phone numbers) and skips those rows (NOT_IN_LIST, counted in the report); `unsubscribe-globally` sends them, and Klaviyo unsubscribes them from every list. @default skip',
      ),
    when: Field.optional().describe('Only rows where this field is a true boolean are unsubscribed; others are skipped and counted.'),
  })
  .describe('Unsubscribe profiles from email / SMS marketing (profile-subscription-bulk-delete-jobs, ≤100 a request).');

export const SuppressTransform = z
  .strictObject({
    type: z.literal('suppress'),
    profile: z.strictObject({ email: Field.describe('The email to suppress (Klaviyo suppresses by email only).') }),
    when: Field.optional().describe('Only rows where this field is a true boolean are suppressed; others are skipped and counted.'),
  })
  .describe(
    'Suppress profiles from email marketing, whatever their consent (profile-suppression-bulk-create-jobs, ≤100 emails a request; reason USER_SUPPRESSED).',
  );

export const RemoveFromListTransform = z
  .strictObject({
    type: z.literal('remove-from-list'),
    list: z.string().min(1).describe('List id to remove the profiles from.'),
    profile: ConsentProfile,
    when: Field.optional().describe('Only rows where this field is a true boolean are removed; others are skipped and counted.'),
  })
  .describe(
    "Remove profiles (found by email / phone number among the list's members) from a list, consent unchanged (DELETE /api/lists/{id}/relationships/profiles, ≤1000 a request).",
  );

export const ExportTransform = z
  .strictObject({
    type: z.literal('export'),
    columns: FieldMap.describe('Output column → field over the exported profile (e.g. `email`, `properties.tier`, `joined_group_at`).'),
    where: Where.optional(),
  })
  .describe('Select and rename profile fields for a CSV export.');

// ---------------------------------------------------------------- destinations

export const KlaviyoDestination = z
  .strictObject({
    type: z.literal('klaviyo'),
    baseUrl: z
      .string()
      .url()
      .optional()
      .describe('API base URL. @default $KLAVIYO_BASE_URL, else https://a.klaviyo.com'),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .default('KLAVIYO_API_KEY')
      .describe('Name of the environment variable holding the private API key (never the key itself). @default KLAVIYO_API_KEY'),
    revision: z.string().regex(/^\d{4}-\d{2}-\d{2}(\.pre)?$/).default('2026-07-15').describe('API revision header. @default 2026-07-15'),
    lists: z.array(z.string().min(1)).optional().describe('Profiles: also add every imported profile to these lists.'),
    batch: z
      .strictObject({
        events: z.number().int().min(1).max(1000).default(1000).describe('Events per bulk request (≤1000). @default 1000'),
        profiles: z.number().int().min(1).max(10_000).default(10_000).describe('Profiles per bulk import job (≤10000). @default 10000'),
        subscriptions: z.number().int().min(1).max(1000).default(1000).describe('Profiles per subscribe job (≤1000). @default 1000'),
        unsubscribes: z.number().int().min(1).max(100).default(100).describe('Profiles per unsubscribe job (≤100). @default 100'),
        suppressions: z.number().int().min(1).max(100).default(100).describe('Emails per suppression job (≤100). @default 100'),
        listRemovals: z.number().int().min(1).max(1000).default(1000).describe('Profiles per list removal request (≤1000). @default 1000'),
        maxBytes: z.number().int().min(1024).max(5_000_000).default(4_900_000).describe('Request body cap in bytes (≤5 MB). @default 4900000'),
      })
      .prefault({})
      .describe('Batch sizes.'),
    concurrency: z.number().int().min(1).max(64).default(4).describe('Requests in flight at once. @default 4'),
    rateLimits: z
      .record(z.string(), Tier)
      .optional()
      .describe('Override tiers per endpoint key (e.g. `"POST /api/event-bulk-create-jobs": {burst: 10, steady: 150}`) for accounts with custom limits.'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(8)
      .describe('Retries of a 5xx or network failure before the run fails (429s are retried for `retryBudgetMs`). @default 8'),
    retryBudgetMs: z
      .number()
      .int()
      .min(1000)
      .max(MAX_TIMER_MS)
      .default(300_000)
      .describe(
        'How long one request is retried, from its first attempt: a 429 (throttled) is retried at the end of the rate-limit window that refused it until then; 5xx and network failures stop at `retries` or this. @default 300000 (5 minutes)',
      ),
    timeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(MAX_TIMER_MS)
      .default(60_000)
      .describe('Per-request timeout (at most 2147483647, the longest timer Node.js keeps). @default 60000'),
    verify: z
      .strictObject({
        sample: z.number().int().min(1).max(1000).describe('Accepted profiles to read back.'),
        timeoutMs: z
          .number()
          .int()
          .min(0)
          .max(MAX_TIMER_MS)
          .default(60_000)
          .describe('How long to wait for them to hold the consent (polling at 1 s, doubling, at most 10 s). @default 60000'),
      })
      .optional()
      .describe(
        'Subscriptions: after the last batch, read a uniform sample of the accepted profiles back (GET /api/profiles with their subscriptions) until they hold the consent sent or `timeoutMs` passes, and report how many do (`verify` in the report). Klaviyo accepts subscriptions with 202 and applies them later; without this the report says what was accepted.',
      ),
    jobTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .default(3_600_000)
      .describe(
        'Profiles: how long a bulk import job may stay queued or processing (from its submission, or from the start of the run that polls it again) before the run stops with KLAVIYO_JOB_TIMEOUT, a resumable checkpoint listing the pending jobs, which the next run polls again. @default 3600000 (one hour)',
      ),
  })
  .describe('Load into Klaviyo through the bulk endpoints.');

export const CsvDestination = z
  .strictObject({
    type: z.literal('csv'),
    path: z.string().min(1).describe('Output file, relative to the pipeline file; `.gz` compresses.'),
    delimiter: z.string().min(1).default(',').describe('Field delimiter; `tab` (or `\\t`) for a tab. @default ","'),
  })
  .describe('Write rows to a local CSV file (exports).');

export const NdjsonDestination = z
  .strictObject({
    type: z.literal('ndjson'),
    path: z.string().min(1).describe('Output file, relative to the pipeline file; `.gz` compresses.'),
  })
  .describe('Write rows to a local NDJSON file, one JSON object per row with JSON types kept (exports).');

export const S3Destination = z
  .strictObject({
    type: z.literal('s3'),
    bucket: z.string().min(1),
    key: z.string().min(1).describe('Object key; `.gz` compresses.'),
    format: z
      .enum(['csv', 'ndjson'])
      .default('csv')
      .describe('`csv` (a header line, then one row per line) or `ndjson` (one JSON object per line, JSON types kept). @default csv'),
    region: z.string().optional(),
    endpoint: z.string().optional(),
    forcePathStyle: z.boolean().default(false),
  })
  .describe('Write rows as a CSV or NDJSON object in S3 (exports).');

export const PostgresDestination = z
  .strictObject({
    type: z.literal('postgres'),
    url: z.string().min(1).describe('Connection URL, normally `${DATABASE_URL}`.'),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/)
      .describe('Table to upsert into, optionally schema-qualified (`analytics.klaviyo_events`); created when missing. Under `--emulator` the run writes `<table>_emulator` instead.'),
    key: z.string().min(1).default('id').describe('Output column the rows are upserted by (the table\'s primary key when the run creates it). @default id'),
    columnTypes: z
      .record(z.string(), z.string().regex(/^[A-Za-z][A-Za-z0-9_ ]*(\(\d+(,\s*\d+)?\))?(\[\])?$/))
      .optional()
      .describe('SQL type per output column for a table the run creates (e.g. `{count: bigint, sent_at: timestamptz}`), instead of the type chosen from the first batch\'s values.'),
    batchSize: z.number().int().min(1).max(100_000).default(1000).describe('Rows per transaction (acknowledged after COMMIT). @default 1000'),
    method: z
      .enum(['copy', 'insert'])
      .default('copy')
      .describe('`copy`: COPY each batch into a temporary staging table, then merge with INSERT … ON CONFLICT DO UPDATE; `insert`: multi-row INSERT … ON CONFLICT DO UPDATE statements. @default copy (faster, see docs/performance.md)'),
    ssl: z
      .union([z.boolean(), z.strictObject({ rejectUnauthorized: z.boolean().default(true), ca: z.string().optional().describe('Path to a CA certificate file.') })])
      .optional()
      .describe('TLS: `true`, or options.'),
    applicationName: z.string().default('klaviyo-etl').describe('application_name reported to the server. @default klaviyo-etl'),
  })
  .describe('Upsert export rows into a PostgreSQL table by Klaviyo id, one transaction per batch (exports).');

// ---------------------------------------------------------------- pipeline

export const Rejects = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Rejects file of each run, relative to the pipeline file; `{runId}` and `{date}` (UTC day the run started, YYYY-MM-DD) are replaced. A run never replaces an earlier run\'s file: when it exists, the run writes `<name>-2<ext>` (-3, …) beside it. @default <state dir>/<name>/rejects/{date}-{runId}.ndjson',
      ),
    format: z
      .enum(['ndjson', 'csv'])
      .optional()
      .describe('`csv`: the row\'s original columns as columns, with reject_code, reject_message, reject_field first and the source file and line after (for a spreadsheet). @default from the file extension, else ndjson'),
    maxRejects: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Fail the run once more than this many rows are rejected. @default unlimited'),
  })
  .describe('Where rejected rows go.');

export const Schedule = z
  .strictObject({
    cron: z
      .string()
      .describe('Cron expression as croner reads it: 5 fields (`0 2 * * *`: 02:00 every day), or 6 with seconds first.'),
    timezone: z.string().default('UTC').describe('IANA time zone the expression is read in (`Europe/Berlin`). @default UTC'),
  })
  .describe('When `klaviyo-etl schedule` runs this pipeline (ignored by `run`).');

export const Checkpoint = z
  .strictObject({
    store: z.enum(['local', 's3']).default('local').describe('@default local'),
    dir: z.string().optional().describe('Local directory. @default .klaviyo-etl/<name> beside the pipeline file'),
    url: z.string().regex(/^s3:\/\/[^/]+\/.*/).optional().describe('For store s3: `s3://bucket/prefix`.'),
    endpoint: z.string().optional(),
    region: z.string().optional(),
    forcePathStyle: z.boolean().default(false),
    every: z.number().int().min(1).default(1).describe('Write the checkpoint every N acknowledged batches. @default 1'),
    leaseSeconds: z
      .number()
      .min(1)
      .max(86_400)
      .default(300)
      .describe(
        'The run lock is a lease: renewed every third of this while the run lives; a lock from another host (a dead pod) not renewed for this long is taken over by the next run. @default 300',
      ),
  })
  .describe('Checkpoint settings.');

export type CsvSourceConfig = z.output<typeof CsvSource>;
export type NdjsonSourceConfig = z.output<typeof NdjsonSource>;
export type PostgresSourceConfig = z.output<typeof PostgresSource>;
export type S3SourceConfig = z.output<typeof S3Source>;
export type KlaviyoSourceConfig = z.output<typeof KlaviyoSource>;
export type ProfileTransformConfig = z.output<typeof ProfileTransform>;
export type EventTransformConfig = z.output<typeof EventTransform>;
export type SubscriptionTransformConfig = z.output<typeof SubscriptionTransform>;
export type ExportTransformConfig = z.output<typeof ExportTransform>;
export type UnsubscribeTransformConfig = z.output<typeof UnsubscribeTransform>;
export type ProfileMappingConfig = z.output<typeof ProfileMapping>;
export type KlaviyoDestinationConfig = z.output<typeof KlaviyoDestination>;
export type PostgresDestinationConfig = z.output<typeof PostgresDestination>;
export type { PipelineConfig, TransformConfig } from './pipeline.js';
