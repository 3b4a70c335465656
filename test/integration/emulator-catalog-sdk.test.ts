/**
 * The catalog routes read through the official `klaviyo-api` Node SDK (v23) pointed at an in-process emulator
 * seeded with a generated catalog: campaigns (with messages and tags), flows (actions, messages) and templates
 * deserialize into the SDK's models, and the SDK pages through them by `links.next`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeySession, CampaignsApi, FlowsApi, TemplatesApi } from 'klaviyo-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalog } from '../../src/emulator/catalog-generate.js';
import type { CatalogSeed } from '../../src/emulator/catalog-seed.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { KEY } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let campaigns: CampaignsApi;
let flows: FlowsApi;
let templates: TemplatesApi;
let seed: CatalogSeed;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emu-catalog-sdk-'));
  seed = generateCatalog({ campaigns: 40, flows: 8, templates: 12 }, { seed: 3 });
  writeFileSync(join(dir, 'seed.json'), JSON.stringify(seed));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile: join(dir, 'seed.json') });
  const session = new ApiKeySession(KEY);
  campaigns = new CampaignsApi(session);
  flows = new FlowsApi(session);
  templates = new TemplatesApi(session);
  for (const api of [campaigns, flows, templates]) api.basePath = emu.url;
});
afterAll(() => emu.close());

describe('klaviyo-api SDK reads the catalog from the emulator', () => {
  it('campaigns: list by channel with messages and tags included, paged; one campaign; its messages', async () => {
    const expected = seed.campaigns!.filter((c) => c.channel === 'email' && !c.archived);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await campaigns.getCampaigns("equals(messages.channel,'email')", { include: ['campaign-messages', 'tags'], pageSize: 7, ...(cursor ? { pageCursor: cursor } : {}) });
      for (const c of page.body.data) {
        seen.push(c.id);
        expect(c.attributes.createdAt).toBeInstanceOf(Date);
        expect(c.relationships?.campaignMessages?.data?.[0]?.type).toBe('campaign-message');
      }
      expect(page.body.included?.some((x) => x.type === 'campaign-message')).toBe(true);
      cursor = page.body.links?.next;
    } while (cursor);
    expect(seen.sort()).toEqual(expected.map((c) => c.id).sort());

    const first = expected[0]!;
    const one = await campaigns.getCampaign(first.id!);
    expect(one.body.data.attributes.name).toBe(first.name);
    expect(one.body.data.attributes.status).toBe(first.status);
    const msgs = await campaigns.getMessagesForCampaign(first.id!);
    expect(msgs.body.data.map((m) => m.id)).toEqual([first.messages![0]!.id]);
    const msg = await campaigns.getCampaignMessage(first.messages![0]!.id!);
    expect(msg.body.data.attributes.definition?.channel).toBe('email');
  });

  it('flows: list with actions included, one flow, its actions and their messages', async () => {
    const all = await flows.getFlows({ include: ['flow-actions'], sort: 'name' });
    expect(all.body.data.map((f) => f.id).sort()).toEqual(seed.flows!.filter((f) => !f.archived).map((f) => f.id).sort());
    expect(all.body.included?.every((x) => x.type === 'flow-action')).toBe(true);
    const f = seed.flows!.find((x) => !x.archived)!;
    const one = await flows.getFlow(f.id!);
    expect(one.body.data.attributes.name).toBe(f.name);
    expect(one.body.data.attributes.triggerType).toBe(f.trigger_type);
    const actions = await flows.getActionsForFlow(f.id!);
    expect(actions.body.data).toHaveLength(f.actions!.length);
    const send = actions.body.data.find((a) => a.relationships?.flowMessages?.data?.length)!;
    const action = await flows.getFlowAction(send.id);
    expect(action.body.data.id).toBe(send.id);
    const msgs = await flows.getFlowActionMessages(send.id);
    expect(msgs.body.data).toHaveLength(1);
    const msg = await flows.getFlowMessage(msgs.body.data[0]!.id);
    expect(msg.body.data.attributes.channel).toMatch(/^(email|sms)$/);
  });

  it('templates: paged by 10, one template', async () => {
    const page1 = await templates.getTemplates({ sort: 'created' });
    expect(page1.body.data).toHaveLength(10);
    const page2 = await templates.getTemplates({ sort: 'created', pageCursor: page1.body.links!.next! });
    expect(page2.body.data).toHaveLength(2);
    expect(page2.body.links?.next).toBeUndefined();
    const t = seed.templates![0]!;
    const one = await templates.getTemplate(t.id!);
    expect(one.body.data.attributes.name).toBe(t.name);
    expect(one.body.data.attributes.html).toBe(t.html);
  });
});
