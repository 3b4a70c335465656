/**
 * The emulator's catalog routes (campaigns, campaign messages, flows, flow actions, flow messages, templates) over
 * real HTTP: the required channel filter, the spec's filters, sorts, page sizes and includes, 400s for what the spec
 * does not allow, and the catalog kept in the state file. Every response (but those with sparse fieldsets) is
 * validated against the spec copy.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalog } from '../../src/emulator/catalog-generate.js';
import type { CatalogSeed } from '../../src/emulator/catalog-seed.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { loadSpecResponseValidator, type SpecResponseValidator } from '../helpers/openapi.js';
import { client, type ApiResponse } from '../unit/emulator/client.js';

type Resource = { type: string; id: string; attributes: Record<string, any>; relationships?: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

const q = (s: string) => encodeURIComponent(s);
const EMAIL = q("equals(messages.channel,'email')");
let dir: string;
let emu: EmulatorHandle;
let spec: SpecResponseValidator;
let generated: CatalogSeed;
let get: (path: string) => Promise<ApiResponse>;
const invalid: string[] = [];

/** The hand-written part of the seed (exact assertions) besides a generated catalog (volume, paging). */
const HAND: CatalogSeed = {
  templates: [
    { id: 'TplAAA', name: 'Welcome template', html: '<p>Hi</p>', text: 'Hi', created: '2025-01-01T00:00:00+00:00', updated: '2025-01-02T00:00:00+00:00' },
    { id: 'TplBBB', name: 'Zebra newsletter', html: '<p>Z</p>', created: '2025-03-01T00:00:00+00:00' },
  ],
  campaigns: [
    {
      id: 'CAMPHAND00000000000000001A',
      name: 'Hand Sale Alpha',
      channel: 'email',
      status: 'Sent',
      created_at: '2025-02-01T00:00:00+00:00',
      updated_at: '2025-02-03T00:00:00+00:00',
      scheduled_at: '2025-02-02T00:00:00+00:00',
      send_time: '2025-02-02T10:00:00+00:00',
      tags: ['hand', 'promo'],
      messages: [{ id: 'MSGHAND00000000000000001A', label: 'Alpha', content: { subject: 'Alpha!' }, template_id: 'TplAAA' }],
    },
    { id: 'CAMPHAND00000000000000002B', name: 'Hand Sale Archived', channel: 'email', status: 'Sent', archived: true, created_at: '2025-02-05T00:00:00+00:00' },
    { id: 'CAMPHAND00000000000000003C', name: 'Hand SMS', channel: 'sms', status: 'Draft', created_at: '2025-02-06T00:00:00+00:00' },
  ],
  flows: [
    {
      id: 'FlwHnd',
      name: 'Hand Welcome',
      status: 'live',
      trigger_type: 'Added to List',
      trigger_id: 'LstHnd',
      created: '2025-01-10T00:00:00+00:00',
      tags: ['hand'],
      actions: [
        { id: '555001', type: 'send-email', messages: [{ id: 'FmsHn1', name: 'Hand welcome email', template_id: 'TplBBB' }] },
        { id: '555002', type: 'time-delay', data: { unit: 'days', value: 2 } },
        { id: '555003', type: 'send-sms', status: 'draft', messages: [{ id: 'FmsHn2', name: 'Hand reminder', content: { body: 'Come back' } }] },
      ],
    },
    { id: 'FlwArc', name: 'Hand archived', archived: true, created: '2024-03-01T00:00:00+00:00' },
  ],
};

beforeAll(async () => {
  spec = loadSpecResponseValidator();
  dir = mkdtempSync(join(tmpdir(), 'emu-catalog-'));
  generated = generateCatalog({ campaigns: 260, flows: 70, templates: 23 }, { seed: 11 });
  const seed = {
    lists: [{ id: 'LstHnd', name: 'Hand list' }],
    metrics: generated.metrics,
    templates: [...HAND.templates!, ...generated.templates!],
    campaigns: [...HAND.campaigns!, ...generated.campaigns!],
    flows: [...HAND.flows!, ...generated.flows!],
  };
  writeFileSync(join(dir, 'seed.json'), JSON.stringify(seed));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile: join(dir, 'seed.json'), stateFile: join(dir, 'state.json') });
  const call = client(emu.url);
  get = async (path) => {
    const r = await call('GET', path);
    // a sparse fieldset leaves out attributes the schema lists as required (so does Klaviyo's): not checked
    if (path.includes('fields[')) return r;
    const c = spec.check('GET', path.split('?')[0]!, r.status, r.text);
    if (c.errors.length > 0) invalid.push(`${path} ${r.status}: ${c.errors.slice(0, 3).join('; ')}`);
    return r;
  };
});
afterAll(async () => {
  await emu?.close();
});

