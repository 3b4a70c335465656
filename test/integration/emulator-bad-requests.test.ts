/**
 * One bad request per validation rule of the emulator: status, error `code` and where the error points
 * (`source.pointer` into the body, `source.parameter` for query/header problems, or no source at all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { bulkEventsBody, client, eventBody, KEY, profileBody, waitFor } from '../unit/emulator/client.js';

type Call = ReturnType<typeof client>;
type Source = { pointer: string } | { parameter: string } | null;

interface Row {
  rule: string;
  /** Which emulator: limits off (default), one restricted to `apiKeys`, or one that throttles. */
  server?: 'open' | 'keys' | 'throttle';
  key?: string | null;
  method: string;
  path: string | ((ids: Ids) => string);
  body?: unknown;
  headers?: Record<string, string | undefined>;
  /** Requests sent first (e.g. to use up an allowance). */
  prime?: number;
  status: number;
  code: string;
  source: Source;
  detail?: string;
}

interface Ids {
  list: string;
}

const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const P = '/data/attributes/profiles/data';
const listBody = (attributes: Record<string, unknown>, type = 'list') => ({ data: { type, attributes } });
const subscribeBody = (profiles: unknown[], extra: Record<string, unknown> = {}) => ({
  data: { type: 'profile-subscription-bulk-create-job', attributes: { ...extra, profiles: { data: profiles } } },
});
const unsubscribeBody = (profiles: unknown[]) => ({ data: { type: 'profile-subscription-bulk-delete-job', attributes: { profiles: { data: profiles } } } });
const suppressBody = (profiles: unknown[]) => ({ data: { type: 'profile-suppression-bulk-create-job', attributes: { profiles: { data: profiles } } } });
const emailSub = (email: string, marketing: Record<string, unknown> = { consent: 'SUBSCRIBED' }) => ({
  type: 'profile',
  attributes: { email, subscriptions: { email: { marketing } } },
});
const emailUnsub = (email: string) => ({ type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } });
const manyProps = Object.fromEntries(Array.from({ length: 401 }, (_, i) => [`p${i}`, i]));
/** `{"a":{"a":…1…}}`: `n` objects nested inside each other (a property holding it uses `n` nesting levels). */
const nest = (n: number): unknown => (n === 0 ? 1 : { a: nest(n - 1) });
const TOO_DEEP = 'Properties must not be nested more than 10 levels deep.';
/** The pointer of the 11th level inside property `x` at `base`. */
const eleventh = (base: string) => `${base}/x${'/a'.repeat(10)}`;

