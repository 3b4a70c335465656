/**
 * The catalog part of the seed file (`metrics`, `templates`, `campaigns`, `flows`; see src/emulator/seed.ts) and
 * its application to an account. Ids left out are drawn from the account's id generator; times are ISO 8601
 * strings (default: the moment the account is created). Content objects are Klaviyo's wire fields.
 */
import { z } from 'zod';
import type { CampaignChannel, CampaignRecord, FlowActionRecord } from './catalog.js';
import type { Account } from './state.js';

const time = z.iso.datetime({ offset: true }).optional();
const content = z.record(z.string(), z.unknown());

const seedMetric = z.strictObject({ id: z.string().min(1).optional(), name: z.string().min(1), created: time });

const seedTemplate = z.strictObject({
  id: z.string().min(1).optional(),
  name: z.string().min(1),
  editor_type: z.string().optional(),
  html: z.string(),
  text: z.string().nullable().optional(),
  amp: z.string().nullable().optional(),
  created: time,
  updated: time,
});

const seedCampaignMessage = z.strictObject({
  id: z.string().min(1).optional(),
  label: z.string().nullable().optional(),
  content: content.optional(),
  template_id: z.string().nullable().optional(),
  created_at: time,
  updated_at: time,
});

const seedCampaign = z.strictObject({
  id: z.string().min(1).optional(),
  name: z.string().min(1),
  channel: z.enum(['email', 'sms', 'mobile_push']),
  status: z.string().optional(),
  archived: z.boolean().optional(),
  created_at: time,
  updated_at: time,
  scheduled_at: time.nullable(),
  send_time: time.nullable(),
  audiences: z.strictObject({ included: z.array(z.string()), excluded: z.array(z.string()).optional() }).optional(),
  send_strategy: content.optional(),
  tags: z.array(z.string().min(1)).optional(),
  messages: z.array(seedCampaignMessage).optional(),
});

const seedFlowMessage = z.strictObject({
  id: z.string().min(1).optional(),
  name: z.string(),
  channel: z.enum(['email', 'sms']).optional(),
  content: content.optional(),
  template_id: z.string().nullable().optional(),
  created: time,
  updated: time,
});

const seedFlowAction = z.strictObject({
  id: z.string().min(1).optional(),
  type: z.string().min(1),
  status: z.enum(['draft', 'manual', 'live', 'disabled']).optional(),
  data: content.optional(),
  created: time,
  updated: time,
  messages: z.array(seedFlowMessage).optional(),
});

const seedFlow = z.strictObject({
  id: z.string().min(1).optional(),
  name: z.string().min(1),
  status: z.enum(['draft', 'manual', 'live']).optional(),
  archived: z.boolean().optional(),
  trigger_type: z.enum(['Added to List', 'Date Based', 'Low Inventory', 'Metric', 'Price Drop', 'Unconfigured']).optional(),
  trigger_id: z.string().nullable().optional(),
  created: time,
  updated: time,
  tags: z.array(z.string().min(1)).optional(),
  actions: z.array(seedFlowAction).optional(),
});

/** The seed file's catalog keys (spread into its schema). */
export const CATALOG_SEED_SHAPE = {
  metrics: z.array(seedMetric).optional(),
  templates: z.array(seedTemplate).optional(),
  campaigns: z.array(seedCampaign).optional(),
  flows: z.array(seedFlow).optional(),
};

export type SeedMetric = z.infer<typeof seedMetric>;
export type SeedTemplate = z.infer<typeof seedTemplate>;
export type SeedCampaign = z.infer<typeof seedCampaign>;
export type SeedFlow = z.infer<typeof seedFlow>;
type SeedFlowAction = z.infer<typeof seedFlowAction>;

/** Catalog seed: what `generateCatalog` returns and the seed file's catalog keys hold. */
export interface CatalogSeed {
  metrics?: SeedMetric[];
  templates?: SeedTemplate[];
  campaigns?: SeedCampaign[];
  flows?: SeedFlow[];
}

const ms = (iso: string | null | undefined, def: number): number => (iso ? Date.parse(iso) : def);