const ids = (r: ApiResponse) => (r.json.data as Resource[]).map((x) => x.id);

/** Follow links.next to the end; every page's size is at most `max`; the last has no links.next. */
async function all(path: string, max: number): Promise<Resource[]> {
  const out: Resource[] = [];
  let next: string | undefined = path;
  while (next) {
    const r = await get(next);
    expect(r.status).toBe(200);
    expect(r.json.data.length).toBeLessThanOrEqual(max);
    out.push(...r.json.data);
    next = r.json.links.next ? (r.json.links.next as string).slice(emu.url.length) : undefined;
  }
  return out;
}

describe('campaigns', () => {
  it('a listing without a channel filter is a 400 on `filter` (Klaviyo requires one); an unknown channel too', async () => {
    const none = await get('/api/campaigns');
    expect(none.status).toBe(400);
    expect(none.json.errors[0].source).toEqual({ parameter: 'filter' });
    expect(none.json.errors[0].detail).toContain('channel filter is required');
    const other = await get(`/api/campaigns?filter=${q('equals(name,"x")')}`);
    expect(other.status).toBe(400);
    expect((await get(`/api/campaigns?filter=${q("equals(messages.channel,'fax')")}`)).status).toBe(400);
  });

  it('pages the channel\'s unarchived campaigns by 100 (max 100) with links.next until the end; archived ones on request', async () => {
    const expected = (archived: boolean, channel: string) =>
      [...HAND.campaigns!, ...generated.campaigns!].filter((c) => c.channel === channel && (c.archived ?? false) === archived).map((c) => c.id).sort();
    const email = await all(`/api/campaigns?filter=${EMAIL}`, 100);
    expect(email.map((c) => c.id).sort()).toEqual(expected(false, 'email'));
    expect(email.length).toBeGreaterThan(100);
    const archived = await all(`/api/campaigns?filter=${q("and(equals(messages.channel,'email'),equals(archived,true))")}`, 100);
    expect(archived.map((c) => c.id).sort()).toEqual(expected(true, 'email'));
    expect(archived.map((c) => c.id)).toContain('CAMPHAND00000000000000002B');
    const sms = await all(`/api/campaigns?filter=${q("equals(messages.channel,'sms')")}&page[size]=7`, 7);
    expect(sms.map((c) => c.id).sort()).toEqual(expected(false, 'sms'));
    expect((await get(`/api/campaigns?filter=${EMAIL}&page[size]=101`)).status).toBe(400);
  });

  it('filters by id, name, status and time ranges, and sorts', async () => {
    const byName = await get(`/api/campaigns?filter=${q("and(equals(messages.channel,'email'),contains(name,'Hand Sale'))")}`);
    expect(ids(byName)).toEqual(['CAMPHAND00000000000000001A']);
    const byId = await get(`/api/campaigns?filter=${q("equals(messages.channel,'sms'),any(id,['CAMPHAND00000000000000003C','nope'])")}`);
    expect(ids(byId)).toEqual(['CAMPHAND00000000000000003C']);
    const drafts = await all(`/api/campaigns?filter=${q("and(equals(messages.channel,'email'),equals(status,'Draft'))")}`, 100);
    expect(drafts.length).toBeGreaterThan(0);
    expect(drafts.every((c) => c.attributes.status === 'Draft')).toBe(true);
    const sentOrDraft = await all(`/api/campaigns?filter=${q("and(equals(messages.channel,'email'),any(status,['Sent','Draft']))")}`, 100);
    expect(sentOrDraft.length).toBeGreaterThan(drafts.length);
    const from = '2025-01-01T00:00:00+00:00';
    const to = '2025-06-30T00:00:00+00:00';
    const ranged = await all(`/api/campaigns?filter=${q(`and(equals(messages.channel,'email'),greater-or-equal(created_at,${from}),less-than(created_at,${to}))`)}&sort=-created_at`, 100);
    const times = ranged.map((c) => Date.parse(c.attributes.created_at));
    expect(times.every((t) => t >= Date.parse(from) && t < Date.parse(to))).toBe(true);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const expectedCount = [...HAND.campaigns!, ...generated.campaigns!].filter(
      (c) => c.channel === 'email' && !c.archived && Date.parse(c.created_at!) >= Date.parse(from) && Date.parse(c.created_at!) < Date.parse(to),
    ).length;
    expect(ranged).toHaveLength(expectedCount);
    const scheduled = await all(`/api/campaigns?filter=${q(`and(equals(messages.channel,'email'),greater-than(scheduled_at,${from}))`)}&sort=scheduled_at`, 100);
    expect(scheduled.every((c) => c.attributes.scheduled_at !== null && Date.parse(c.attributes.scheduled_at) > Date.parse(from))).toBe(true);
    const byUpdated = await all(`/api/campaigns?filter=${q(`and(equals(messages.channel,'email'),less-or-equal(updated_at,${from}))`)}&sort=name`, 100);
    const names = byUpdated.map((c) => c.attributes.name as string);
    expect([...names].sort()).toEqual(names);
  });

  it('400s for filters, sorts and fields the spec does not allow', async () => {
    for (const bad of [
      `filter=${q("and(equals(messages.channel,'email'),equals(name,'x'))")}`,
      `filter=${EMAIL}&sort=status`,
      `filter=${EMAIL}&fields[campaign]=bogus`,
      `filter=${EMAIL}&include=flows`,
    ]) {
      const r = await get(`/api/campaigns?${bad}`);
      expect(r.status, bad).toBe(400);
    }
  });

  it('include=campaign-messages,tags; sparse fieldsets; one campaign; its messages; one message with campaign and template', async () => {
    const r = await get(`/api/campaigns?filter=${q("and(equals(messages.channel,'email'),contains(name,'Hand Sale'))")}&include=campaign-messages,tags&fields[campaign]=name,status&fields[tag]=name`);
    const c = r.json.data[0] as Resource;
    expect(c.attributes).toEqual({ name: 'Hand Sale Alpha', status: 'Sent' });
    expect(c.relationships!['campaign-messages'].data).toEqual([{ type: 'campaign-message', id: 'MSGHAND00000000000000001A' }]);
    const included = r.json.included as Resource[];
    expect(included.filter((x) => x.type === 'tag').map((x) => x.attributes.name).sort()).toEqual(['hand', 'promo']);
    const msg = included.find((x) => x.type === 'campaign-message')!;
    expect(msg.attributes.definition).toMatchObject({ channel: 'email', label: 'Alpha', content: { subject: 'Alpha!' } });
    expect(msg.attributes.send_times).toEqual([{ datetime: '2025-02-02T10:00:00.000000+00:00', is_local: false }]);

    const one = await get('/api/campaigns/CAMPHAND00000000000000001A');
    expect(one.json.data.attributes).toMatchObject({ name: 'Hand Sale Alpha', archived: false, created_at: '2025-02-01T00:00:00.000000+00:00', scheduled_at: '2025-02-02T00:00:00.000000+00:00' });
    expect((await get('/api/campaigns/NOPE')).status).toBe(404);
    const msgs = await get('/api/campaigns/CAMPHAND00000000000000003C/campaign-messages');
    expect(msgs.json.data).toHaveLength(1);
    expect(msgs.json.data[0].attributes.definition.channel).toBe('sms');
    const m = await get('/api/campaign-messages/MSGHAND00000000000000001A?include=campaign,template');
    expect(m.json.data.relationships.template.data).toEqual({ type: 'template', id: 'TplAAA' });
    expect((m.json.included as Resource[]).map((x) => `${x.type}:${x.id}`).sort()).toEqual(['campaign:CAMPHAND00000000000000001A', 'template:TplAAA']);
    expect((await get('/api/campaign-messages/NOPE')).status).toBe(404);
  });
});

