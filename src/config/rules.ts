import { realpathSync } from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { DateTime, IANAZone } from 'luxon';
import { isSupportedCountry } from 'libphonenumber-js';
import picomatch from 'picomatch';
import { escapePath, isDynamicPattern } from 'tinyglobby';
import { ENDPOINTS } from '../klaviyo/endpoints.js';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import type { Components } from '../components/types.js';
import type { PathSegment, ProblemCode } from './problem.js';
import { foreignDateFormat } from './date-formats.js';
import { csvDelimiter } from './schema.js';
import { closest } from './suggest.js';
import { DEFAULT_DRY_RUN_REJECTS_PATH, DEFAULT_REJECTS_PATH, expandRejectsPath, SAMPLE_RUN } from '../core/rejects-path.js';
import { whereConditionHasOneOperator } from './rules-where.js';

/*
 * Cross-field rules of a pipeline file (problem code CONFIG_RULE): what zod's per-object schema cannot express.
 *
 * Rules read the raw (interpolated, not yet validated) document defensively, so they still run when zod found
 * problems elsewhere in the file and every problem is reported at once. A rule that finds a value of the wrong
 * type simply says nothing: zod reports that one.
 */

/** One rule violation, located by its YAML path (a missing key points at its closest existing parent). */
export interface RuleViolation {
  path: PathSegment[];
  message: string;
  /** @default CONFIG_RULE */
  code?: ProblemCode;
  /** Locate the key of `path` rather than its value (an unknown map key). @default false */
  key?: boolean;
}

/** What a rule sees. */
export interface RuleContext {
  /** The whole document after `${VAR}` interpolation (unvalidated: read defensively). */
  raw: unknown;
  /** Whether the scalar at `path` came (partly) from an environment variable: never echo such a value. */
  fromEnv(path: readonly PathSegment[]): boolean;
  /** Absolute directory relative paths of the pipeline resolve against. @default the working directory */
  dir?: string;
  /** Absolute path of the pipeline file (undefined for text in memory). */
  file?: string;
  /** The state directory of a run (`--state-dir` / KLAVIYO_ETL_STATE_DIR), where default state files go. */
  stateDir?: string;
  /** The registered components (their declared capabilities). @default the built-in components */
  components?: Components;
}

export type PipelineRule = (ctx: RuleContext) => RuleViolation[];

type Obj = Record<string, unknown>;

function asObj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}

function at(root: unknown, ...path: string[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    const o = asObj(node);
    if (!o) return undefined;
    node = o[key];
  }
  return node;
}

function has(o: Obj | undefined, key: string): boolean {
  return o !== undefined && o[key] !== undefined && o[key] !== null;
}

function typeOf(ctx: RuleContext, section: string): string | undefined {
  const t = at(ctx.raw, section, 'type');
  return typeof t === 'string' ? t : undefined;
}

function shown(ctx: RuleContext, path: PathSegment[], value: string): string {
  return ctx.fromEnv(path) ? '(value from the environment)' : JSON.stringify(value);
}

// ---------------------------------------------------------------- field mappings

/** Every field mapping in the transform section: its path and its raw value (string shorthand or object). */
export function transformFields(raw: unknown): Array<{ path: PathSegment[]; field: unknown; defaultType: string }> {
  const out: Array<{ path: PathSegment[]; field: unknown; defaultType: string }> = [];
  const transform = asObj(at(raw, 'transform'));
  if (!transform) return out;
  const one = (path: PathSegment[], field: unknown, defaultType = 'string') => {
    if (field !== undefined && field !== null) out.push({ path, field, defaultType });
  };
  const map = (path: PathSegment[], value: unknown, defaultTypes: Record<string, string> = {}) => {
    const o = asObj(value);
    if (o) for (const [k, v] of Object.entries(o)) one([...path, k], v, defaultTypes[k]);
  };
  const profile = (base: PathSegment[], value: unknown) => {
    const p = asObj(value);
    if (!p) return;
    for (const [k, v] of Object.entries(p)) {
      // the transform validates identifiers whatever their type says: email as email, phone_number as phone
      if (k === 'location') map([...base, k], v, { latitude: 'number', longitude: 'number' });
      else if (k === 'properties') map([...base, k], v);
      else one([...base, k], v, k === 'email' ? 'email' : k === 'phone_number' ? 'phone' : 'string');
    }
  };
  const t = ['transform'];
  switch (transform.type) {
    case 'profile': {
      profile([...t, 'profile'], transform.profile);
      const subscribe = asObj(transform.subscribe);
      one([...t, 'subscribe', 'consented_at'], subscribe?.consented_at, 'datetime');
      one([...t, 'subscribe', 'when'], subscribe?.when, 'boolean');
      break;
    }
    case 'event': {
      profile([...t, 'profile'], transform.profile);
      for (const k of ['unique_id', 'value_currency']) one([...t, k], transform[k]);
      one([...t, 'time'], transform.time, 'datetime');
      one([...t, 'value'], transform.value, 'number');
      map([...t, 'properties'], transform.properties);
      one([...t, 'properties_from'], transform.properties_from, 'json');
      // a plain string metric is a literal name, not a column
      if (typeof transform.metric === 'object') one([...t, 'metric'], transform.metric);
      const group = asObj(transform.group);
      if (group) {
        map([...t, 'group', 'items'], group.items);
        const itemEvents = asObj(group.itemEvents);
        if (itemEvents) {
          one([...t, 'group', 'itemEvents', 'unique_id'], itemEvents.unique_id);
          one([...t, 'group', 'itemEvents', 'value'], itemEvents.value, 'number');
          map([...t, 'group', 'itemEvents', 'properties'], itemEvents.properties);
        }
      }
      break;
    }
    case 'subscription':
      profile([...t, 'profile'], transform.profile);
      one([...t, 'consented_at'], transform.consented_at, 'datetime');
      one([...t, 'when'], transform.when, 'boolean');
      break;
    case 'export':
      map([...t, 'columns'], transform.columns);
      break;
    default:
      break;
  }
  return out;
}