/** Default `definition.content` of a campaign message of `channel`. */
function defaultContent(channel: CampaignChannel, name: string): Record<string, unknown> {
  if (channel === 'email') {
    return { subject: name, preview_text: null, from_email: 'hello@example.com', from_label: 'Example', reply_to_email: null, cc_email: null, bcc_email: null };
  }
  if (channel === 'sms') return { body: name, media_url: null };
  return { title: name, body: name, dynamic_image: null };
}

/** Default definition of a flow message of `channel` (FlowEmail / FlowSms fields besides id, name, template_id). */
function defaultFlowContent(channel: string, name: string): Record<string, unknown> {
  const common = { smart_sending_enabled: true, transactional: false, add_tracking_params: false, custom_tracking_params: null, additional_filters: null };
  if (channel === 'sms') {
    return { body: name, image_id: null, dynamic_image: null, shorten_links: true, include_contact_card: false, add_org_prefix: true, add_info_link: true, add_opt_out_language: false, sms_quiet_hours_enabled: true, ...common };
  }
  return { from_email: 'hello@example.com', from_label: 'Example', reply_to_email: null, cc_email: null, bcc_email: null, subject_line: name, preview_text: null, ...common };
}

function applyCampaign(account: Account, c: SeedCampaign, now: number): void {
  const cat = account.catalog;
  const created = ms(c.created_at, now);
  const rec: CampaignRecord = {
    id: c.id ?? account.ids.ulid(created),
    name: c.name,
    channel: c.channel,
    status: c.status ?? 'Draft',
    archived: c.archived ?? false,
    created,
    updated: ms(c.updated_at, created),
    scheduledAt: c.scheduled_at ? Date.parse(c.scheduled_at) : null,
    sendTime: c.send_time ? Date.parse(c.send_time) : null,
    audiences: { included: c.audiences?.included ?? [], excluded: c.audiences?.excluded ?? [] },
    sendStrategy: c.send_strategy ?? { method: 'immediate' },
    tags: c.tags ?? [],
    messageIds: [],
  };
  cat.campaigns.set(rec.id, rec);
  const messages = c.messages ?? [{}];
  for (const m of messages) {
    const mCreated = ms(m.created_at, created);
    const id = m.id ?? account.ids.ulid(mCreated);
    cat.campaignMessages.set(id, {
      id,
      campaignId: rec.id,
      label: m.label ?? c.name,
      content: { ...defaultContent(c.channel, c.name), ...m.content },
      templateId: m.template_id ?? null,
      created: mCreated,
      updated: ms(m.updated_at, mCreated),
    });
    rec.messageIds.push(id);
  }
}

/** Flow action ids are numeric strings in Klaviyo: the next free one from 90000001. */
function actionId(account: Account): string {
  const actions = account.catalog.flowActions;
  let n = 90_000_001 + actions.size;
  while (actions.has(String(n))) n++;
  return String(n);
}

function applyAction(account: Account, flowId: string, a: SeedFlowAction, created: number): FlowActionRecord {
  const cat = account.catalog;
  const aCreated = ms(a.created, created);
  const isSend = a.type.startsWith('send-');
  const rec: FlowActionRecord = {
    id: a.id ?? actionId(account),
    flowId,
    type: a.type,
    status: isSend ? (a.status ?? 'live') : (a.status ?? null),
    data: a.data ?? (a.type === 'time-delay' ? { unit: 'days', value: 1, secondary_value: null, delay_until_time: null, delay_until_weekdays: null } : {}),
    created: aCreated,
    updated: ms(a.updated, aCreated),
    messageIds: [],
  };
  cat.flowActions.set(rec.id, rec);
  for (const m of a.messages ?? []) {
    const mCreated = ms(m.created, aCreated);
    let id = m.id ?? account.ids.shortId();
    while (!m.id && cat.flowMessages.has(id)) id = account.ids.shortId();
    const channel = m.channel ?? (a.type === 'send-sms' ? 'sms' : 'email');
    cat.flowMessages.set(id, { id, actionId: rec.id, name: m.name, channel, content: { ...defaultFlowContent(channel, m.name), ...m.content }, templateId: m.template_id ?? null, created: mCreated, updated: ms(m.updated, mCreated) });
    rec.messageIds.push(id);
  }
  return rec;
}

