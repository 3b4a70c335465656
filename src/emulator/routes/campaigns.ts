/**
 * Campaigns: `GET /api/campaigns` (a `messages.channel` filter is required, as Klaviyo requires it; 100 per page),
 * `GET /api/campaigns/{id}`, `GET /api/campaigns/{id}/campaign-messages`, `GET /api/campaign-messages/{id}`, with
 * `include` of messages, tags, the campaign and the template. Campaigns come from the seed (src/emulator/catalog-seed.ts).
 */
import { ApiError, invalidParam, isoMicros, type Reply } from '../http.js';
import { conditionValues, pickFields, sparseFields, type FilterCondition } from '../query.js';
import { Catalog, type CampaignMessageRecord, type CampaignRecord } from '../catalog.js';
import type { RequestContext, RouteModule } from '../router.js';
import { notFound } from './common.js';
import { collectionPage, collectionReply, includes, Included, relationship, resourceReply, type FieldValue } from './catalog-common.js';
import { templateResource } from './templates.js';

const CHANNELS = ['email', 'sms', 'mobile_push'];
/** Klaviyo's answer to a campaign listing without a channel filter (wording from the operation's description). */
const CHANNEL_REQUIRED =
  "A channel filter is required to list campaigns. Please provide either: ?filter=equals(messages.channel,'email') to list email campaigns, " +
  "?filter=equals(messages.channel,'sms') to list SMS campaigns, or ?filter=equals(messages.channel,'mobile_push') to list mobile push campaigns.";

/** `tracking_options` Klaviyo returns for a channel (push campaigns have none). */
function trackingOptions(c: CampaignRecord): Record<string, unknown> | null {
  if (c.channel === 'email') return { add_tracking_params: false, custom_tracking_params: null, is_tracking_clicks: true, is_tracking_opens: true };
  if (c.channel === 'sms') return { add_tracking_params: false, custom_tracking_params: null };
  return null;
}

export function campaignResource(c: CampaignRecord, baseUrl: string, fields: Set<string> | null): Record<string, unknown> {
  const self = `${baseUrl}/api/campaigns/${c.id}/`;
  const attrs = {
    name: c.name,
    status: c.status,
    archived: c.archived,
    audiences: { included: c.audiences.included, excluded: c.audiences.excluded },
    send_options: { use_smart_sending: true },
    tracking_options: trackingOptions(c),
    send_strategy: c.sendStrategy,
    created_at: isoMicros(c.created),
    scheduled_at: c.scheduledAt === null ? null : isoMicros(c.scheduledAt),
    updated_at: isoMicros(c.updated),
    send_time: c.sendTime === null ? null : isoMicros(c.sendTime),
  };
  return {
    type: 'campaign',
    id: c.id,
    attributes: pickFields(attrs, fields),
    relationships: {
      'campaign-messages': relationship(self, 'campaign-messages', c.messageIds.map((id) => ({ type: 'campaign-message', id }))),
      tags: relationship(self, 'tags', c.tags.map((name) => ({ type: 'tag', id: Catalog.tagId(name) }))),
    },
    links: { self },
  };
}

/** `definition` of a campaign message as Klaviyo returns it for the campaign's channel. */
function messageDefinition(m: CampaignMessageRecord, channel: string): Record<string, unknown> {
  if (channel === 'email') return { channel, label: m.label, content: m.content };
  if (channel === 'sms') {
    return { channel, content: m.content, render_options: { shorten_links: true, add_org_prefix: true, add_info_link: true, add_opt_out_language: false } };
  }
  return { channel, notification_type: 'standard', content: m.content, kv_pairs: null, options: { on_open: { type: 'open_app' }, badge: { display: false }, play_sound: true } };
}

function messageResource(m: CampaignMessageRecord, c: CampaignRecord | undefined, baseUrl: string, fields: Set<string> | null): Record<string, unknown> {
  const self = `${baseUrl}/api/campaign-messages/${m.id}/`;
  const sendTimes = c?.sendTime == null ? [] : [{ datetime: isoMicros(c.sendTime), is_local: false }];
  const attrs = { definition: messageDefinition(m, c?.channel ?? 'email'), send_times: sendTimes, created_at: isoMicros(m.created), updated_at: isoMicros(m.updated) };
  return {
    type: 'campaign-message',
    id: m.id,
    attributes: pickFields(attrs, fields),
    relationships: {
      campaign: relationship(self, 'campaign', { type: 'campaign', id: m.campaignId }),
      template: relationship(self, 'template', m.templateId === null ? undefined : { type: 'template', id: m.templateId }),
      image: relationship(self, 'image'),
    },
    links: { self },
  };
}

function tagResource(name: string, baseUrl: string, fields: Set<string> | null): Record<string, unknown> {
  const id = Catalog.tagId(name);
  return { type: 'tag', id, attributes: pickFields({ name }, fields), links: { self: `${baseUrl}/api/tags/${id}/` } };
}

function getCampaign(ctx: RequestContext, id: string): CampaignRecord {
  const c = ctx.account.catalog.campaigns.get(id);
  if (!c) throw notFound('campaign', id);
  return c;
}