describe('flows', () => {
  it('pages the unarchived flows by 50 (max 50) to the end, archived ones on request; filters and sorts per spec', async () => {
    const seeded = [...HAND.flows!, ...generated.flows!];
    const flows = await all('/api/flows', 50);
    expect(flows.map((f) => f.id).sort()).toEqual(seeded.filter((f) => !f.archived).map((f) => f.id).sort());
    const archived = await all(`/api/flows?filter=${q('equals(archived,true)')}`, 50);
    expect(archived.map((f) => f.id).sort()).toEqual(seeded.filter((f) => f.archived).map((f) => f.id).sort());
    expect(archived.map((f) => f.id)).toContain('FlwArc');
    expect((await get('/api/flows?page[size]=51')).status).toBe(400);
    const metric = await all(`/api/flows?filter=${q('equals(trigger_type,"Metric")')}&sort=-name`, 50);
    expect(metric.length).toBeGreaterThan(0);
    expect(metric.every((f) => f.attributes.trigger_type === 'Metric')).toBe(true);
    const names = metric.map((f) => f.attributes.name as string);
    expect([...names].sort().reverse()).toEqual(names);
    const starts = await get(`/api/flows?filter=${q('starts-with(name,"Hand ")')}`);
    expect(ids(starts)).toEqual(['FlwHnd']);
    const live = await all(`/api/flows?filter=${q('and(equals(status,"live"),greater-or-equal(created,2025-01-10T00:00:00Z),equals(archived,false))')}`, 50);
    expect(live.every((f) => f.attributes.status === 'live' && f.attributes.archived === false && Date.parse(f.attributes.created) >= Date.parse('2025-01-10T00:00:00Z'))).toBe(true);
    expect(live.map((f) => f.id)).toContain('FlwHnd');
    expect((await get(`/api/flows?filter=${q('contains(trigger_type,"Met")')}`)).status).toBe(400);
    expect((await get('/api/flows?sort=archived')).status).toBe(400);
  });

  it('one flow with its definition and includes; its actions (filter by action_type); an action with its messages', async () => {
    const f = await get('/api/flows/FlwHnd?additional-fields[flow]=definition&include=flow-actions,tags');
    const def = f.json.data.attributes.definition;
    expect(def.triggers).toEqual([{ type: 'list', id: 'LstHnd' }]);
    expect(def.entry_action_id).toBe('555001');
    expect(def.actions.map((a: { type: string }) => a.type)).toEqual(['send-email', 'time-delay', 'send-sms']);
    expect((f.json.included as Resource[]).map((x) => `${x.type}:${x.id}`)).toEqual(['flow-action:555001', 'flow-action:555002', 'flow-action:555003', expect.stringMatching(/^tag:/)]);
    const plain = await get('/api/flows/FlwHnd');
    expect(plain.json.data.attributes.definition).toBeUndefined();
    expect((await get('/api/flows/NOPE00')).status).toBe(404);

    const actions = await get('/api/flows/FlwHnd/flow-actions?sort=-id');
    expect(ids(actions)).toEqual(['555003', '555002', '555001']);
    const delay = actions.json.data[1] as Resource;
    expect(delay.attributes.definition).toEqual({ id: '555002', type: 'time-delay', links: { next: '555003' }, data: { unit: 'days', value: 2 } });
    const sends = await get(`/api/flows/FlwHnd/flow-actions?filter=${q('any(action_type,["SEND_EMAIL","SEND_SMS"])')}`);
    expect(ids(sends)).toEqual(['555001', '555003']);
    const drafts = await get(`/api/flows/FlwHnd/flow-actions?filter=${q('equals(status,"draft")')}`);
    expect(ids(drafts)).toEqual(['555003']);

    const a = await get('/api/flow-actions/555001?include=flow,flow-messages');
    expect(a.json.data.attributes.definition.data.message).toMatchObject({ id: 'FmsHn1', name: 'Hand welcome email', template_id: 'TplBBB' });
    expect((a.json.included as Resource[]).map((x) => `${x.type}:${x.id}`)).toEqual(['flow:FlwHnd', 'flow-message:FmsHn1']);
    expect((await get('/api/flow-actions/1')).status).toBe(404);
    const msgs = await get(`/api/flow-actions/555003/flow-messages?filter=${q('contains(name,"reminder")')}`);
    expect(ids(msgs)).toEqual(['FmsHn2']);
    expect(msgs.json.data[0].attributes).toMatchObject({ channel: 'sms', definition: { body: 'Come back', id: 'FmsHn2' } });
    const m = await get('/api/flow-messages/FmsHn1?include=flow-action,template');
    expect((m.json.included as Resource[]).map((x) => `${x.type}:${x.id}`)).toEqual(['flow-action:555001', 'template:TplBBB']);
    expect((await get('/api/flow-messages/NOPE00')).status).toBe(404);
  });
});