/**
 * Whether a datetime format can be read without a `zone`: epoch formats (`unix`, `unix_ms`, tokens X/x) are
 * instants, Luxon token formats with an offset or zone token (Z, ZZ, ZZZ, z) carry one, and `iso` values carry their
 * offset when they have one (an ISO value without an offset and no `zone` is rejected per row as INVALID_DATE, never
 * guessed). Text in single quotes is literal.
 */
export function formatCarriesOffset(format: string): boolean {
  if (format === 'iso' || format === 'unix' || format === 'unix_ms') return true;
  const unquoted = format.replace(/'[^']*'/g, '');
  return /[ZzXx]/.test(unquoted);
}

/** The type a field is coerced into: its declared type, else the default of its position (`time` is a datetime). */
function effectiveType(field: Obj, defaultType: string): string {
  return typeof field.type === 'string' && field.type !== 'string' ? field.type : defaultType;
}

/** Each mapping takes its value from exactly one of `column`, `template`, `value`. */
export function fieldHasOneSource(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const f = asObj(field);
    if (!f) continue;
    const given = ['column', 'template', 'value'].filter((k) => k in f && f[k] !== undefined);
    if (given.length === 0) out.push({ path, message: 'a field mapping needs one of column, template or value' });
    else if (given.length > 1) out.push({ path, message: `a field mapping takes exactly one of column, template, value (got ${given.join(' and ')})` });
  }
  return out;
}

/** `{{…}}` placeholders in templates are closed and name a column. */
export function templatePlaceholdersClosed(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const template = asObj(field)?.template;
    if (typeof template !== 'string') continue;
    const rest = template.replace(/\{\{[^{}]*\}\}/g, (m) => (m.slice(2, -2).trim() === '' ? '\u0000' : ''));
    if (rest.includes('\u0000')) out.push({ path: [...path, 'template'], message: 'empty placeholder "{{}}" in template' });
    else if (rest.includes('{{') || rest.includes('}}')) out.push({ path: [...path, 'template'], message: 'unbalanced "{{" / "}}" in template' });
  }
  return out;
}

/** Fields declared `type: date` / `type: datetime` need an explicit `format`: ambiguous dates are never guessed. */
export function dateNeedsFormat(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const f = asObj(field);
    if (!f || (f.type !== 'date' && f.type !== 'datetime') || f.format !== undefined) continue;
    out.push({ path: [...path, 'type'], message: `a ${String(f.type)} field needs a format (iso, unix, unix_ms or a Luxon format such as "MM/dd/yyyy")` });
  }
  return out;
}

/**
 * A date/datetime `format` is written in Luxon tokens: a Moment.js (`YYYY-MM-DD`) or strftime (`%Y-%m-%d`) format
 * would match no value (every row rejected with INVALID_DATE), so it is caught here with its Luxon equivalent.
 */
export function dateFormatIsLuxon(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const format = asObj(field)?.format;
    if (typeof format !== 'string') continue;
    const foreign = foreignDateFormat(format);
    if (!foreign) continue;
    const p = [...path, 'format'];
    const shownFormat = shown(ctx, p, format);
    const message =
      foreign.luxon === undefined
        ? `${shownFormat} is a ${foreign.kind} format; formats here are Luxon tokens (docs/pipeline-reference.md, "Field mappings")`
        : `${shownFormat} is a ${foreign.kind} format; formats here are Luxon tokens: write "${foreign.luxon}"`;
    out.push({ path: p, message });
  }
  return out;
}

/** A `datetime` (declared, or by default for `time` / `consented_at`) whose format has no offset needs a `zone`. */
export function datetimeNeedsZone(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field, defaultType } of transformFields(ctx.raw)) {
    const f = asObj(field);
    if (!f || effectiveType(f, defaultType) !== 'datetime' || typeof f.format !== 'string' || f.zone !== undefined) continue;
    if (formatCarriesOffset(f.format)) continue;
    out.push({ path: [...path, 'format'], message: 'this datetime format has no offset: add a zone (e.g. America/New_York or UTC)' });
  }
  return out;
}

