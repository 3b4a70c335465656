/**
 * A realistic catalog generated from a seed: templates, campaigns (email, SMS, push; sent, scheduled, drafts,
 * cancelled; some archived; tagged) and flows (the usual welcome / abandoned-cart / win-back series, each a chain of
 * time delays and email or SMS sends with their messages), with the metrics their triggers name. The same counts,
 * seed and end time give the same catalog, ids included. The result is a `CatalogSeed` (the seed file's catalog
 * keys): apply it with `applyCatalogSeed` or write it into a seed file.
 */
import type { CatalogSeed, SeedCampaign, SeedFlow, SeedMetric, SeedTemplate } from './catalog-seed.js';
import type { GenerateOptions } from './generate.js';
import { seededRandom, seededShortId, seededUlid } from './ids.js';

export interface CatalogCounts {
  /** Campaigns to generate. @default 0 */
  campaigns?: number;
  /** Flows to generate. @default 0 */
  flows?: number;
  /** Templates to generate. @default 0 */
  templates?: number;
}

export interface CatalogGenerateOptions {
  /** PRNG seed. @default 1 */
  seed?: number;
  /** The catalog's present (epoch ms): items are created over the two years before it. @default 2026-01-01T00:00:00Z */
  end?: number;
}

const YEAR = 365 * 86_400_000;
const DAY = 86_400_000;
const THEMES = ['Spring Sale', 'Summer Collection', 'Back to School', 'Black Friday', 'Cyber Monday', 'Holiday Gift Guide', 'New Arrivals', 'Weekly Newsletter', 'Flash Sale', 'VIP Early Access', 'Product Launch', 'Clearance'];
const TAGS = ['promo', 'newsletter', 'seasonal', 'vip', 'launch', 'retention'];
const FLOW_KINDS: { name: string; trigger: 'Added to List' | 'Metric' | 'Date Based'; metric?: string }[] = [
  { name: 'Welcome Series', trigger: 'Added to List' },
  { name: 'Abandoned Cart', trigger: 'Metric', metric: 'Started Checkout' },
  { name: 'Browse Abandonment', trigger: 'Metric', metric: 'Viewed Product' },
  { name: 'Post-Purchase Follow-up', trigger: 'Metric', metric: 'Placed Order' },
  { name: 'Win-back', trigger: 'Metric', metric: 'Placed Order' },
  { name: 'Birthday', trigger: 'Date Based' },
];
const METRICS = ['Placed Order', 'Started Checkout', 'Viewed Product'];

/** Klaviyo's datetime style, `2025-07-29T22:19:30+00:00`. */
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19) + '+00:00';

