/**
 * Flows: `GET /api/flows` (50 per page), `GET /api/flows/{id}` (with `additional-fields[flow]=definition`),
 * `GET /api/flows/{id}/flow-actions`, `GET /api/flow-actions/{id}`, `GET /api/flow-actions/{id}/flow-messages`,
 * `GET /api/flow-messages/{id}`, with the spec's filters, sorts and includes. Flows come from the seed.
 */
import { isoMicros, type Reply } from '../http.js';
import { conditionValues, pickFields, sparseFields, type FilterCondition } from '../query.js';
import { Catalog, type FlowActionRecord, type FlowMessageRecord, type FlowRecord } from '../catalog.js';
import type { RequestContext, RouteModule } from '../router.js';
import { notFound } from './common.js';
import { collectionPage, collectionReply, includes, Included, relationship, resourceReply, type FieldValue } from './catalog-common.js';
import { templateResource } from './templates.js';

const DATES = new Set(['created', 'updated']);

/** The message definition: its content with `template_id`, `name` and `id`. */
function messageDefinition(m: FlowMessageRecord): Record<string, unknown> {
  return { ...m.content, template_id: m.templateId, name: m.name, id: m.id };
}

/** An action's `definition` as Klaviyo encodes it: id, type, the next action, and its data (send actions: message, status). */
function actionDefinition(a: FlowActionRecord, flow: FlowRecord | undefined, messages: ReadonlyMap<string, FlowMessageRecord>): Record<string, unknown> {
  const order = flow?.actionIds ?? [];
  const next = order[order.indexOf(a.id) + 1];
  const data: Record<string, unknown> = { ...a.data };
  const m = a.messageIds.length > 0 ? messages.get(a.messageIds[0]!) : undefined;
  if (m) data.message = messageDefinition(m);
  if (a.status !== null) data.status = a.status;
  return { id: a.id, type: a.type, links: { next: next ?? null }, data };
}

function flowDefinition(f: FlowRecord, ctx: RequestContext): Record<string, unknown> {
  const cat = ctx.account.catalog;
  const triggers = f.triggerType === 'Added to List' ? [{ type: 'list', id: f.triggerId }] : f.triggerType === 'Metric' ? [{ type: 'metric', id: f.triggerId, trigger_filter: null }] : [];
  const actions = f.actionIds.flatMap((id) => {
    const a = cat.flowActions.get(id);
    return a ? [actionDefinition(a, f, cat.flowMessages)] : [];
  });
  return { triggers, profile_filter: null, actions, entry_action_id: f.actionIds[0] ?? null, reentry_criteria: null };
}

function flowResource(f: FlowRecord, ctx: RequestContext, fields: Set<string> | null, definition = false): Record<string, unknown> {
  const self = `${ctx.emulator.baseUrl}/api/flows/${f.id}/`;
  const attrs: Record<string, unknown> = {
    name: f.name,
    status: f.status,
    archived: f.archived,
    created: isoMicros(f.created),
    updated: isoMicros(f.updated),
    trigger_type: f.triggerType,
  };
  if (definition) attrs.definition = flowDefinition(f, ctx);
  const picked = pickFields(attrs, fields);
  // an additional field asked for is returned even when a sparse fieldset leaves it out
  if (definition && !('definition' in picked)) picked.definition = attrs.definition;
  return {
    type: 'flow',
    id: f.id,
    attributes: picked,
    relationships: {
      'flow-actions': relationship(self, 'flow-actions', f.actionIds.map((id) => ({ type: 'flow-action', id }))),
      tags: relationship(self, 'tags', f.tags.map((name) => ({ type: 'tag', id: Catalog.tagId(name) }))),
    },
    links: { self },
  };
}

function actionResource(a: FlowActionRecord, ctx: RequestContext, fields: Set<string> | null): Record<string, unknown> {
  const cat = ctx.account.catalog;
  const self = `${ctx.emulator.baseUrl}/api/flow-actions/${a.id}/`;
  const attrs = { created: isoMicros(a.created), updated: isoMicros(a.updated), definition: actionDefinition(a, cat.flows.get(a.flowId), cat.flowMessages) };
  return {
    type: 'flow-action',
    id: a.id,
    attributes: pickFields(attrs, fields),
    relationships: {
      flow: relationship(self, 'flow', { type: 'flow', id: a.flowId }),
      'flow-messages': relationship(self, 'flow-messages', a.messageIds.map((id) => ({ type: 'flow-message', id }))),
    },
    links: { self },
  };
}