/** `zone` is a known IANA time zone. */
export function zoneIsKnown(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const zone = asObj(field)?.zone;
    if (typeof zone !== 'string' || IANAZone.isValidZone(zone)) continue;
    const p = [...path, 'zone'];
    out.push({ path: p, message: `unknown IANA time zone ${shown(ctx, p, zone)}` });
  }
  return out;
}

/** `region` of a phone field is an upper-case ISO 3166 region libphonenumber knows. */
export function phoneRegionIsKnown(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  for (const { path, field } of transformFields(ctx.raw)) {
    const region = asObj(field)?.region;
    if (typeof region !== 'string' || region.length !== 2) continue;
    if (isSupportedCountry(region)) continue;
    const p = [...path, 'region'];
    out.push({
      path: p,
      message: isSupportedCountry(region.toUpperCase())
        ? 'write the phone region in upper case, e.g. "US"'
        : `unknown phone region ${shown(ctx, p, region)} (an ISO 3166 alpha-2 code such as US, GB, DE)`,
    });
  }
  return out;
}

/** Type-specific options only on the type they apply to (a `format` on a string field is a mistake). */
export function optionsMatchType(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  const applies: Record<string, readonly string[]> = {
    format: ['date', 'datetime'],
    zone: ['datetime'],
    region: ['phone'],
    regionColumn: ['phone'],
    trueValues: ['boolean'],
    falseValues: ['boolean'],
    decimal: ['number', 'integer'],
    thousands: ['number', 'integer'],
  };
  for (const { path, field, defaultType } of transformFields(ctx.raw)) {
    const f = asObj(field);
    if (!f) continue;
    const type = effectiveType(f, defaultType);
    for (const [option, types] of Object.entries(applies)) {
      if (f[option] !== undefined && !types.includes(type)) {
        out.push({ path: [...path, option], message: `${option} applies only to type ${types.join(' or ')} (this field is ${type})` });
      }
    }
    if (f.lowercase === true && f.uppercase === true) {
      out.push({ path: [...path, 'uppercase'], message: 'lowercase and uppercase cannot both be true' });
    }
  }
  return out;
}

// ---------------------------------------------------------------- transforms

const IDENTIFIERS = ['email', 'phone_number', 'external_id'] as const;

/** An event needs `unique_id`: without it Klaviyo keeps one event per profile per second. */
export function eventNeedsUniqueId(ctx: RuleContext): RuleViolation[] {
  if (typeOf(ctx, 'transform') !== 'event' || has(asObj(at(ctx.raw, 'transform')), 'unique_id')) return [];
  return [
    {
      path: ['transform', 'unique_id'],
      message: 'an event transform needs unique_id (e.g. {template: "{{Order ID}}"}): without it Klaviyo keeps only one event per profile per second and re-runs duplicate events',
    },
  ];
}

/** Profile and event mappings identify the profile by email, phone_number or external_id. */
export function profileNeedsIdentifier(ctx: RuleContext): RuleViolation[] {
  const type = typeOf(ctx, 'transform');
  if (type !== 'profile' && type !== 'event') return [];
  const profile = asObj(at(ctx.raw, 'transform', 'profile'));
  if (!profile || IDENTIFIERS.some((k) => has(profile, k))) return [];
  return [{ path: ['transform', 'profile'], message: 'the profile mapping needs at least one of email, phone_number, external_id' }];
}

/**
 * A subscription or unsubscribe names the identifier of every channel it changes; a list removal names a profile by
 * email or phone number.
 */
export function subscriptionChannelsMatchProfile(ctx: RuleContext): RuleViolation[] {
  const type = typeOf(ctx, 'transform');
  // a profile transform's `subscribe:` (profile and consent from one file) has its channels under transform.subscribe
  const subscribe = type === 'profile' && has(asObj(at(ctx.raw, 'transform')), 'subscribe');
  if (type !== 'subscription' && type !== 'unsubscribe' && type !== 'remove-from-list' && !subscribe) return [];
  const base = subscribe ? ['transform', 'subscribe'] : ['transform'];
  const out: RuleViolation[] = [];
  const profile = asObj(at(ctx.raw, 'transform', 'profile'));
  if (profile && !has(profile, 'email') && !has(profile, 'phone_number')) {
    out.push({ path: ['transform', 'profile'], message: `a ${subscribe ? 'subscription' : type} profile needs email or phone_number` });
  }
  const channels = asObj(at(ctx.raw, ...base, 'channels'));
  if (!channels || type === 'remove-from-list') return out;
  const verb = type === 'unsubscribe' ? 'unsubscribe from' : 'subscribe to';
  if (!has(channels, 'email') && !has(channels, 'sms')) {
    out.push({ path: [...base, 'channels'], message: `${verb} at least one channel: email or sms` });
  }
  if (profile && has(channels, 'email') && !has(profile, 'email')) {
    out.push({ path: [...base, 'channels', 'email'], message: 'the email channel needs profile.email' });
  }
  if (profile && has(channels, 'sms') && !has(profile, 'phone_number')) {
    out.push({ path: [...base, 'channels', 'sms'], message: 'the sms channel needs profile.phone_number' });
  }
  return out;
}