function applyFlow(account: Account, f: SeedFlow, now: number): void {
  const cat = account.catalog;
  const created = ms(f.created, now);
  let id = f.id ?? account.ids.shortId();
  while (!f.id && cat.flows.has(id)) id = account.ids.shortId();
  const actions = (f.actions ?? []).map((a) => applyAction(account, id, a, created).id);
  cat.flows.set(id, {
    id,
    name: f.name,
    status: f.status ?? 'draft',
    archived: f.archived ?? false,
    triggerType: f.trigger_type ?? 'Unconfigured',
    triggerId: f.trigger_id ?? null,
    created,
    updated: ms(f.updated, created),
    tags: f.tags ?? [],
    actionIds: actions,
  });
}

/** Add a seed's metrics, templates, campaigns and flows to an account (in that order). */
export function applyCatalogSeed(account: Account, seed: CatalogSeed, now: number): void {
  /** Seed metric ids of metrics the account already held by name → the held metric's id (for flow triggers). */
  const heldIds = new Map<string, string>();
  for (const m of seed.metrics ?? []) {
    const held = account.metricsByName.get(m.name);
    if (held) {
      if (m.id) heldIds.set(m.id, held.id);
      continue;
    }
    const created = ms(m.created, now);
    let id = m.id ?? account.ids.shortId();
    while (!m.id && account.metricsById.has(id)) id = account.ids.shortId();
    const rec = { id, name: m.name, created, updated: created, count: 0 };
    account.metricsByName.set(m.name, rec);
    account.metricsById.set(id, rec);
  }
  for (const t of seed.templates ?? []) {
    const created = ms(t.created, now);
    let id = t.id ?? account.ids.shortId();
    while (!t.id && account.catalog.templates.has(id)) id = account.ids.shortId();
    account.catalog.templates.set(id, {
      id,
      name: t.name,
      editorType: t.editor_type ?? 'CODE',
      html: t.html,
      text: t.text ?? null,
      amp: t.amp ?? null,
      created,
      updated: ms(t.updated, created),
    });
  }
  for (const c of seed.campaigns ?? []) applyCampaign(account, c, now);
  for (const f of seed.flows ?? []) applyFlow(account, { ...f, trigger_id: (f.trigger_id && heldIds.get(f.trigger_id)) ?? f.trigger_id }, now);
}

/**
 * The first id a catalog seed gives twice for the same kind of resource (two campaigns, two flow actions…), as a
 * JSON pointer to the repeat (`/campaigns/3/id`), or null when every given id is unique.
 */
export function duplicateCatalogId(seed: CatalogSeed): string | null {
  const seen = new Map<string, Set<string>>();
  const check = (kind: string, id: string | undefined, at: string): string | null => {
    if (id === undefined) return null;
    const ids = seen.get(kind) ?? new Set<string>();
    seen.set(kind, ids);
    if (ids.has(id)) return at;
    ids.add(id);
    return null;
  };
  const hits: (string | null)[] = [];
  (seed.templates ?? []).forEach((t, i) => hits.push(check('template', t.id, `/templates/${i}/id`)));
  (seed.campaigns ?? []).forEach((c, i) => {
    hits.push(check('campaign', c.id, `/campaigns/${i}/id`));
    (c.messages ?? []).forEach((m, j) => hits.push(check('campaign-message', m.id, `/campaigns/${i}/messages/${j}/id`)));
  });
  (seed.flows ?? []).forEach((f, i) => {
    hits.push(check('flow', f.id, `/flows/${i}/id`));
    (f.actions ?? []).forEach((a, j) => {
      hits.push(check('flow-action', a.id, `/flows/${i}/actions/${j}/id`));
      (a.messages ?? []).forEach((m, k) => hits.push(check('flow-message', m.id, `/flows/${i}/actions/${j}/messages/${k}/id`)));
    });
  });
  return hits.find((h) => h !== null) ?? null;
}