function messageResource(m: FlowMessageRecord, ctx: RequestContext, fields: Set<string> | null): Record<string, unknown> {
  const self = `${ctx.emulator.baseUrl}/api/flow-messages/${m.id}/`;
  const attrs = { channel: m.channel, created: isoMicros(m.created), updated: isoMicros(m.updated), definition: messageDefinition(m) };
  return {
    type: 'flow-message',
    id: m.id,
    attributes: pickFields(attrs, fields),
    relationships: {
      'flow-action': relationship(self, 'flow-action', { type: 'flow-action', id: m.actionId }),
      template: relationship(self, 'template', m.templateId === null ? undefined : { type: 'template', id: m.templateId }),
    },
    links: { self },
  };
}

function record<T>(map: ReadonlyMap<string, T>, id: string, what: string): T {
  const r = map.get(id);
  if (!r) throw notFound(what, id);
  return r;
}

/** What `include` asks for, for flows, actions or messages. */
function flowIncludes(ctx: RequestContext, flows: FlowRecord[], actions: FlowActionRecord[], messages: FlowMessageRecord[]): Included | null {
  const want = includes(ctx);
  if (want.size === 0) return null;
  const cat = ctx.account.catalog;
  const out = new Included();
  const q = (type: string) => sparseFields(ctx.query, type);
  for (const f of flows) {
    if (want.has('flow-actions')) for (const id of f.actionIds) if (cat.flowActions.has(id)) out.add(actionResource(cat.flowActions.get(id)!, ctx, q('flow-action')));
    if (want.has('tags')) for (const name of f.tags) out.add({ type: 'tag', id: Catalog.tagId(name), attributes: pickFields({ name }, q('tag')), links: { self: `${ctx.emulator.baseUrl}/api/tags/${Catalog.tagId(name)}/` } });
  }
  for (const a of actions) {
    const f = cat.flows.get(a.flowId);
    if (want.has('flow') && f) out.add(flowResource(f, ctx, q('flow')));
    if (want.has('flow-messages')) for (const id of a.messageIds) if (cat.flowMessages.has(id)) out.add(messageResource(cat.flowMessages.get(id)!, ctx, q('flow-message')));
  }
  for (const m of messages) {
    const a = cat.flowActions.get(m.actionId);
    if (want.has('flow-action') && a) out.add(actionResource(a, ctx, q('flow-action')));
    const t = m.templateId === null ? undefined : cat.templates.get(m.templateId);
    if (want.has('template') && t) out.add(templateResource(t, ctx.emulator.baseUrl, q('template'), false));
  }
  return out;
}

function flowField(f: FlowRecord, field: string): FieldValue {
  const values: Record<string, FieldValue> = { id: f.id, name: f.name, status: f.status, archived: f.archived, created: f.created, updated: f.updated, trigger_type: f.triggerType };
  return values[field] ?? null;
}

/** Klaviyo's action types as the `action_type` filter and sort read them: `SEND_EMAIL`, `TIME_DELAY`… */
const actionType = (a: FlowActionRecord) => a.type.toUpperCase().replace(/-/g, '_');

function actionField(a: FlowActionRecord, field: string): FieldValue {
  const values: Record<string, FieldValue> = { id: a.id, action_type: actionType(a), status: a.status, created: a.created, updated: a.updated };
  return values[field] ?? null;
}

/** `action_type` matches Klaviyo's upper-case names and the definition's `type` (`send-email`) alike. */
function actionTypeSelection(conds: FilterCondition[]): (a: FlowActionRecord) => boolean {
  const c = conds.find((x) => x.field === 'action_type');
  if (!c) return () => true;
  const vals = conditionValues(c);
  return (a) => vals.includes(actionType(a)) || vals.includes(a.type);
}

function messageField(m: FlowMessageRecord, field: string): FieldValue {
  const values: Record<string, FieldValue> = { id: m.id, name: m.name, created: m.created, updated: m.updated };
  return values[field] ?? null;
}

/** Unarchived flows unless `equals(archived,true)` asks for the archived ones (as for campaigns). */
function archivedSelection(conds: FilterCondition[]): (f: FlowRecord) => boolean {
  const archived = conds.find((c) => c.field === 'archived')?.value === true;
  return (f) => f.archived === archived;
}

const FLOW_SPEC = { endpoint: 'GET /api/flows', get: flowField, dates: DATES, skip: new Set(['archived']), where: archivedSelection } as const;