/** Every `clear` key under `node`, with its path. */
function clearKeys(node: unknown, path: PathSegment[], out: { path: PathSegment[]; field: Obj }[]): void {
  const o = asObj(node);
  if (!o) return;
  if (o.clear !== undefined) out.push({ path, field: o });
  for (const [k, v] of Object.entries(o)) if (k !== 'clear') clearKeys(v, [...path, k], out);
}

/**
 * `clear: true` clears a profile field in Klaviyo when the row's value is empty: only on the fields of a profile
 * transform's mapping, and never with `required` (never empty) or `default` (an empty value takes the default).
 */
export function clearOnlyOnProfileFields(ctx: RuleContext): RuleViolation[] {
  const found: { path: PathSegment[]; field: Obj }[] = [];
  clearKeys(at(ctx.raw, 'transform'), ['transform'], found);
  const out: RuleViolation[] = [];
  for (const { path, field } of found) {
    if (field.clear !== true) continue;
    const where = [...path, 'clear'];
    const depth = path[2] === 'location' || path[2] === 'properties' ? 4 : 3;
    if (typeOf(ctx, 'transform') !== 'profile' || path[1] !== 'profile' || path.length !== depth) {
      out.push({ path: where, message: 'clear: true applies to the fields of a profile transform (profile.*, location.*, properties.*) only' });
    } else if (field.required === true || has(field, 'default')) {
      out.push({ path: where, message: `clear: true cannot be used with ${field.required === true ? 'required' : 'default'} (the value is then never empty)` });
    }
  }
  return out;
}

/** `historical_import: true` needs `consented_at` (Klaviyo requires a past consent time). */
export function historicalImportNeedsConsentedAt(ctx: RuleContext): RuleViolation[] {
  const subscription = typeOf(ctx, 'transform') === 'subscription';
  const base = subscription ? ['transform'] : ['transform', 'subscribe'];
  const t = asObj(at(ctx.raw, ...base));
  if ((!subscription && typeOf(ctx, 'transform') !== 'profile') || t?.historical_import !== true || has(t, 'consented_at')) return [];
  return [{ path: [...base, 'historical_import'], message: 'historical_import needs consented_at (when consent was given)' }];
}

// ---------------------------------------------------------------- sources

/** A postgres source reads exactly one of `table` or `query`. */
export function postgresTableOrQuery(ctx: RuleContext): RuleViolation[] {
  if (typeOf(ctx, 'source') !== 'postgres') return [];
  const s = asObj(at(ctx.raw, 'source'));
  const table = has(s, 'table');
  const query = has(s, 'query');
  if (table && query) return [{ path: ['source', 'query'], message: 'give either table or query, not both' }];
  if (!table && !query) return [{ path: ['source', 'type'], message: 'a postgres source needs table or query' }];
  return [];
}

/** `columns` selects from `table`; a query names its own columns. */
export function postgresColumnsNeedTable(ctx: RuleContext): RuleViolation[] {
  const s = asObj(at(ctx.raw, 'source'));
  if (typeOf(ctx, 'source') !== 'postgres' || !has(s, 'columns') || has(s, 'table')) return [];
  return [{ path: ['source', 'columns'], message: 'columns needs table (a query selects its own columns)' }];
}

/** A postgres destination upserts by its `key` (default `id`): the export transform must have that output column. */
export function postgresKeyIsAColumn(ctx: RuleContext): RuleViolation[] {
  const d = asObj(at(ctx.raw, 'destination'));
  const columns = asObj(at(ctx.raw, 'transform', 'columns'));
  if (typeOf(ctx, 'destination') !== 'postgres' || typeOf(ctx, 'transform') !== 'export' || !columns) return [];
  const key = d?.key ?? 'id';
  if (typeof key !== 'string' || has(columns, key)) return [];
  return [{ path: has(d, 'key') ? ['destination', 'key'] : ['destination'], message: `the postgres destination upserts by ${JSON.stringify(key)}, which is not an output column of transform.columns (add it, e.g. \`${key}: id\`, or set destination.key)` }];
}

/** `lookback` re-reads behind the cursor watermark, so it needs `cursor`. */
export function postgresLookbackNeedsCursor(ctx: RuleContext): RuleViolation[] {
  const s = asObj(at(ctx.raw, 'source'));
  if (typeOf(ctx, 'source') !== 'postgres' || !has(s, 'lookback') || has(s, 'cursor')) return [];
  return [{ path: ['source', 'lookback'], message: 'lookback needs cursor (it re-reads rows behind the cursor watermark)' }];
}

