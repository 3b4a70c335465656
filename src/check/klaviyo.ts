/**
 * The Klaviyo part of `check`: the key is set, well-formed and accepted; it has every scope the endpoints the
 * pipeline uses need (the spec's `x-klaviyo-scopes`, src/klaviyo/scopes.ts); the lists and segments it names exist.
 *
 * Klaviyo has no endpoint that lists a key's scopes (its community answer: "no supported endpoint to retrieve the
 * scope of an API key"), so each scope is probed with a request needing only that scope: a one-item read, or for a
 * write scope a POST of an empty body, which Klaviyo (Django REST framework: permissions before the body is parsed)
 * answers 400 when the key may write and 403 `permission_denied` when it may not. Nothing is created.
 */
import { isEtlError } from '../core/errors.js';
import { newStats } from '../core/stats.js';
import { checkApiKey } from '../klaviyo/api-key.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { connectKlaviyo } from '../klaviyo/connect.js';
import type { EndpointKey } from '../klaviyo/endpoints.js';
import { scopesOf } from '../klaviyo/scopes.js';
import type { CheckContext, CheckResult } from './index.js';

/** Where the Klaviyo checks go. */
export interface KlaviyoCheckTarget {
  baseUrl: string;
  apiKey: string | undefined;
  /** The variable the key comes from (for messages; never the key). */
  apiKeyEnv: string;
  revision?: string;
  /** An embedded emulator (`--emulator`). */
  emulator?: boolean;
}

/** The endpoints a run uses, by the item kind the loader writes. */
const LOAD_ENDPOINTS: Record<string, readonly EndpointKey[]> = {
  profile: ['POST /api/profile-bulk-import-jobs', 'GET /api/profile-bulk-import-jobs/{job_id}', 'GET /api/profile-bulk-import-jobs/{id}/import-errors'],
  event: ['POST /api/event-bulk-create-jobs'],
  // and GET /api/profiles for the consent pre-read and verify, unless both are off (klaviyoEndpoints)
  subscription: ['POST /api/profile-subscription-bulk-create-jobs'],
};

/** A request needing exactly one scope, and the status that shows the key has it. */
interface Probe {
  key: EndpointKey;
  query?: Record<string, string>;
  body?: unknown;
  expect: number;
}

const PROBES: Record<string, Probe> = {
  'profiles:read': { key: 'GET /api/profiles', query: { 'page[size]': '1' }, expect: 200 },
  'events:read': { key: 'GET /api/events', query: { 'page[size]': '1' }, expect: 200 },
  'lists:read': { key: 'GET /api/lists', expect: 200 },
  'segments:read': { key: 'GET /api/segments', expect: 200 },
  'metrics:read': { key: 'GET /api/metrics', expect: 200 },
  'profiles:write': { key: 'POST /api/profile-import', body: {}, expect: 400 },
  'events:write': { key: 'POST /api/events', body: {}, expect: 400 },
  'lists:write': { key: 'POST /api/lists', body: {}, expect: 400 },
  'subscriptions:write': { key: 'POST /api/profile-subscription-bulk-create-jobs', body: {}, expect: 400 },
};

/** A subscription run reads profiles: the consent guard (unless turned off) and the `verify` read-back. */
function readsConsent(config: CheckContext['config']): boolean {
  const guardOff = (config.transform as { unsafe_resubscribe_opted_out?: boolean }).unsafe_resubscribe_opted_out === true;
  return !guardOff || (config.destination as { verify?: unknown }).verify !== undefined;
}

/** The endpoints a pipeline's run uses (for the scopes it needs). */
export function klaviyoEndpoints(ctx: Pick<CheckContext, 'config' | 'itemKind' | 'readsKlaviyo' | 'writesKlaviyo'>): EndpointKey[] {
  const keys: EndpointKey[] = [];
  const source = ctx.config.source as { list?: string; segment?: string };
  if (ctx.readsKlaviyo) keys.push(source.segment ? 'GET /api/segments/{id}/profiles' : 'GET /api/lists/{id}/profiles');
  if (ctx.writesKlaviyo) keys.push(...(LOAD_ENDPOINTS[ctx.itemKind] ?? []));
  if (ctx.writesKlaviyo && ctx.itemKind === 'subscription' && readsConsent(ctx.config)) keys.push('GET /api/profiles');
  return keys;
}

