/**
 * The account's catalog: campaigns (with their messages), flows (with their actions and the actions' messages),
 * templates and tags, as the catalog routes (src/emulator/routes/campaigns.ts, flows.ts, templates.ts) serve them.
 * Records hold Klaviyo's wire values where Klaviyo's are free-form (message content, send strategy, action data),
 * so a seed file can give them as Klaviyo returns them. Maps keep insertion order (the default listing order).
 */
import { createHash } from 'node:crypto';

/** A campaign's channel (`messages.channel` in Klaviyo's filter). */
export type CampaignChannel = 'email' | 'sms' | 'mobile_push';

export interface CampaignRecord {
  id: string;
  name: string;
  channel: CampaignChannel;
  /** Klaviyo's status text (`Draft`, `Scheduled`, `Sent`, `Cancelled`…). */
  status: string;
  archived: boolean;
  /** Epoch ms. */
  created: number;
  updated: number;
  scheduledAt: number | null;
  sendTime: number | null;
  audiences: { included: string[]; excluded: string[] };
  /** `send_strategy` as Klaviyo returns it (`{method: 'static', datetime, options}`, `{method: 'immediate'}`…). */
  sendStrategy: Record<string, unknown>;
  /** Tag names. */
  tags: string[];
  messageIds: string[];
}

export interface CampaignMessageRecord {
  id: string;
  campaignId: string;
  label: string | null;
  /** `definition.content` as Klaviyo returns it (email: subject, preview_text, from_email…; sms: body…). */
  content: Record<string, unknown>;
  templateId: string | null;
  created: number;
  updated: number;
}

export interface FlowRecord {
  id: string;
  name: string;
  /** `draft`, `manual` or `live`. */
  status: string;
  archived: boolean;
  /** `Added to List`, `Metric`, `Date Based`… */
  triggerType: string;
  /** The list/segment/metric id of the trigger, when there is one. */
  triggerId: string | null;
  created: number;
  updated: number;
  tags: string[];
  actionIds: string[];
}

export interface FlowActionRecord {
  id: string;
  flowId: string;
  /** Klaviyo's action type (`send-email`, `send-sms`, `time-delay`…). */
  type: string;
  /** `draft`, `manual`, `live` or `disabled` (send actions; others have none). */
  status: string | null;
  /** `definition.data` besides `message` and `status` (e.g. a time delay's `unit` and `value`). */
  data: Record<string, unknown>;
  created: number;
  updated: number;
  messageIds: string[];
}

export interface FlowMessageRecord {
  id: string;
  actionId: string;
  name: string;
  /** `email` or `sms`. */
  channel: string;
  /** The message definition besides `id`, `name` and `template_id` (FlowEmail / FlowSms fields). */
  content: Record<string, unknown>;
  templateId: string | null;
  created: number;
  updated: number;
}

export interface TemplateRecord {
  id: string;
  name: string;
  editorType: string;
  html: string;
  text: string | null;
  amp: string | null;
  created: number;
  updated: number;
}

/** The catalog as a state file stores it. */
export interface SavedCatalog {
  campaigns: CampaignRecord[];
  campaignMessages: CampaignMessageRecord[];
  flows: FlowRecord[];
  flowActions: FlowActionRecord[];
  flowMessages: FlowMessageRecord[];
  templates: TemplateRecord[];
}

/** How many of each catalog resource an account holds (in `GET /_emulator/state`). */
export interface CatalogCounts {
  campaigns: number;
  campaignMessages: number;
  flows: number;
  flowActions: number;
  flowMessages: number;
  templates: number;
}

export class Catalog {
  readonly campaigns = new Map<string, CampaignRecord>();
  readonly campaignMessages = new Map<string, CampaignMessageRecord>();
  readonly flows = new Map<string, FlowRecord>();
  readonly flowActions = new Map<string, FlowActionRecord>();
  readonly flowMessages = new Map<string, FlowMessageRecord>();
  readonly templates = new Map<string, TemplateRecord>();

  toJSON(): SavedCatalog {
    return {
      campaigns: [...this.campaigns.values()],
      campaignMessages: [...this.campaignMessages.values()],
      flows: [...this.flows.values()],
      flowActions: [...this.flowActions.values()],
      flowMessages: [...this.flowMessages.values()],
      templates: [...this.templates.values()],
    };
  }

  counts(): CatalogCounts {
    return {
      campaigns: this.campaigns.size,
      campaignMessages: this.campaignMessages.size,
      flows: this.flows.size,
      flowActions: this.flowActions.size,
      flowMessages: this.flowMessages.size,
      templates: this.templates.size,
    };
  }

  /** Add what a state file holds (a file written before the catalog existed has none). */
  load(saved: Partial<SavedCatalog> | undefined): void {
    if (!saved) return;
    for (const r of saved.campaigns ?? []) this.campaigns.set(r.id, r);
    for (const r of saved.campaignMessages ?? []) this.campaignMessages.set(r.id, r);
    for (const r of saved.flows ?? []) this.flows.set(r.id, r);
    for (const r of saved.flowActions ?? []) this.flowActions.set(r.id, r);
    for (const r of saved.flowMessages ?? []) this.flowMessages.set(r.id, r);
    for (const r of saved.templates ?? []) this.templates.set(r.id, r);
  }

  /** Tag id of a tag name: a UUID derived from the name (Klaviyo's tag ids are UUIDs), the same in every account. */
  static tagId(name: string): string {
    const hex = createHash('sha256').update(`tag:${name}`).digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }
}