/** Options of the klaviyo source and the resources they apply to. */
const KLAVIYO_OPTION_RESOURCES: Readonly<Record<string, readonly string[]>> = {
  list: ['members'],
  segment: ['members'],
  metrics: ['events'],
  include: ['events'],
  lookback: ['events'],
  by: ['profiles'],
  fields: ['members', 'profiles'],
  subscriptions: ['members', 'profiles'],
  predictiveAnalytics: ['members', 'profiles'],
  channels: ['campaigns'],
  since: ['members', 'events', 'profiles', 'lists', 'segments', 'campaigns', 'flows', 'templates'],
  until: ['members', 'events', 'profiles', 'lists', 'segments', 'campaigns', 'flows', 'templates'],
  pageSize: ['members', 'events', 'profiles', 'lists', 'segments', 'campaigns', 'flows', 'templates'],
  concurrency: ['members', 'events', 'profiles', 'campaigns', 'flows', 'templates'],
};

/** Largest `page[size]` of each klaviyo resource. */
const KLAVIYO_MAX_PAGE: Readonly<Record<string, number>> = { members: 100, events: 1000, profiles: 100, lists: 10, segments: 10, campaigns: 100, flows: 50, templates: 10 };

/**
 * A klaviyo source: `members` reads exactly one list or segment; every other option belongs to the resources it
 * names (a `metrics:` on a profiles export is a mistake, not something to ignore); `pageSize` within the resource's
 * maximum; `since` before `until`.
 */
export function klaviyoSourceOptions(ctx: RuleContext): RuleViolation[] {
  if (typeOf(ctx, 'source') !== 'klaviyo') return [];
  const s = asObj(at(ctx.raw, 'source'));
  const resource = typeof s?.resource === 'string' ? s.resource : 'members';
  const out: RuleViolation[] = [];
  for (const [option, resources] of Object.entries(KLAVIYO_OPTION_RESOURCES)) {
    if (!has(s, option) || resources.includes(resource)) continue;
    out.push({ path: ['source', option], message: `${option} applies to resource ${alternatives(resources.map(String))}, not ${resource}` });
  }
  if (resource === 'members') {
    const list = has(s, 'list');
    const segment = has(s, 'segment');
    if (list && segment) out.push({ path: ['source', 'segment'], message: 'give either list or segment, not both' });
    if (!list && !segment) out.push({ path: ['source', has(s, 'resource') ? 'resource' : 'type'], message: 'a klaviyo source needs list or segment (resource: members), or another resource' });
  }
  const max = KLAVIYO_MAX_PAGE[resource];
  if (max !== undefined && typeof s?.pageSize === 'number' && s.pageSize > max) {
    out.push({ path: ['source', 'pageSize'], message: `pageSize ${s.pageSize} is more than Klaviyo allows for ${resource} (${max})` });
  }
  const since = typeof s?.since === 'string' ? Date.parse(s.since) : NaN;
  const until = typeof s?.until === 'string' ? Date.parse(s.until) : NaN;
  if (!Number.isNaN(since) && !Number.isNaN(until) && since >= until) out.push({ path: ['source', 'until'], message: 'until must be later than since' });
  return out;
}

// ---------------------------------------------------------------- wiring between sections

/** `a profile`, `an event`. */
function withArticle(word: string): string {
  return `${/^[aeiou]/i.test(word) ? 'an' : 'a'} ${word}`;
}

/** `csv or s3`, `profile, event or subscription`. */
function alternatives(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? 'other') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/**
 * The components fit together, by their declared capabilities: the transform reads what the source yields (rows,
 * or exported Klaviyo profiles), and the destination accepts what the transform produces (profiles, events,
 * subscriptions, or export rows). So an export is a klaviyo source → export transform → csv/s3 destination.
 */
export function componentsFit(ctx: RuleContext): RuleViolation[] {
  const c = ctx.components ?? BUILTIN_COMPONENTS;
  const registered = <D extends { type: string }>(list: readonly D[], section: string): D | undefined => {
    const type = typeOf(ctx, section);
    return type === undefined ? undefined : list.find((d) => d.type === type);
  };
  const source = registered(c.sources, 'source');
  const transform = registered(c.transforms, 'transform');
  const destination = registered(c.destinations, 'destination');
  const out: RuleViolation[] = [];
  if (source && transform && transform.capabilities.reads !== source.capabilities.yields) {
    const fit = c.transforms.filter((t) => t.capabilities.reads === source.capabilities.yields).map((t) => t.type);
    out.push({ path: ['transform', 'type'], message: `${withArticle(source.type)} source needs ${withArticle(alternatives(fit))} transform` });
  }
  if (transform && destination && !destination.capabilities.accepts.includes(transform.capabilities.produces)) {
    const fit = c.destinations.filter((d) => d.capabilities.accepts.includes(transform.capabilities.produces)).map((d) => d.type);
    out.push({ path: ['destination', 'type'], message: `${withArticle(transform.type)} transform needs ${withArticle(alternatives(fit))} destination` });
  } else if (source && destination && !reaches(c, source.capabilities.yields, destination)) {
    // whatever the transform: no transform of what this source yields produces what this destination takes
    const fit = c.sources.filter((s) => reaches(c, s.capabilities.yields, destination)).map((s) => s.type);
    out.push({ path: ['destination', 'type'], message: `${withArticle(destination.type)} destination needs ${withArticle(alternatives(fit))} source` });
  }
  return out;
}