describe('flow triggers of metrics, lists and segments', () => {
  it('include=flow-triggers links the flows a metric or list triggers and includes them', async () => {
    const metrics = await get('/api/metrics?include=flow-triggers');
    const byMetric = new Map<string, string[]>();
    for (const f of generated.flows!) if (f.trigger_type === 'Metric' && !f.archived) byMetric.set(f.trigger_id!, [...(byMetric.get(f.trigger_id!) ?? []), f.id!]);
    expect(byMetric.size).toBeGreaterThan(0);
    for (const m of metrics.json.data as Resource[]) {
      const linked = (m.relationships!['flow-triggers'].data as { id: string }[]).map((x) => x.id);
      const expected = generated.flows!.filter((f) => f.trigger_type === 'Metric' && f.trigger_id === m.id).map((f) => f.id);
      expect(linked.sort()).toEqual(expected.sort());
    }
    const included = (metrics.json.included as Resource[]).map((x) => `${x.type}:${x.attributes.trigger_type}`);
    expect(new Set(included)).toEqual(new Set(['flow:Metric']));
    const plain = await get('/api/metrics');
    expect(plain.json.included).toBeUndefined();
    expect(plain.json.data[0].relationships['flow-triggers'].data).toBeUndefined();
    const list = await get('/api/lists/LstHnd?include=flow-triggers');
    expect(list.json.data.relationships['flow-triggers'].data).toEqual([{ type: 'flow', id: 'FlwHnd' }]);
    expect((list.json.included as Resource[]).map((x) => x.id)).toEqual(['FlwHnd']);
    const lists = await get('/api/lists?include=flow-triggers');
    expect((lists.json.included as Resource[]).map((x) => x.id)).toEqual(['FlwHnd']);
  });
});

