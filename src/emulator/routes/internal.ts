/**
 * Emulator-only endpoints outside Klaviyo's `/api` space (no auth). The account is the one named by `?key=<api
 * key>` or the `Authorization` header when given; otherwise `state` sums every account and the NDJSON streams
 * cover every account.
 */
import type { ServerResponse } from 'node:http';
import { isoSeconds } from '../http.js';
import type { RequestContext, RouteModule } from '../router.js';
import { profileAttributes, type Account, type EventRecord } from '../state.js';
import { subscriptionsAttribute } from '../subscriptions.js';

function accounts(ctx: RequestContext): Account[] {
  return ctx.accountOrNull ? [ctx.accountOrNull] : [...ctx.emulator.accounts.values()];
}

/**
 * Write lines with back-pressure. The status is sent before the first line, so a failure part-way (an emulator
 * bug) cannot become an error response: the connection is destroyed, and the client sees a cut stream rather than
 * waiting forever.
 */
async function streamNdjson(res: ServerResponse, lines: Iterable<unknown>): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  let buf = '';
  try {
    for (const line of lines) {
      buf += JSON.stringify(line) + '\n';
      if (buf.length > 64 * 1024) {
        const ok = res.write(buf);
        buf = '';
        if (!ok) await new Promise<void>((resolve) => res.once('drain', resolve));
        if (res.destroyed) return;
      }
    }
  } catch (err) {
    console.error(`emulator: streaming ${res.req.url} failed: ${err instanceof Error ? err.message : String(err)}`);
    res.destroy();
    return;
  }
  res.end(buf);
}

function* profileLines(list: Account[]): Generator<unknown> {
  for (const a of list) {
    const groups = [...a.lists.values()];
    for (const p of a.profileOrder) {
      const lists: { id: string; joined_group_at: string }[] = [];
      for (const g of groups) {
        const at = g.members.get(p.id);
        if (at !== undefined) lists.push({ id: g.id, joined_group_at: isoSeconds(at) });
      }
      yield { id: p.id, ...profileAttributes(p), lists, subscriptions: subscriptionsAttribute(p) };
    }
  }
}

/** An account's events: the generated ones (time order), then the stored ones (arrival order). */
function* accountEvents(a: Account): Generator<EventRecord> {
  const gen = a.generated;
  if (gen) for (let i = 0; i < gen.length; i++) yield gen.item(i);
  yield* a.events;
}

function* eventLines(list: Account[]): Generator<unknown> {
  for (const a of list) {
    const names = new Map<string, string>();
    for (const m of a.metricsById.values()) names.set(m.id, m.name);
    for (const e of accountEvents(a)) {
      const p = a.profilesById.get(e.profileId);
      yield {
        id: e.id,
        metric: names.get(e.metricId),
        metric_id: e.metricId,
        profile_id: e.profileId,
        email: p?.strings.email ?? null,
        time: new Date(e.time).toISOString(),
        value: e.value ?? null,
        value_currency: e.valueCurrency ?? null,
        unique_id: e.uniqueId ?? null,
        properties: e.properties,
        backfill: e.backfill,
      };
    }
  }
}

export const internalRoutes: RouteModule = [
  { method: 'GET', path: '/_emulator/state', endpoint: null, handler: (ctx) => ({ status: 200, body: ctx.emulator.summary(ctx.accountOrNull), headers: { 'Content-Type': 'application/json' } }) },
  {
    method: 'GET',
    path: '/_emulator/profiles',
    endpoint: null,
    async handler(ctx) {
      await streamNdjson(ctx.res, profileLines(accounts(ctx)));
      return undefined;
    },
  },
  {
    method: 'GET',
    path: '/_emulator/events',
    endpoint: null,
    async handler(ctx) {
      await streamNdjson(ctx.res, eventLines(accounts(ctx)));
      return undefined;
    },
  },
  {
    method: 'POST',
    path: '/_emulator/reset',
    endpoint: null,
    handler(ctx) {
      ctx.emulator.reset(ctx.accountOrNull);
      return { status: 204 };
    },
  },
  {
    // Klaviyo forgets a bulk-import job 7 days after it ends: tests of what a resume does then drop one here
    // (with whatever it has not processed yet). 204, or 404 for an unknown job.
    method: 'DELETE',
    path: '/_emulator/jobs/{job_id}',
    endpoint: null,
    handler: (ctx) => ({ status: ctx.emulator.forgetJob(ctx.params.job_id!, ctx.accountOrNull) ? 204 : 404 }),
  },
  { method: 'GET', path: '/_emulator/health', endpoint: null, handler: () => ({ status: 200, body: { ok: true } }) },
];