/** Whether some transform turns records of kind `records` into items `destination` accepts. */
function reaches(c: Components, records: string, destination: Components['destinations'][number]): boolean {
  return c.transforms.some((t) => t.capabilities.reads === records && destination.capabilities.accepts.includes(t.capabilities.produces));
}

/** `checkpoint.store: s3` needs `url`; `url` only means something for the s3 store. */
export function checkpointS3NeedsUrl(ctx: RuleContext): RuleViolation[] {
  const c = asObj(at(ctx.raw, 'checkpoint'));
  if (!c) return [];
  if (c.store === 's3' && !has(c, 'url')) return [{ path: ['checkpoint', 'store'], message: 'checkpoint store s3 needs url (s3://bucket/prefix)' }];
  if (c.store !== 's3' && has(c, 'url')) return [{ path: ['checkpoint', 'url'], message: 'checkpoint url applies only to store: s3' }];
  return [];
}

// ---------------------------------------------------------------- values zod checks one by one, but not well enough

/** `rateLimits` keys are endpoint keys the limiter knows: a typo would be ignored and the override lost. */
export function rateLimitKeysKnown(ctx: RuleContext): RuleViolation[] {
  const limits = asObj(at(ctx.raw, 'destination', 'rateLimits'));
  if (typeOf(ctx, 'destination') !== 'klaviyo' || !limits) return [];
  const known = Object.keys(ENDPOINTS);
  return Object.keys(limits)
    .filter((key) => !known.includes(key))
    .map((key) => {
      const guess = closest(key, known, Math.max(2, Math.floor(key.length / 4)));
      const hint = guess === undefined ? ' (keys are "METHOD /api/path" as in docs/pipeline-reference.md, e.g. "POST /api/event-bulk-create-jobs")' : ` (did you mean "${guess}"?)`;
      return { path: ['destination', 'rateLimits', key], key: true, code: 'CONFIG_UNKNOWN_KEY', message: `unknown endpoint key "${key}"${hint}` };
    });
}

/** `schedule.cron` is an expression croner can read, `schedule.timezone` a known IANA zone. */
export function scheduleIsValid(ctx: RuleContext): RuleViolation[] {
  const schedule = asObj(at(ctx.raw, 'schedule'));
  if (!schedule) return [];
  const out: RuleViolation[] = [];
  const { cron, timezone } = schedule;
  if (typeof timezone === 'string' && !IANAZone.isValidZone(timezone)) {
    out.push({ path: ['schedule', 'timezone'], message: `unknown IANA time zone ${shown(ctx, ['schedule', 'timezone'], timezone)}` });
  }
  if (typeof cron === 'string') {
    try {
      new Cron(cron, { paused: true });
    } catch (error) {
      out.push({ path: ['schedule', 'cron'], message: `not a cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')} (e.g. "0 2 * * *" for 02:00 every day)` });
    }
  }
  return out;
}

/** The API revision is a date that exists (2024-02-30 is not one). */
export function revisionIsADate(ctx: RuleContext): RuleViolation[] {
  const revision = at(ctx.raw, 'destination', 'revision');
  const m = typeof revision === 'string' ? /^(\d{4}-\d{2}-\d{2})(\.pre)?$/.exec(revision) : null;
  if (typeOf(ctx, 'destination') !== 'klaviyo' || !m || DateTime.fromISO(m[1]!, { zone: 'utc' }).isValid) return [];
  const p = ['destination', 'revision'];
  return [{ path: p, code: 'CONFIG_INVALID', message: `revision ${shown(ctx, p, revision as string)} is not a date that exists (YYYY-MM-DD)` }];
}

/** Base URLs and endpoints are http(s) URLs: anything else fails only once the run sends its first request. */
export function urlsAreHttp(ctx: RuleContext): RuleViolation[] {
  const candidates: PathSegment[][] = [['checkpoint', 'endpoint']];
  if (typeOf(ctx, 'destination') === 'klaviyo') candidates.push(['destination', 'baseUrl']);
  if (typeOf(ctx, 'destination') === 's3') candidates.push(['destination', 'endpoint']);
  if (typeOf(ctx, 'source') === 's3') candidates.push(['source', 'endpoint']);
  const out: RuleViolation[] = [];
  for (const p of candidates) {
    const value = at(ctx.raw, ...p.map(String));
    if (typeof value !== 'string') continue;
    let protocol: string;
    try {
      protocol = new URL(value).protocol;
    } catch {
      if (p[1] !== 'baseUrl') out.push({ path: p, code: 'CONFIG_INVALID', message: 'expected an http:// or https:// URL' }); // zod reports baseUrl
      continue;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      out.push({ path: p, code: 'CONFIG_INVALID', message: `expected an http:// or https:// URL, got ${protocol}//…` });
    }
  }
  return out;
}