/** The lists and segments a pipeline names (destination lists, a subscription's list, an export's list or segment). */
function namedGroups(ctx: CheckContext): { kind: 'list' | 'segment'; id: string }[] {
  const found: { kind: 'list' | 'segment'; id: string }[] = [];
  const source = ctx.config.source as { list?: string; segment?: string };
  if (ctx.readsKlaviyo && source.list) found.push({ kind: 'list', id: source.list });
  if (ctx.readsKlaviyo && source.segment) found.push({ kind: 'segment', id: source.segment });
  if (ctx.writesKlaviyo) {
    for (const id of (ctx.config.destination as { lists?: string[] }).lists ?? []) found.push({ kind: 'list', id });
    const list = (ctx.config.transform as { list?: string }).list;
    if (list) found.push({ kind: 'list', id: list });
  }
  return found.filter((g, i) => found.findIndex((o) => o.kind === g.kind && o.id === g.id) === i);
}

/** The Klaviyo checks of a pipeline. */
export async function checkKlaviyo(ctx: CheckContext, target: KlaviyoCheckTarget): Promise<CheckResult[]> {
  const where = target.emulator ? `the embedded emulator (${target.baseUrl})` : target.baseUrl;
  const keyFail = (detail: string, fix: string): CheckResult[] => [{ target: 'klaviyo', check: 'key', status: 'fail', detail, fix }];
  if (!target.apiKey) {
    return keyFail(`${target.apiKeyEnv} is not set`, `export ${target.apiKeyEnv}=pk_… (a private API key; Settings → API keys in Klaviyo), or use --emulator`);
  }
  try {
    checkApiKey(target.apiKey);
  } catch (error) {
    return keyFail(isEtlError(error) ? error.message : String(error), `put a private key (pk_…) in ${target.apiKeyEnv}`);
  }
  const scopes = [...new Set(klaviyoEndpoints(ctx).flatMap((k) => scopesOf(k)))].sort();
  const connection = connectKlaviyo(
    { baseUrl: target.baseUrl, revision: target.revision ?? '2026-07-15', rateLimits: undefined, retries: 0, timeoutMs: ctx.timeoutMs, retryBudgetMs: ctx.timeoutMs },
    { apiKey: target.apiKey, stats: newStats() },
  );
  try {
    const results: CheckResult[] = [];
    const granted = new Set<string>();
    for (const scope of scopes) {
      const outcome = await probe(connection.client, scope, ctx, granted);
      if (outcome.kind === 'granted') granted.add(scope);
      if (outcome.kind === 'key-refused' || outcome.kind === 'unreachable') {
        const fix = outcome.kind === 'unreachable' ? 'check KLAVIYO_BASE_URL / destination.baseUrl and the network (proxy, firewall)' : `check the key in ${target.apiKeyEnv}: wrong, revoked, or of another account`;
        return [{ target: 'klaviyo', check: 'key', status: 'fail', detail: `${where}: ${outcome.detail}`, fix }];
      }
      if (results.length === 0) results.push({ target: 'klaviyo', check: 'key', status: 'ok', detail: `accepted by ${where}` });
      results.push(scopeResult(scope, outcome, ctx));
    }
    if (results.length === 0) {
      results.push({ target: 'klaviyo', check: 'key', status: 'skip', detail: `check knows no Klaviyo endpoint of items of kind ${ctx.itemKind}: key and scopes not checked` });
    }
    for (const group of namedGroups(ctx)) results.push(await checkGroup(connection.client, group));
    return results;
  } finally {
    await connection.close();
  }
}

