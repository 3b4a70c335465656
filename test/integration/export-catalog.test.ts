import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCatalog } from '../../src/emulator/catalog-generate.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { run } from '../../src/runner/index.js';
import { readAll } from '../helpers/export-seed.js';
import { client, KEY } from '../unit/emulator/client.js';

/**
 * The catalog resources of the klaviyo source (campaigns with their messages, flows with their actions and the
 * actions' messages, templates)
 * exported from an emulator seeded with a generated catalog, through the runner to CSV: every resource the
 * emulator lists (archived ones too), with its id, name and related resources; `channels` and `since` select.
 */

let emu: EmulatorHandle;
let tmp: string;
let call: ReturnType<typeof client>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-cat-'));
  const seedFile = path.join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify(generateCatalog({ campaigns: 40, flows: 6, templates: 25 }, { seed: 7 })));
  // the source paces at Klaviyo's tiers (flows: 3/s); the emulator enforces none
  emu = await startEmulator({ port: 0, limits: 'off', seedFile });
  call = client(emu.url);
}, 30_000);

afterAll(async () => {
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

type Row = Record<string, string>;

async function exportRows(name: string, source: string, columns: Record<string, string>): Promise<Row[]> {
  const dir = await mkdtemp(path.join(tmp, `${name}-`));
  const file = path.join(dir, 'export.yaml');
  const cols = Object.entries(columns).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`).join('\n');
  await writeFile(file, `version: 1\nname: ${name}\nsource: ${source}\ntransform:\n  type: export\n  columns:\n${cols}\ndestination: {type: csv, path: out.csv}\n`);
  const report = await run({ pipelineFile: file, env: { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY }, stateDir: path.join(dir, 'state') });
  expect(report.status, JSON.stringify(report.error)).toBe('succeeded');
  return parse(await readFile(path.join(dir, 'out.csv'), 'utf8'), { columns: true }) as Row[];
}

describe('catalog export', () => {
  it('campaigns of every channel, each with its messages (a JSON array)', async () => {
    const held = [];
    const heldSms: string[] = [];
    for (const channel of ['email', 'sms', 'mobile_push']) {
      for (const archived of [false, true]) {
        const data = (await readAll(call, `/api/campaigns?filter=equals(messages.channel,'${channel}'),equals(archived,${archived})&include=campaign-messages`)).data;
        held.push(...data);
        if (channel === 'sms') heldSms.push(...data.map((c) => c.id as string));
      }
    }
    expect(held.length).toBeGreaterThan(10);
    const rows = await exportRows('campaigns', '{type: klaviyo, resource: campaigns}', { id: 'id', name: 'name', status: 'status', messages: 'messages' });
    expect(rows.map((r) => `${r.id} ${r.name} ${r.status}`).sort()).toEqual(held.map((c) => `${c.id} ${c.attributes.name} ${c.attributes.status}`).sort());
    for (const c of held) {
      const row = rows.find((r) => r.id === c.id)!;
      const messages = JSON.parse(row.messages!) as { id: string }[];
      expect(messages.map((m) => m.id)).toEqual(c.relationships['campaign-messages'].data.map((d: { id: string }) => d.id));
    }
    const sms = await exportRows('campaigns-sms', '{type: klaviyo, resource: campaigns, channels: [sms]}', { id: 'id' });
    expect(heldSms.length).toBeGreaterThan(0);
    expect(heldSms.length).toBeLessThan(held.length);
    expect(sms.map((r) => r.id).sort()).toEqual(heldSms.sort());
  }, 60_000);

  it('flows with their actions and their messages; templates, and since selects by updated', async () => {
    const flows = [...(await readAll(call, '/api/flows')).data, ...(await readAll(call, '/api/flows?filter=equals(archived,true)')).data];
    const rows = await exportRows('flows', '{type: klaviyo, resource: flows}', { id: 'id', name: 'name', trigger: 'trigger_type', actions: 'actions' });
    expect(rows.map((r) => `${r.id} ${r.name} ${r.trigger}`).sort()).toEqual(flows.map((f) => `${f.id} ${f.attributes.name} ${f.attributes.trigger_type}`).sort());
    let messages = 0;
    for (const f of flows) {
      const actions = JSON.parse(rows.find((r) => r.id === f.id)!.actions!) as { id: string; messages?: { id: string; name?: string }[] }[];
      expect(actions.map((a) => a.id)).toEqual(f.relationships['flow-actions'].data.map((d: { id: string }) => d.id));
      // each action with its messages (GET /api/flow-actions/{id}/flow-messages)
      for (const a of actions) {
        const held = (await readAll(call, `/api/flow-actions/${a.id}/flow-messages`)).data;
        expect((a.messages ?? []).map((m) => `${m.id} ${m.name}`)).toEqual(held.map((m) => `${m.id} ${m.attributes.name}`));
        messages += held.length;
      }
    }
    expect(messages).toBeGreaterThan(0);
    const templates = (await readAll(call, '/api/templates')).data;
    const all = await exportRows('templates', '{type: klaviyo, resource: templates, pageSize: 5}', { id: 'id', name: 'name', updated: 'updated' });
    expect(all.map((r) => r.id).sort()).toEqual(templates.map((x) => x.id as string).sort());
    const times = templates.map((x) => Date.parse(x.attributes.updated as string)).sort((a, b) => a - b);
    const since = new Date(times[Math.floor(times.length / 2)]!).toISOString();
    const recent = await exportRows('templates-since', `{type: klaviyo, resource: templates, since: '${since}'}`, { id: 'id' });
    const expected = templates.filter((x) => Date.parse(x.attributes.updated as string) >= Date.parse(since));
    expect(recent.map((r) => r.id).sort()).toEqual(expected.map((x) => x.id as string).sort());
  }, 60_000);
});