/** Why a CSV delimiter cannot work, if it cannot: line breaks, control characters, emoji, outside latin1. */
function unusableCharacters(value: string, latin1: boolean): string | undefined {
  if (/[\r\n]/.test(value)) return 'cannot hold a line break';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if ((cp < 0x20 && ch !== '\t') || cp === 0x7f) return 'cannot hold a control character';
    if (cp > 0xffff) return 'cannot hold an emoji or another character outside the Basic Multilingual Plane';
    if (latin1 && cp > 0xff) return 'holds a character latin1 cannot encode';
  }
  return undefined;
}

/** CSV delimiter, quote and escape characters that a CSV file can be read (or written) with. */
export function csvCharactersUsable(ctx: RuleContext): RuleViolation[] {
  const out: RuleViolation[] = [];
  const check = (section: 'source' | 'destination', isSource: boolean): void => {
    const o = asObj(at(ctx.raw, section));
    if (!o) return;
    const latin1 = isSource && o.encoding === 'latin1';
    const delimiter = typeof o.delimiter === 'string' ? csvDelimiter(o.delimiter) : ',';
    const quote = isSource ? (typeof o.quote === 'string' ? o.quote : '"') : '"';
    for (const key of ['delimiter', 'quote', 'escape']) {
      const value = key === 'delimiter' && typeof o[key] === 'string' ? csvDelimiter(o[key]) : o[key];
      const why = typeof value === 'string' && value !== '' ? unusableCharacters(value, latin1) : undefined;
      if (why) out.push({ path: [section, key], code: 'CONFIG_INVALID', message: `${key} ${why}` });
    }
    if (quote !== '' && delimiter.includes(quote)) {
      const where = isSource && typeof o.quote === 'string' ? 'quote' : 'delimiter';
      out.push({ path: [section, where], code: 'CONFIG_INVALID', message: `the quote character ${JSON.stringify(quote)} cannot be (part of) the delimiter` });
    }
    if (isSource && typeof o.escape === 'string' && o.escape !== '' && delimiter.includes(o.escape)) {
      out.push({ path: [section, 'escape'], code: 'CONFIG_INVALID', message: 'the escape character cannot be (part of) the delimiter' });
    }
  };
  const source = typeOf(ctx, 'source');
  if (source === 'csv' || (source === 's3' && (at(ctx.raw, 'source', 'format') ?? 'csv') === 'csv')) check('source', true);
  if (typeOf(ctx, 'destination') === 'csv') check('destination', false);
  return out;
}

// ---------------------------------------------------------------- the rejects file destroys nothing

/** State files of a local checkpoint directory (and their temporary / takeover files, `<name>.…`). */
const STATE_FILES = ['checkpoint.json', 'checkpoint.lock'];

const CASE_INSENSITIVE = process.platform === 'darwin' || process.platform === 'win32'; // their default file systems

/** The path with symbolic links resolved in its longest existing ancestor (the file itself may not exist yet). */
function canonical(p: string): string {
  let dir = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync.native(dir), ...rest);
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return path.resolve(p);
      rest.unshift(path.basename(dir));
      dir = parent;
    }
  }
}

/** Whether two paths name one file: as written, or once symbolic links are followed. */
function samePath(a: string, b: string): boolean {
  const eq = (x: string, y: string) => (CASE_INSENSITIVE ? x.toLowerCase() === y.toLowerCase() : x === y);
  return eq(path.resolve(a), path.resolve(b)) || eq(canonical(a), canonical(b));
}

function toPosix(p: string): string {
  return path.sep === '/' ? p : p.split(path.sep).join('/');
}

/**
 * Whether a source path or glob (tinyglobby's semantics, relative to `dir`) names or matches `file`: as written,
 * and with symbolic links followed in the glob's static base and in the file's path.
 */
function patternCovers(pattern: string, dir: string, file: string): boolean {
  if (!isDynamicPattern(pattern)) return samePath(path.resolve(dir, pattern), file);
  const { base, glob } = picomatch.scan(pattern);
  const anchored = (root: string) => path.posix.join(escapePath(toPosix(root)), glob);
  const lexical = path.resolve(dir, base);
  const options = { dot: false, nocase: CASE_INSENSITIVE };
  return (
    picomatch(anchored(lexical), options)(toPosix(path.resolve(file))) || picomatch(anchored(canonical(lexical)), options)(toPosix(canonical(file)))
  );
}