function listFlows(ctx: RequestContext): Reply {
  const { page, links } = collectionPage(ctx, ctx.account.catalog.flows.values(), FLOW_SPEC);
  const fields = sparseFields(ctx.query, 'flow');
  return collectionReply(
    page.map((f) => flowResource(f, ctx, fields)),
    links,
    flowIncludes(ctx, page, [], []),
  );
}

function flowActions(ctx: RequestContext): Reply {
  const cat = ctx.account.catalog;
  const f = record(cat.flows, ctx.params.id!, 'flow');
  const all = f.actionIds.flatMap((id) => cat.flowActions.get(id) ?? []);
  const spec = { endpoint: 'GET /api/flows/{id}/flow-actions', get: actionField, dates: DATES, skip: new Set(['action_type']), where: actionTypeSelection } as const;
  const { page, links } = collectionPage(ctx, all, spec);
  const fields = sparseFields(ctx.query, 'flow-action');
  return collectionReply(
    page.map((a) => actionResource(a, ctx, fields)),
    links,
    null,
  );
}

function actionMessages(ctx: RequestContext): Reply {
  const cat = ctx.account.catalog;
  const a = record(cat.flowActions, ctx.params.id!, 'flow action');
  const all = a.messageIds.flatMap((id) => cat.flowMessages.get(id) ?? []);
  const { page, links } = collectionPage(ctx, all, { endpoint: 'GET /api/flow-actions/{id}/flow-messages', get: messageField, dates: DATES });
  const fields = sparseFields(ctx.query, 'flow-message');
  return collectionReply(
    page.map((m) => messageResource(m, ctx, fields)),
    links,
    null,
  );
}

/**
 * `include=flow-triggers` on metrics, lists and segments: each resource's `flow-triggers` relationship gets the ids of
 * the flows it triggers (metric: `Metric` flows, list/segment: `Added to List` flows with that trigger id), and
 * those flows are returned for `included`; null when not asked for.
 */
export function includeFlowTriggers(ctx: RequestContext, resources: Record<string, unknown>[], kind: 'metric' | 'list' | 'segment'): Record<string, unknown>[] | null {
  if (!includes(ctx).has('flow-triggers')) return null;
  const triggerType = kind === 'metric' ? 'Metric' : 'Added to List';
  const flows = [...ctx.account.catalog.flows.values()].filter((f) => f.triggerType === triggerType && f.triggerId !== null);
  const out = new Included();
  const fields = sparseFields(ctx.query, 'flow');
  for (const r of resources) {
    const triggered = flows.filter((f) => f.triggerId === r.id);
    const rel = (r.relationships as Record<string, Record<string, unknown>>)['flow-triggers']!;
    rel.data = triggered.map((f) => ({ type: 'flow', id: f.id }));
    for (const f of triggered) out.add(flowResource(f, ctx, fields));
  }
  return out.items;
}

export const flowRoutes: RouteModule = [
  { method: 'GET', path: '/api/flows', handler: listFlows },
  {
    method: 'GET',
    path: '/api/flows/{id}',
    handler(ctx) {
      const f = record(ctx.account.catalog.flows, ctx.params.id!, 'flow');
      const definition = (ctx.query.get('additional-fields[flow]') ?? '').split(',').some((s) => s.trim() === 'definition');
      return resourceReply(flowResource(f, ctx, sparseFields(ctx.query, 'flow'), definition), flowIncludes(ctx, [f], [], []));
    },
  },
  { method: 'GET', path: '/api/flows/{id}/flow-actions', handler: flowActions },
  {
    method: 'GET',
    path: '/api/flow-actions/{id}',
    handler(ctx) {
      const a = record(ctx.account.catalog.flowActions, ctx.params.id!, 'flow action');
      return resourceReply(actionResource(a, ctx, sparseFields(ctx.query, 'flow-action')), flowIncludes(ctx, [], [a], []));
    },
  },
  { method: 'GET', path: '/api/flow-actions/{id}/flow-messages', handler: actionMessages },
  {
    method: 'GET',
    path: '/api/flow-messages/{id}',
    handler(ctx) {
      const m = record(ctx.account.catalog.flowMessages, ctx.params.id!, 'flow message');
      return resourceReply(messageResource(m, ctx, sparseFields(ctx.query, 'flow-message')), flowIncludes(ctx, [], [], [m]));
    },
  },
];