const ROWS: Row[] = [
  { rule: 'missing key', key: null, method: 'GET', path: '/api/lists', status: 401, code: 'not_authenticated', source: { pointer: '/data/' } },
  { rule: 'site-id (public) key', key: 'AbC123', method: 'GET', path: '/api/lists', status: 403, code: 'permission_denied', source: { pointer: '/data/' } },
  { rule: 'unknown key when apiKeys is set', server: 'keys', key: 'pk_unknown_0000000000000000000000000', method: 'GET', path: '/api/lists', status: 401, code: 'authentication_failed', source: { pointer: '/data/' } },
  { rule: 'missing revision', method: 'GET', path: '/api/lists', headers: { revision: undefined }, status: 400, code: 'invalid', source: { parameter: 'revision' } },
  { rule: 'bad content type', method: 'POST', path: '/api/lists', body: 'name=x', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type', source: { pointer: '/data/' } },
  { rule: 'body over 5 MB', method: 'POST', path: '/api/event-bulk-create-jobs', body: JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024 + 1) }), status: 413, code: 'payload_too_large', source: { pointer: '/data/' } },
  { rule: 'wrong type', method: 'POST', path: '/api/lists', body: listBody({ name: 'x' }, 'profile'), status: 400, code: 'invalid', source: { pointer: '/data/type' } },
  { rule: 'missing required attribute', method: 'POST', path: '/api/lists', body: listBody({}), status: 400, code: 'invalid', source: { pointer: '/data/attributes/name' } },
  { rule: 'bad enum (opt_in_process)', method: 'POST', path: '/api/lists', body: listBody({ name: 'x', opt_in_process: 'triple' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/opt_in_process' } },
  { rule: 'bad enum (consent)', method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', body: subscribeBody([emailSub('e@example.com', { consent: 'UNSUBSCRIBED' })]), status: 400, code: 'invalid', source: { pointer: `${P}/0/attributes/subscriptions/email/marketing/consent` } },
  { rule: 'bad email', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'nope@' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/email' }, detail: 'Invalid email address' },
  { rule: 'bad phone', method: 'POST', path: '/api/profiles', body: profileBody({ phone_number: '555-1234' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/phone_number' }, detail: 'Invalid phone number format (Example of a valid format: +12345678901)' },
  { rule: 'event time before 1990', method: 'POST', path: '/api/events', body: eventBody({ time: '1989-12-31T00:00:00Z' }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/time' } },
  { rule: 'event time more than 1 year ahead', method: 'POST', path: '/api/events', body: eventBody({ time: iso(NOW + 400 * 86_400_000) }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/time' } },
  { rule: 'more than 400 event properties', method: 'POST', path: '/api/events', body: eventBody({ properties: manyProps }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/properties' } },
  { rule: 'string over 100 KB', method: 'POST', path: '/api/events', body: eventBody({ properties: { big: 'x'.repeat(100 * 1024 + 1) } }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/properties/big' } },
  { rule: 'event property nested 11 levels (Klaviyo: at most 10)', method: 'POST', path: '/api/events', body: eventBody({ properties: { x: nest(11) } }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: eleventh('/data/attributes/properties') }, detail: TOO_DEEP },
  { rule: 'array nesting counts as well', method: 'POST', path: '/api/events', body: eventBody({ properties: { x: JSON.parse('['.repeat(11) + ']'.repeat(11)) } }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: `/data/attributes/properties/x${'/0'.repeat(10)}` }, detail: TOO_DEEP },
  {
    rule: 'bulk event property nested 11 levels',
    method: 'POST',
    path: '/api/event-bulk-create-jobs',
    body: bulkEventsBody([{ profile: { email: 'e@example.com' }, events: [{ unique_id: 'ok' }, { unique_id: 'deep', properties: { x: nest(11) } }] }]),
    status: 400,
    code: 'invalid',
    source: { pointer: eleventh('/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/properties') },
    detail: TOO_DEEP,
  },
  { rule: 'event profile property nested 11 levels', method: 'POST', path: '/api/events', body: eventBody({}, { email: 'e@example.com', properties: { x: nest(11) } }), status: 400, code: 'invalid', source: { pointer: eleventh('/data/attributes/profile/data/attributes/properties') }, detail: TOO_DEEP },
  { rule: 'profile property nested 11 levels', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'deep@example.com', properties: { x: nest(11) } }), status: 400, code: 'invalid', source: { pointer: eleventh('/data/attributes/properties') }, detail: TOO_DEEP },
  {
    rule: 'patch_properties.append nested 11 levels',
    method: 'POST',
    path: '/api/profile-import',
    body: { data: { type: 'profile', attributes: { email: 'deep@example.com' }, meta: { patch_properties: { append: { x: nest(11) } } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: eleventh('/data/meta/patch_properties/append') },
    detail: TOO_DEEP,
  },
  {
    rule: 'request body nested more than 32 levels',
    method: 'POST',
    path: '/api/lists',
    body: `{"data":{"type":"list","attributes":{"name":"x","extra":${'['.repeat(31)}${']'.repeat(31)}}}}`,
    status: 400,
    code: 'invalid',
    source: { pointer: `/data/attributes/extra${'/0'.repeat(29)}` },
    detail: 'The request body nests objects and arrays more than 32 levels deep.',
  },
  { rule: 'profile over 100 KB', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'big@example.com', properties: { a: 'x'.repeat(60_000), b: 'y'.repeat(60_000) } }), status: 400, code: 'invalid', source: { pointer: '/data' } },
  {
    rule: 'more than 10,000 profiles in a bulk import job',
    method: 'POST',
    path: '/api/profile-bulk-import-jobs',
    body: { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: Array.from({ length: 10_001 }, (_, i) => ({ type: 'profile', attributes: { email: `u${i}@example.com` } })) } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: P },
  },
  {
    rule: 'more than 1,000 events in a bulk request',
    method: 'POST',
    path: '/api/event-bulk-create-jobs',
    body: bulkEventsBody([{ profile: { email: 'e@example.com' }, events: Array.from({ length: 1001 }, (_, i) => ({ unique_id: `u${i}` })) }]),
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/events-bulk-create/data' },
  },
  {
    rule: 'unique_id repeated in one bulk request',
    method: 'POST',
    path: '/api/event-bulk-create-jobs',
    body: bulkEventsBody([{ profile: { email: 'e@example.com' }, events: [{ unique_id: 'same' }, { unique_id: 'same' }] }]),
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/unique_id' },
  },
  { rule: 'more than 1,000 subscriptions', method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', body: subscribeBody(Array.from({ length: 1001 }, (_, i) => emailSub(`s${i}@example.com`))), status: 400, code: 'invalid', source: { pointer: P } },
  { rule: 'more than 100 unsubscribes', method: 'POST', path: '/api/profile-subscription-bulk-delete-jobs', body: unsubscribeBody(Array.from({ length: 101 }, (_, i) => emailUnsub(`s${i}@example.com`))), status: 400, code: 'invalid', source: { pointer: P } },
  { rule: 'suppression without email', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: suppressBody([{ type: 'profile', attributes: {} }]), status: 400, code: 'invalid', source: { pointer: `${P}/0/attributes/email` } },
  { rule: 'suppression of an invalid email', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: suppressBody([{ type: 'profile', attributes: { email: 'nope' } }]), status: 400, code: 'invalid', source: { pointer: `${P}/0/attributes/email` } },
  { rule: 'suppression attribute other than email', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: suppressBody([{ type: 'profile', attributes: { email: 'a@example.com', phone_number: '+14155552671' } }]), status: 400, code: 'invalid', source: { pointer: `${P}/0/attributes/phone_number` } },
  { rule: 'more than 100 suppressions', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: suppressBody(Array.from({ length: 101 }, (_, i) => ({ type: 'profile', attributes: { email: `s${i}@example.com` } }))), status: 400, code: 'invalid', source: { pointer: P } },
  { rule: 'suppression of an unknown list', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: { data: { type: 'profile-suppression-bulk-create-job', attributes: {}, relationships: { list: { data: { type: 'list', id: 'NoSuch' } } } } }, status: 404, code: 'not_found', source: { pointer: '/data/relationships/list/data/id' } },
  { rule: 'suppression naming nobody', method: 'POST', path: '/api/profile-suppression-bulk-create-jobs', body: suppressBody([]), status: 400, code: 'invalid', source: { pointer: '/data/attributes/profiles' } },
  {
    rule: 'consented_at without historical_import',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([emailSub('h@example.com', { consent: 'SUBSCRIBED', consented_at: '2024-01-01T00:00:00Z' })]),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/subscriptions/email/marketing/consented_at` },
  },
  {
    rule: 'historical_import with a future consented_at',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([emailSub('h@example.com', { consent: 'SUBSCRIBED', consented_at: iso(NOW + 86_400_000) })], { historical_import: true }),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/subscriptions/email/marketing/consented_at` },
  },
  {
    rule: 'historical_import without consented_at',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([emailSub('h@example.com')], { historical_import: true }),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/subscriptions/email/marketing/consented_at` },
  },
  {
    rule: 'sms channel without phone_number',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([{ type: 'profile', attributes: { email: 'sms@example.com', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } } }]),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/phone_number` },
    detail: "'phone_number' must not be empty when the sms channel is included in 'subscriptions'.",
  },
  { rule: 'lists page[size] 11', method: 'GET', path: '/api/lists?page[size]=11', status: 400, code: 'invalid', source: { parameter: 'page[size]' } },
  { rule: 'list members page[size] 101', method: 'GET', path: (ids) => `/api/lists/${ids.list}/profiles?page[size]=101`, status: 400, code: 'invalid', source: { parameter: 'page[size]' } },
  {
    rule: 'more than 1,000 ids added to a list',
    method: 'POST',
    path: (ids) => `/api/lists/${ids.list}/relationships/profiles`,
    body: { data: Array.from({ length: 1001 }, (_, i) => ({ type: 'profile', id: `01PROFILE${String(i).padStart(17, '0')}` })) },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data' },
  },
  {
    rule: 'unknown profile id added to a list (observed: 400 Invalid profile IDs)',
    method: 'POST',
    path: (ids) => `/api/lists/${ids.list}/relationships/profiles`,
    body: { data: [{ type: 'profile', id: 'swdwdwdw' }] },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/' },
    detail: "Invalid profile IDs: {'swdwdwdw'}",
  },
  { rule: 'unknown list (observed detail)', method: 'GET', path: '/api/lists/UHbQG', status: 404, code: 'not_found', source: { pointer: '/data/' }, detail: 'List UHbQG does not exist.' },
  // request bodies: what the operation's schema does not have, wrong types, missing required members
  { rule: 'missing data', method: 'POST', path: '/api/events', body: { type: 'event' }, status: 400, code: 'invalid', source: { pointer: '/data' } },
  { rule: 'bad revision format', method: 'GET', path: '/api/lists', headers: { revision: '2026-7-15' }, status: 400, code: 'invalid', source: { parameter: 'revision' } },
  { rule: 'unknown profile attribute', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'u@example.com', shoe_size: 42 }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/shoe_size' } },
  { rule: 'id on profile create', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'id@example.com' }, '01ABCDEFGHJKMNPQRSTVWXYZ00'), status: 400, code: 'invalid', source: { pointer: '/data/id' } },
  { rule: 'anonymous_id on profile create (events only)', method: 'POST', path: '/api/profiles', body: profileBody({ anonymous_id: 'anon-1' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/anonymous_id' } },
  { rule: '_kx on profile create (upsert/events only)', method: 'POST', path: '/api/profiles', body: profileBody({ email: 'kx@example.com', _kx: 'abc' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/_kx' } },
  { rule: 'read-only attribute (created) on profile-import', method: 'POST', path: '/api/profile-import', body: profileBody({ email: 'ro@example.com', created: '2024-01-01T00:00:00Z' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/created' } },
  { rule: 'subscriptions as a profile attribute', method: 'POST', path: '/api/profile-import', body: profileBody({ email: 'sub@example.com', subscriptions: {} }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/subscriptions' } },
  { rule: 'PATCH without data.id', method: 'PATCH', path: '/api/profiles/01ABCDEFGHJKMNPQRSTVWXYZ00', body: profileBody({ first_name: 'x' }), status: 400, code: 'invalid', source: { pointer: '/data/id' } },
  { rule: 'patch_properties.unset not strings', method: 'POST', path: '/api/profile-import', body: { data: { type: 'profile', attributes: { email: 'pp@example.com' }, meta: { patch_properties: { unset: [1] } } } }, status: 400, code: 'invalid', source: { pointer: '/data/meta/patch_properties/unset' } },
  { rule: 'event time not a datetime', method: 'POST', path: '/api/events', body: eventBody({ time: 'yesterday' }, { email: 'e@example.com' }), status: 400, code: 'invalid', source: { pointer: '/data/attributes/time' } },
  {
    rule: 'metric with the wrong type',
    method: 'POST',
    path: '/api/events',
    body: { data: { type: 'event', attributes: { properties: {}, metric: { data: { type: 'event', attributes: { name: 'X' } } }, profile: { data: { type: 'profile', attributes: { email: 'e@example.com' } } } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/metric/data/type' },
  },
  {
    rule: 'unknown metric attribute',
    method: 'POST',
    path: '/api/events',
    body: { data: { type: 'event', attributes: { properties: {}, metric: { data: { type: 'metric', attributes: { name: 'X', integration: 'shopify' } } }, profile: { data: { type: 'profile', attributes: { email: 'e@example.com' } } } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/metric/data/attributes/integration' },
  },
  {
    rule: 'unknown attribute of a bulk event entry',
    method: 'POST',
    path: '/api/event-bulk-create-jobs',
    body: (() => {
      const b = bulkEventsBody([{ profile: { email: 'e@example.com' }, events: [{ unique_id: 'x1' }] }]);
      (b.data.attributes['events-bulk-create'].data[0]!.attributes as Record<string, unknown>).metric = 'Placed Order';
      return b;
    })(),
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/events-bulk-create/data/0/attributes/metric' },
  },
  {
    rule: 'bulk import list relationship of the wrong type',
    method: 'POST',
    path: '/api/profile-bulk-import-jobs',
    body: { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'l@example.com' } }] } }, relationships: { lists: { data: [{ type: 'segment', id: 'X' }] } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/relationships/lists/data/0' },
  },
  {
    rule: 'bulk import into a list that does not exist',
    method: 'POST',
    path: '/api/profile-bulk-import-jobs',
    body: { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'l@example.com' } }] } }, relationships: { lists: { data: [{ type: 'list', id: 'NoSuch' }] } } } },
    status: 404,
    code: 'not_found',
    source: { pointer: '/data/relationships/lists/data/0/id' },
  },
  {
    rule: 'subscribe into a list that does not exist',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: { ...subscribeBody([emailSub('nl@example.com')]), data: { ...subscribeBody([emailSub('nl@example.com')]).data, relationships: { list: { data: { type: 'list', id: 'NoSuch' } } } } },
    status: 404,
    code: 'not_found',
    source: { pointer: '/data/relationships/list/data/id' },
  },
  {
    rule: 'unknown attribute on a subscribe item',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([{ type: 'profile', attributes: { email: 'fn@example.com', first_name: 'F', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } }]),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/first_name` },
  },
  {
    rule: 'whatsapp.conversational on subscribe (unsubscribe only)',
    method: 'POST',
    path: '/api/profile-subscription-bulk-create-jobs',
    body: subscribeBody([{ type: 'profile', attributes: { phone_number: '+14155552671', subscriptions: { whatsapp: { conversational: { consent: 'SUBSCRIBED' } } } } }]),
    status: 400,
    code: 'invalid',
    source: { pointer: `${P}/0/attributes/subscriptions/whatsapp/conversational` },
  },
  {
    rule: 'custom_source on unsubscribe',
    method: 'POST',
    path: '/api/profile-subscription-bulk-delete-jobs',
    body: { data: { type: 'profile-subscription-bulk-delete-job', attributes: { custom_source: 'etl', profiles: { data: [emailUnsub('cs@example.com')] } } } },
    status: 400,
    code: 'invalid',
    source: { pointer: '/data/attributes/custom_source' },
  },
  { rule: 'a resource-object member the operation does not take (relationships on profile create)', method: 'POST', path: '/api/profiles', body: { data: { type: 'profile', attributes: { email: 'rel@example.com' }, relationships: { lists: { data: [] } } } }, status: 400, code: 'invalid', source: { pointer: '/data/relationships' } },
  { rule: 'meta on an event', method: 'POST', path: '/api/events', body: { data: { ...eventBody({}, { email: 'e@example.com' }).data, meta: {} } }, status: 400, code: 'invalid', source: { pointer: '/data/meta' } },
  // query parameters: values outside the spec's enums/bounds, operators the spec does not list for a field
  { rule: 'fields[profile] with an unknown field', method: 'GET', path: '/api/profiles?fields[profile]=email,shoe_size', status: 400, code: 'invalid', source: { parameter: 'fields[profile]' } },
  { rule: 'fields[...] of a type the operation does not return', method: 'GET', path: '/api/profiles?fields[event]=datetime', status: 400, code: 'invalid', source: { parameter: 'fields[event]' } },
  { rule: 'fields[list] with an unknown field', method: 'GET', path: '/api/lists?fields[list]=name,profile_count', status: 400, code: 'invalid', source: { parameter: 'fields[list]' } },
  { rule: 'fields[profile] of events (no subscriptions there)', method: 'GET', path: '/api/events?include=profile&fields[profile]=subscriptions', status: 400, code: 'invalid', source: { parameter: 'fields[profile]' } },
  { rule: 'unknown include', method: 'GET', path: '/api/lists?include=profiles', status: 400, code: 'invalid', source: { parameter: 'include' } },
  { rule: 'include on an operation without includes', method: 'GET', path: (ids) => `/api/lists/${ids.list}/profiles?include=lists`, status: 400, code: 'invalid', source: { parameter: 'include' } },
  { rule: 'unknown additional-fields value', method: 'GET', path: (ids) => `/api/lists/${ids.list}?additional-fields[list]=member_count`, status: 400, code: 'invalid', source: { parameter: 'additional-fields[list]' } },
  { rule: 'unknown sort', method: 'GET', path: '/api/profiles?sort=first_name', status: 400, code: 'invalid', source: { parameter: 'sort' } },
  { rule: 'sort on an operation without sorting', method: 'GET', path: '/api/metrics?sort=name', status: 400, code: 'invalid', source: { parameter: 'sort' } },
  { rule: 'page[size] 0', method: 'GET', path: '/api/profiles?page[size]=0', status: 400, code: 'invalid', source: { parameter: 'page[size]' } },
  { rule: 'page[size] not an integer', method: 'GET', path: '/api/events?page[size]=ten', status: 400, code: 'invalid', source: { parameter: 'page[size]' } },
  { rule: 'events page[size] 1001', method: 'GET', path: '/api/events?page[size]=1001', status: 400, code: 'invalid', source: { parameter: 'page[size]' } },
  { rule: 'filter operator not allowed for the field (profiles created: gt/lt only)', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('greater-or-equal(created,2024-01-01T00:00:00Z)')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter on a field the spec does not list (anonymous_id)', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('equals(anonymous_id,"a1")')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter with a bad datetime', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('greater-than(updated,yesterday)')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter any() without a list', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('any(email,"a@x.com")')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter equals() with a list', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('equals(email,["a@x.com"])')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter with bad syntax', method: 'GET', path: `/api/profiles?filter=${encodeURIComponent('equals(email,"a@x.com"')}`, status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'filter on an operation without filtering', method: 'GET', path: '/api/profile-bulk-import-jobs/X/import-errors?filter=equals(code,"invalid")', status: 400, code: 'invalid', source: { parameter: 'filter' } },
  { rule: 'throttled', server: 'throttle', method: 'POST', path: '/api/lists', body: listBody({ name: 'x' }), prime: 1, status: 429, code: 'throttled', source: { pointer: '/data' } },
];

let open: EmulatorHandle;
let keys: EmulatorHandle;
let throttle: EmulatorHandle;
const ids: Ids = { list: '' };

beforeAll(async () => {
  const frozen = Date.now();
  [open, keys, throttle] = await Promise.all([
    startEmulator({ port: 0, limits: 'off' }),
    startEmulator({ port: 0, limits: 'off', apiKeys: [KEY] }),
    // allowances × 0.01 (POST /api/lists: 1 per second) on a frozen clock: the second request is always throttled
    startEmulator({ port: 0, limits: 0.01, now: () => frozen }),
  ]);
  const r = await client(open.url)('POST', '/api/lists', listBody({ name: 'Target' }));
  ids.list = r.json.data.id;
});
afterAll(async () => {
  await Promise.all([open.close(), keys.close(), throttle.close()]);
});

describe('bad requests: one per rule', () => {
  it.each(ROWS.map((r) => [r.rule, r] as const))('%s', async (_rule, row) => {
    const base = row.server === 'keys' ? keys.url : row.server === 'throttle' ? throttle.url : open.url;
    const call: Call = client(base, row.key === undefined ? KEY : row.key);
    const path = typeof row.path === 'function' ? row.path(ids) : row.path;
    for (let i = 0; i < (row.prime ?? 0); i++) expect((await call(row.method, path, row.body, row.headers)).status).toBeLessThan(300);
    const r = await call(row.method, path, row.body, row.headers);
    expect(r.status).toBe(row.status);
    const err = r.json?.errors?.[0];
    expect(err).toBeDefined();
    expect(err.status).toBe(row.status);
    expect(err.code).toBe(row.code);
    // every error object carries all of Klaviyo's members
    for (const e of r.json.errors) expect(Object.keys(e).sort()).toEqual(['code', 'detail', 'id', 'links', 'meta', 'source', 'status', 'title']);
    if (row.source === null) expect(err.source).toEqual({ pointer: '/data/' });
    else expect(r.json.errors.map((e: { source?: Source }) => e.source)).toContainEqual(row.source);
    if (row.detail) expect(r.json.errors.map((e: { detail: string }) => e.detail)).toContain(row.detail);
    if (row.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('a rejected request changes nothing (the 1001-subscription request subscribed nobody)', async () => {
    const r = await client(open.url)('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"s0@example.com")')}`);
    expect(r.status).toBe(200);
    expect(r.json.data).toEqual([]);
  });
});

describe('requests the spec allows are accepted (the converse)', () => {
  const f = encodeURIComponent;
  it('properties nested 10 levels (Klaviyo\'s limit) are accepted and stored: events, profiles, bulk import', async () => {
    const call = client(open.url);
    const props = { x: nest(10), list: JSON.parse('['.repeat(10) + ']'.repeat(10)) };
    expect((await call('POST', '/api/events', eventBody({ properties: props, unique_id: 'ten' }, { email: 'ten-levels@example.com', properties: props }))).status).toBe(202);
    const created = await call('POST', '/api/profiles', profileBody({ email: 'ten-levels-2@example.com', properties: props }));
    expect(created.status).toBe(201);
    expect(created.json.data.attributes.properties).toEqual(props);
    const found = await call('GET', `/api/profiles?filter=${f('equals(email,"ten-levels@example.com")')}`);
    expect(found.json.data[0].attributes.properties).toEqual(props);
    const events = await call('GET', `/api/events?filter=${f(`equals(profile_id,"${found.json.data[0].id}")`)}`);
    expect(events.json.data[0].attributes.event_properties).toMatchObject(props);
  });

  it('a bulk-import profile nested 11 levels becomes an import-error of that profile; the others are imported', async () => {
    const call = client(open.url);
    const job = await call('POST', '/api/profile-bulk-import-jobs', {
      data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: [profileBody({ email: 'deep-1@example.com', properties: { x: nest(11) } }).data, profileBody({ email: 'ok-1@example.com', properties: { x: nest(10) } }).data] } } },
    });
    expect(job.status).toBe(202);
    const id = job.json.data.id as string;
    const done = await waitFor(async () => {
      const r = await call('GET', `/api/profile-bulk-import-jobs/${id}`);
      return r.json.data.attributes.status === 'complete' ? r.json.data.attributes : undefined;
    });
    expect(done).toMatchObject({ completed_count: 1, failed_count: 1 });
    const errors = await call('GET', `/api/profile-bulk-import-jobs/${id}/import-errors`);
    expect(errors.json.data).toHaveLength(1);
    expect(errors.json.data[0].attributes).toMatchObject({ code: 'invalid', detail: TOO_DEEP, source: { pointer: eleventh(`${P}/0/attributes/properties`) } });
    const deep = await call('GET', `/api/profiles?filter=${f('equals(email,"deep-1@example.com")')}`);
    expect(deep.json.data).toEqual([]);
  });

  it('_kx on profile-import and events, anonymous_id and attributes.meta on an event profile', async () => {
    const call = client(open.url);
    expect((await call('POST', '/api/profile-import', profileBody({ email: 'kx1@example.com', _kx: 'abc' }))).status).toBe(201);
    const ev = eventBody({}, { anonymous_id: 'anon-9', _kx: 'abc', meta: { patch_properties: { unset: 'x' } } });
    expect((await call('POST', '/api/events', ev)).status).toBe(202);
  });

  it('filter equals(_kx,…) on profiles is valid (matches nothing: _kx is not modelled)', async () => {
    const r = await client(open.url)('GET', `/api/profiles?filter=${f('equals(_kx,"abc")')}`);
    expect(r.status).toBe(200);
    expect(r.json.data).toEqual([]);
  });

  it('nested sparse fieldsets (subscriptions.email.marketing.consent) return only that member', async () => {
    const call = client(open.url);
    await call('POST', '/api/profiles', profileBody({ email: 'sparse@example.com', first_name: 'S' }));
    const r = await call('GET', `/api/profiles?filter=${f('equals(email,"sparse@example.com")')}&additional-fields[profile]=subscriptions&fields[profile]=first_name,subscriptions.email.marketing.consent`);
    expect(r.status).toBe(200);
    expect(r.json.data[0].attributes).toEqual({ first_name: 'S', subscriptions: { email: { marketing: { consent: 'NEVER_SUBSCRIBED' } } } });
    expect(r.json.data[0].attributes).not.toHaveProperty('anonymous_id');
  });

  it('meta.patch_properties on profile-import and bulk import items; the entry-level backfill of bulk events', async () => {
    const call = client(open.url);
    await call('POST', '/api/profile-import', profileBody({ email: 'pp1@example.com', properties: { tags: ['a'], old: 1 } }));
    const r = await call('POST', '/api/profile-import', {
      data: { type: 'profile', attributes: { email: 'pp1@example.com' }, meta: { patch_properties: { append: { tags: 'b' }, unset: 'old' } } },
    });
    expect(r.status).toBe(200);
    expect(r.json.data.attributes.properties).toEqual({ tags: ['a', 'b'] });
    const b = bulkEventsBody([{ profile: { email: 'bf@example.com' }, events: [{ unique_id: 'bf1' }] }]);
    (b.data.attributes['events-bulk-create'].data[0]!.attributes as Record<string, unknown>).backfill = true;
    expect((await call('POST', '/api/event-bulk-create-jobs', b)).status).toBe(202);
    const p = await call('GET', `/api/profiles?filter=${f('equals(email,"bf@example.com")')}`);
    const evs = await call('GET', `/api/events?filter=${f(`equals(profile_id,"${p.json.data[0].id}")`)}`);
    expect(evs.json.data[0].attributes.event_properties.$backfill).toBe(true);
  });

  it('a PATCH rejected for its meta changes nothing', async () => {
    const call = client(open.url);
    const c = await call('POST', '/api/profiles', profileBody({ email: 'patch-atomic@example.com', first_name: 'Before' }));
    const id = c.json.data.id as string;
    const bad = await call('PATCH', `/api/profiles/${id}`, { data: { type: 'profile', id, attributes: { first_name: 'After' }, meta: { patch_properties: { append: 'x' } } } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ pointer: '/data/meta/patch_properties/append' });
    const g = await call('GET', `/api/profiles/${id}`);
    expect(g.json.data.attributes.first_name).toBe('Before');
  });
});