/** What a rejects file at `file` would destroy or feed back into the run: the pipeline file, an input, a state file. */
function rejectsClash(ctx: RuleContext, file: string, dir: string, stateRoot: string): { what: string; path: PathSegment[] } | undefined {
  if (ctx.file !== undefined && samePath(ctx.file, file)) return { what: 'the pipeline file itself (a run would overwrite it)', path: [] };
  const source = typeOf(ctx, 'source');
  const given = at(ctx.raw, 'source', 'path');
  const patterns = typeof given === 'string' ? [given] : Array.isArray(given) ? given : [];
  if (source === 'csv' || source === 'ndjson') {
    for (const [i, pattern] of patterns.entries()) {
      if (typeof pattern !== 'string' || pattern === '') continue;
      const p: PathSegment[] = typeof given === 'string' ? ['source', 'path'] : ['source', 'path', i];
      if (!patternCovers(pattern, dir, file)) continue;
      return isDynamicPattern(pattern)
        ? { what: `matched by the source glob ${shown(ctx, p, pattern)} (a resumed run would read its own rejects)`, path: p }
        : { what: 'an input file of the source (a run would delete it)', path: p };
    }
  }
  const output = at(ctx.raw, 'destination', 'path');
  if (typeOf(ctx, 'destination') === 'csv' && typeof output === 'string' && output !== '' && samePath(path.resolve(dir, output), file)) {
    return { what: 'the output file of the export (destination.path)', path: ['destination', 'path'] };
  }
  const checkpoint = asObj(at(ctx.raw, 'checkpoint'));
  const name = at(ctx.raw, 'name');
  if (checkpoint?.store === 's3' || (typeof checkpoint?.dir !== 'string' && typeof name !== 'string')) return undefined;
  const stateDir = typeof checkpoint?.dir === 'string' ? path.resolve(dir, checkpoint.dir) : path.join(stateRoot, name as string);
  const base = path.basename(file);
  const named = (f: string) => (CASE_INSENSITIVE ? base.toLowerCase() === f || base.toLowerCase().startsWith(`${f}.`) : base === f || base.startsWith(`${f}.`));
  if (samePath(path.dirname(file), stateDir) && STATE_FILES.some(named)) {
    return { what: `a state file of the checkpoint (${base}: the checkpoint would overwrite the rejects, or the rejects the checkpoint)`, path: ['checkpoint'] };
  }
  return undefined;
}

/**
 * The rejects file (given, or the default one in the state directory) is not the pipeline file, an input file, a
 * file a source glob matches, the export's output, nor a checkpoint state file: a fresh run starts a new rejects
 * file (deleting what is there) and a resumed run appends to it.
 */
export function rejectsPathIsSafe(ctx: RuleContext): RuleViolation[] {
  const dir = ctx.dir ?? process.cwd();
  const stateRoot = ctx.stateDir ? path.resolve(ctx.stateDir) : path.join(dir, '.klaviyo-etl'); // as a run resolves it
  const given = at(ctx.raw, 'rejects', 'path');
  const name = at(ctx.raw, 'name');
  if (typeof given === 'string' && given !== '') {
    // `{runId}` and `{date}` stand for any run: a sample run's path has the shape of every run's
    const clash = rejectsClash(ctx, path.resolve(dir, expandRejectsPath(given, SAMPLE_RUN)), dir, stateRoot);
    return clash ? [{ path: ['rejects', 'path'], message: `the rejects file cannot be ${clash.what}` }] : [];
  }
  if (typeof name !== 'string' || name === '') return [];
  for (const template of [DEFAULT_REJECTS_PATH, DEFAULT_DRY_RUN_REJECTS_PATH]) {
    const file = expandRejectsPath(template, SAMPLE_RUN);
    const clash = rejectsClash(ctx, path.join(stateRoot, name, file), dir, stateRoot);
    if (clash) return [{ path: clash.path, message: `the default rejects file (${template} in the state directory) would be ${clash.what}: set rejects.path elsewhere` }];
  }
  return [];
}

/** Every rule, in the order they run. */
export const PIPELINE_RULES: readonly PipelineRule[] = [
  fieldHasOneSource,
  templatePlaceholdersClosed,
  dateNeedsFormat,
  dateFormatIsLuxon,
  datetimeNeedsZone,
  zoneIsKnown,
  phoneRegionIsKnown,
  optionsMatchType,
  eventNeedsUniqueId,
  profileNeedsIdentifier,
  subscriptionChannelsMatchProfile,
  clearOnlyOnProfileFields,
  historicalImportNeedsConsentedAt,
  postgresTableOrQuery,
  postgresColumnsNeedTable,
  postgresLookbackNeedsCursor,
  postgresKeyIsAColumn,
  klaviyoSourceOptions,
  componentsFit,
  checkpointS3NeedsUrl,
  rateLimitKeysKnown,
  revisionIsADate,
  urlsAreHttp,
  csvCharactersUsable,
  rejectsPathIsSafe,
  scheduleIsValid,
  whereConditionHasOneOperator,
];

/** Run every rule and collect all violations, tagged with the rule's name. */
export function checkRules(ctx: RuleContext, rules: readonly PipelineRule[] = PIPELINE_RULES): Array<RuleViolation & { rule: string }> {
  const out: Array<RuleViolation & { rule: string }> = [];
  for (const rule of rules) {
    for (const v of rule(ctx)) out.push({ ...v, rule: rule.name });
  }
  return out;
}