/** Included messages and tags of campaigns. */
function campaignIncludes(ctx: RequestContext, campaigns: CampaignRecord[]): Included | null {
  const want = includes(ctx);
  if (want.size === 0) return null;
  const out = new Included();
  const base = ctx.emulator.baseUrl;
  const cat = ctx.account.catalog;
  const msgFields = sparseFields(ctx.query, 'campaign-message');
  const tagFields = sparseFields(ctx.query, 'tag');
  for (const c of campaigns) {
    if (want.has('campaign-messages')) {
      for (const id of c.messageIds) {
        const m = cat.campaignMessages.get(id);
        if (m) out.add(messageResource(m, c, base, msgFields));
      }
    }
    if (want.has('tags')) for (const t of c.tags) out.add(tagResource(t, base, tagFields));
  }
  return out;
}

/** Included campaign and template of campaign messages. */
function messageIncludes(ctx: RequestContext, messages: CampaignMessageRecord[]): Included | null {
  const want = includes(ctx);
  if (want.size === 0) return null;
  const out = new Included();
  const base = ctx.emulator.baseUrl;
  const cat = ctx.account.catalog;
  for (const m of messages) {
    const c = cat.campaigns.get(m.campaignId);
    if (want.has('campaign') && c) out.add(campaignResource(c, base, sparseFields(ctx.query, 'campaign')));
    const t = m.templateId === null ? undefined : cat.templates.get(m.templateId);
    if (want.has('template') && t) out.add(templateResource(t, base, sparseFields(ctx.query, 'template'), false));
    // images are not modelled: `include=image` adds nothing
  }
  return out;
}

const CAMPAIGN_DATES = new Set(['created_at', 'scheduled_at', 'updated_at']);

function campaignField(c: CampaignRecord, field: string): FieldValue {
  switch (field) {
    case 'id':
      return c.id;
    case 'name':
      return c.name;
    case 'status':
      return c.status;
    case 'archived':
      return c.archived;
    case 'created_at':
      return c.created;
    case 'scheduled_at':
      return c.scheduledAt;
    case 'updated_at':
      return c.updated;
    default:
      return null;
  }
}

/** Campaigns of the required channel; unarchived ones unless `equals(archived,true)` asks for the archived. */
function campaignSelection(conds: FilterCondition[]): (c: CampaignRecord) => boolean {
  const channel = conds.find((c) => c.field === 'messages.channel');
  if (!channel) throw new ApiError(400, invalidParam(CHANNEL_REQUIRED, 'filter'));
  const wanted = conditionValues(channel)[0]!;
  if (!CHANNELS.includes(wanted)) throw new ApiError(400, invalidParam(`'${wanted}' is not a valid channel. Allowed: ${CHANNELS.join(', ')}.`, 'filter'));
  const archived = conds.find((c) => c.field === 'archived')?.value === true;
  return (c) => c.channel === wanted && c.archived === archived;
}

const CAMPAIGN_SPEC = { endpoint: 'GET /api/campaigns', get: campaignField, dates: CAMPAIGN_DATES, skip: new Set(['messages.channel', 'archived']), where: campaignSelection } as const;

function listCampaigns(ctx: RequestContext): Reply {
  const { page, links } = collectionPage(ctx, ctx.account.catalog.campaigns.values(), CAMPAIGN_SPEC);
  const base = ctx.emulator.baseUrl;
  const fields = sparseFields(ctx.query, 'campaign');
  return collectionReply(
    page.map((c) => campaignResource(c, base, fields)),
    links,
    campaignIncludes(ctx, page),
  );
}

function campaignMessages(ctx: RequestContext): Reply {
  const c = getCampaign(ctx, ctx.params.id!);
  const cat = ctx.account.catalog;
  const msgs = c.messageIds.flatMap((id) => cat.campaignMessages.get(id) ?? []);
  const base = ctx.emulator.baseUrl;
  const fields = sparseFields(ctx.query, 'campaign-message');
  const links = { self: `${base}${ctx.path}/` };
  return collectionReply(
    msgs.map((m) => messageResource(m, c, base, fields)),
    links,
    messageIncludes(ctx, msgs),
  );
}

export const campaignRoutes: RouteModule = [
  { method: 'GET', path: '/api/campaigns', handler: listCampaigns },
  {
    method: 'GET',
    path: '/api/campaigns/{id}',
    handler(ctx) {
      const c = getCampaign(ctx, ctx.params.id!);
      return resourceReply(campaignResource(c, ctx.emulator.baseUrl, sparseFields(ctx.query, 'campaign')), campaignIncludes(ctx, [c]));
    },
  },
  { method: 'GET', path: '/api/campaigns/{id}/campaign-messages', handler: campaignMessages },
  {
    method: 'GET',
    path: '/api/campaign-messages/{id}',
    handler(ctx) {
      const cat = ctx.account.catalog;
      const m = cat.campaignMessages.get(ctx.params.id!);
      if (!m) throw notFound('campaign message', ctx.params.id!);
      const resource = messageResource(m, cat.campaigns.get(m.campaignId), ctx.emulator.baseUrl, sparseFields(ctx.query, 'campaign-message'));
      return resourceReply(resource, messageIncludes(ctx, [m]));
    },
  },
];