describe('templates', () => {
  it('pages by 10 (max 10), filters by name and time, sorts', async () => {
    const every = await all('/api/templates', 10);
    expect(every).toHaveLength(25);
    expect((await get('/api/templates?page[size]=11')).status).toBe(400);
    const named = await get(`/api/templates?filter=${q('any(name,["Zebra newsletter","Welcome template"])')}&sort=-name`);
    expect(ids(named)).toEqual(['TplBBB', 'TplAAA']);
    const contains = await get(`/api/templates?filter=${q('contains(name,"Zebra")')}`);
    expect(ids(contains)).toEqual(['TplBBB']);
    const updated = await get(`/api/templates?filter=${q('equals(updated,2025-01-02T00:00:00Z)')}`);
    expect(ids(updated)).toEqual(['TplAAA']);
    const sorted = await all('/api/templates?sort=created', 10);
    const times = sorted.map((t) => Date.parse(t.attributes.created));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect((await get(`/api/templates?filter=${q('starts-with(name,"Z")')}`)).status).toBe(400);
    const one = await get('/api/templates/TplAAA?additional-fields[template]=definition');
    expect(one.json.data.attributes).toMatchObject({ name: 'Welcome template', editor_type: 'CODE', html: '<p>Hi</p>', text: 'Hi', definition: null });
    expect((await get('/api/templates/NOPE00')).status).toBe(404);
  });
});

describe('rate limits', () => {
  it("each catalog route counts against its own window at the spec's tier: flows S (3/s), campaigns M (10/s), templates L (75/s)", async () => {
    const frozen = Date.UTC(2026, 0, 5, 10, 0, 0);
    const limited = await startEmulator({ port: 0, now: () => frozen });
    try {
      const call = client(limited.url);
      const burst = async (path: string, n: number) => {
        const statuses: number[] = [];
        for (let i = 0; i <= n; i++) statuses.push((await call('GET', path)).status);
        return statuses;
      };
      expect(await burst('/api/flows', 3)).toEqual([200, 200, 200, 429]);
      expect(await burst('/api/flow-messages/NOPE00', 3)).toEqual([404, 404, 404, 429]);
      expect(await burst(`/api/campaigns?filter=${EMAIL}`, 10)).toEqual([...Array(10).fill(200), 429]);
      expect((await burst('/api/templates', 75)).slice(-2)).toEqual([200, 429]);
      const throttled = await call('GET', '/api/flows');
      expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      await limited.close();
    }
  });
});

describe('catalog state and responses', () => {
  it('every response above matches its operation+status schema in the spec', () => {
    expect(invalid).toEqual([]);
  });

  it('the state file keeps the catalog: a second emulator without the seed serves the same campaigns and flows', async () => {
    const before = await get(`/api/campaigns?filter=${EMAIL}&page[size]=5`);
    const held = emu.snapshot().catalog;
    expect(held).toEqual({ campaigns: 263, campaignMessages: 263, flows: 72, flowActions: held.flowActions, flowMessages: held.flowMessages, templates: 25 });
    expect(held.flowActions).toBeGreaterThan(72);
    await emu.close();
    const saved = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(saved.accounts[0].catalog.campaigns.length).toBe(263);
    emu = await startEmulator({ port: 0, limits: 'off', stateFile: join(dir, 'state.json') });
    const call = client(emu.url);
    const after = await call('GET', `/api/campaigns?filter=${EMAIL}&page[size]=5`);
    expect(after.json.data).toEqual(JSON.parse(before.text.replaceAll(before.json.links.self.split('/api/')[0], emu.url)).data);
    const flow = await call('GET', '/api/flows/FlwHnd/flow-actions');
    expect(ids(flow)).toEqual(['555001', '555002', '555003']);
    expect(emu.snapshot().catalog).toEqual(held);
  });
});