/** Generate `counts` of each catalog resource, deterministically from `options.seed`. */
export function generateCatalog(counts: CatalogCounts, options: CatalogGenerateOptions = {}): CatalogSeed {
  const rand = seededRandom(options.seed ?? 1);
  const end = options.end ?? Date.UTC(2026, 0, 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const when = () => end - 2 * YEAR + Math.floor(rand() * 2 * YEAR);
  const templates = generateTemplates(counts.templates ?? 0, rand, when);
  const campaigns = Array.from({ length: counts.campaigns ?? 0 }, (_, i) => generateCampaign(i, rand, pick, when(), end, templates));
  const out: CatalogSeed = { templates, campaigns };
  const nFlows = counts.flows ?? 0;
  if (nFlows > 0) {
    const metrics: SeedMetric[] = METRICS.map((name) => ({ id: seededShortId(rand), name, created: iso(end - 2 * YEAR) }));
    out.metrics = metrics;
    out.flows = Array.from({ length: nFlows }, (_, i) => generateFlow(i, rand, pick, when(), end, metrics, templates));
  }
  return out;
}

/**
 * The catalog the seed generator's options ask for (`generate: {campaigns, flows, templates, seed, end}`), or null
 * when they ask for none. Its period ends where the generated profiles' and events' does.
 */
export function generatedCatalog(options: GenerateOptions, now: number): CatalogSeed | null {
  const { campaigns = 0, flows = 0, templates = 0 } = options;
  if (campaigns + flows + templates === 0) return null;
  const end = options.end !== undefined ? Date.parse(options.end) : Math.floor(now / DAY) * DAY;
  return generateCatalog({ campaigns, flows, templates }, { seed: options.seed ?? 1, end });
}

function generateTemplates(n: number, rand: () => number, when: () => number): SeedTemplate[] {
  return Array.from({ length: n }, (_, i) => {
    const created = when();
    const name = `${THEMES[i % THEMES.length]} Template ${i + 1}`;
    return {
      id: seededShortId(rand),
      name,
      editor_type: rand() < 0.7 ? 'CODE' : 'USER_DRAGGABLE',
      html: `<html><body><h1>${name}</h1><p>Hello {{ first_name|default:'there' }},</p><a href="https://example.com/shop">Shop now</a></body></html>`,
      text: `${name}\n\nHello {{ first_name|default:'there' }},\nShop now: https://example.com/shop`,
      amp: null,
      created: iso(created),
      updated: iso(created + Math.floor(rand() * 30 * DAY)),
    };
  });
}

function generateCampaign(
  i: number,
  rand: () => number,
  pick: <T>(xs: readonly T[]) => T,
  created: number,
  end: number,
  templates: SeedTemplate[],
): SeedCampaign {
  const r = rand();
  const channel = r < 0.7 ? 'email' : r < 0.95 ? 'sms' : 'mobile_push';
  const s = rand();
  const status = s < 0.75 ? 'Sent' : s < 0.85 ? 'Draft' : s < 0.95 ? 'Scheduled' : 'Cancelled';
  const sendAt = created + Math.floor((1 + rand() * 13) * DAY);
  const scheduled = status === 'Draft' ? null : Math.min(sendAt, status === 'Scheduled' ? end + 14 * DAY : end);
  const name = `${pick(THEMES)} ${new Date(created).toISOString().slice(0, 7)} #${i + 1}`;
  const updated = Math.min(end, (scheduled ?? created) + Math.floor(rand() * DAY));
  const content: Record<string, unknown> =
    channel === 'email'
      ? { subject: `${name}: up to ${10 + Math.floor(rand() * 5) * 10}% off`, preview_text: 'Only this week', from_email: 'news@example.com', from_label: 'Example Store' }
      : channel === 'sms'
        ? { body: `${name}: shop now https://example.com/s/${i + 1}` }
        : { title: name, body: 'Tap to shop' };
  const template = channel === 'email' && templates.length > 0 ? pick(templates).id! : null;
  return {
    id: seededUlid(created, rand),
    name,
    channel,
    status,
    archived: rand() < 0.1,
    created_at: iso(created),
    updated_at: iso(Math.max(created, updated)),
    scheduled_at: scheduled === null ? null : iso(scheduled - DAY),
    send_time: scheduled === null ? null : iso(scheduled),
    audiences: { included: [seededShortId(rand)], excluded: [] },
    send_strategy: scheduled === null ? { method: 'immediate' } : { method: 'static', datetime: iso(scheduled), options: { is_local: false } },
    tags: rand() < 0.6 ? [pick(TAGS)] : [],
    messages: [{ id: seededUlid(created, rand), label: name, content, template_id: template, created_at: iso(created), updated_at: iso(Math.max(created, updated)) }],
  };
}

function generateFlow(
  i: number,
  rand: () => number,
  pick: <T>(xs: readonly T[]) => T,
  created: number,
  end: number,
  metrics: SeedMetric[],
  templates: SeedTemplate[],
): SeedFlow {
  const kind = FLOW_KINDS[i % FLOW_KINDS.length]!;
  const s = rand();
  const status = s < 0.6 ? 'live' : s < 0.8 ? 'manual' : 'draft';
  const steps = 1 + Math.floor(rand() * 3);
  const actions: NonNullable<SeedFlow['actions']> = [];
  for (let k = 0; k < steps; k++) {
    if (k > 0) actions.push({ type: 'time-delay', data: { unit: pick(['hours', 'days'] as const), value: 1 + Math.floor(rand() * 3), secondary_value: null }, created: iso(created) });
    const sms = rand() < 0.2;
    const name = `${kind.name} ${sms ? 'SMS' : 'Email'} ${k + 1}`;
    const template = !sms && templates.length > 0 ? pick(templates).id! : null;
    actions.push({
      type: sms ? 'send-sms' : 'send-email',
      status: status === 'draft' ? 'draft' : status,
      created: iso(created),
      messages: [
        {
          id: seededShortId(rand),
          name,
          channel: sms ? 'sms' : 'email',
          content: sms ? { body: `${name}: https://example.com/f/${i + 1}` } : { subject_line: name, preview_text: 'We saved your favourites', from_email: 'hello@example.com', from_label: 'Example Store' },
          template_id: template,
          created: iso(created),
        },
      ],
    });
  }
  const metric = kind.metric ? metrics.find((m) => m.name === kind.metric) : undefined;
  return {
    id: seededShortId(rand),
    name: `${kind.name}${i >= FLOW_KINDS.length ? ` ${Math.floor(i / FLOW_KINDS.length) + 1}` : ''}`,
    status,
    archived: rand() < 0.05,
    trigger_type: kind.trigger,
    trigger_id: metric?.id ?? (kind.trigger === 'Added to List' ? seededShortId(rand) : null),
    created: iso(created),
    updated: iso(Math.min(end, created + Math.floor(rand() * 60 * DAY))),
    tags: rand() < 0.5 ? [pick(TAGS)] : [],
    actions,
  };
}