type ProbeOutcome =
  | { kind: 'granted' | 'denied' | 'untold'; detail: string }
  | { kind: 'key-refused' | 'unreachable'; detail: string };

/** Whether the key has `scope`: by its own probe, else by an endpoint of the pipeline that needs it. */
async function probe(client: KlaviyoClient, scope: string, ctx: CheckContext, granted: ReadonlySet<string>): Promise<ProbeOutcome> {
  const own = PROBES[scope];
  const p: Probe = own ?? { key: klaviyoEndpoints(ctx).find((k) => scopesOf(k).includes(scope))!, body: {}, expect: 400 };
  try {
    const response = await client.request(p.key, { query: p.query, body: p.body, idempotent: false });
    if (response.status === p.expect || response.ok) return { kind: 'granted', detail: `${p.key} answered ${response.status}` };
    return { kind: 'unreachable', detail: `${p.key} answered ${response.status}, not ${p.expect}: is this Klaviyo's API?` };
  } catch (error) {
    if (!isEtlError(error)) throw error;
    const status = error.context.status;
    if (error.code === 'KLAVIYO_AUTH' && status === 403) {
      // a 403 names no scope: it is this one when the key has every other scope the probe needs
      const others = scopesOf(p.key).filter((s) => s !== scope && !granted.has(s));
      return { kind: others.length === 0 ? 'denied' : 'untold', detail: `${p.key} answered 403 permission_denied` };
    }
    if (error.code === 'KLAVIYO_AUTH') return { kind: 'key-refused', detail: `the key was refused (${String(status)})` };
    return { kind: 'unreachable', detail: error.message };
  }
}

function scopeResult(scope: string, outcome: ProbeOutcome, ctx: CheckContext): CheckResult {
  const uses = klaviyoEndpoints(ctx).filter((k) => scopesOf(k).includes(scope));
  const check = `scope ${scope}`;
  if (outcome.kind === 'granted') return { target: 'klaviyo', check, status: 'ok', detail: `granted (needed by ${uses.join(', ')})` };
  const fix = `give the key ${scope} (Klaviyo → Settings → API keys → edit the key's scopes), or use a key that has it`;
  if (outcome.kind === 'denied') return { target: 'klaviyo', check, status: 'fail', detail: `missing: ${uses.join(', ')} will answer 403`, fix };
  return { target: 'klaviyo', check, status: 'fail', detail: `missing ${scope} or another scope of ${uses.join(', ')} (${outcome.detail})`, fix: `give the key ${scopesOf(uses[0] ?? '').join(', ')}` };
}

/** A list or segment the pipeline names exists in the key's account. */
async function checkGroup(client: KlaviyoClient, group: { kind: 'list' | 'segment'; id: string }): Promise<CheckResult> {
  const key: EndpointKey = group.kind === 'list' ? 'GET /api/lists/{id}' : 'GET /api/segments/{id}';
  const check = `${group.kind} ${group.id}`;
  try {
    const response = await client.request(key, { path: `/api/${group.kind}s/${encodeURIComponent(group.id)}` });
    if (response.ok) {
      const name = (response.body as { data?: { attributes?: { name?: string } } } | undefined)?.data?.attributes?.name;
      return { target: 'klaviyo', check, status: 'ok', detail: `exists${name ? ` ("${name}")` : ''}` };
    }
    return {
      target: 'klaviyo',
      check,
      status: 'fail',
      detail: response.status === 404 ? `no ${group.kind} with this id in the key's account` : `${key} answered ${response.status}`,
      fix: `copy the ${group.kind} id from Klaviyo (Audience → Lists & segments → the ${group.kind} → Settings), and check the key belongs to that account`,
    };
  } catch (error) {
    if (!isEtlError(error)) throw error;
    return { target: 'klaviyo', check, status: 'fail', detail: error.message, fix: `give the key ${group.kind}s:read to let check see it` };
  }
}
