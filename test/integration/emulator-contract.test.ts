/**
 * Contract test: a scripted tour of every endpoint the emulator serves (successes and errors), every response
 * recorded by a thin client and validated against the response schema of its operation+status in the official
 * spec (its copy in test/spec/klaviyo-openapi/). Responses without a schema (202/204) must have an empty body.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENDPOINTS } from '../../src/klaviyo/endpoints.js';
import { generateCatalog } from '../../src/emulator/catalog-generate.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { loadSpecResponseValidator, type SpecResponseValidator } from '../helpers/openapi.js';
import { bulkEventsBody, client, eventBody, KEY, profileBody, waitFor, type ApiResponse } from '../unit/emulator/client.js';

interface Recorded {
  method: string;
  path: string;
  status: number;
  text: string;
}

let emu: EmulatorHandle;
let throttling: EmulatorHandle;
let spec: SpecResponseValidator;
const recorded: Recorded[] = [];

/** A client that records every response it sees. */
function recording(baseUrl: string, key: string | null = KEY) {
  const inner = client(baseUrl, key);
  return async (method: string, path: string, body?: unknown, headers: Record<string, string | undefined> = {}): Promise<ApiResponse> => {
    const r = await inner(method, path, body, headers);
    recorded.push({ method, path: path.split('?')[0]!, status: r.status, text: r.text });
    return r;
  };
}

beforeAll(async () => {
  spec = loadSpecResponseValidator();
  const dir = mkdtempSync(join(tmpdir(), 'emu-contract-'));
  const seedFile = join(dir, 'seed.json');
  const catalog = generateCatalog({ campaigns: 12, flows: 3, templates: 3 }, { seed: 5 });
  catalog.campaigns!.push({ id: 'CampSms0', name: 'SMS one', channel: 'sms', tags: ['promo'], messages: [{ id: 'MsgSms0' }] }, { id: 'CampPush', name: 'Push one', channel: 'mobile_push' });
  writeFileSync(seedFile, JSON.stringify({ segments: [{ id: 'SegA01', name: 'Seg A', members: ['s1@example.com', 's2@example.com'] }], ...catalog }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, processingRate: 100_000, subscriptionDelayMs: 0 });
  const frozen = Date.now();
  throttling = await startEmulator({ port: 0, limits: 0.01, now: () => frozen });
});
afterAll(async () => {
  await emu.close();
  await throttling.close();
});

const q = (s: string) => encodeURIComponent(s);

async function tour(): Promise<void> {
  const call = recording(emu.url);
  // ---- profiles
  const created = await call('POST', '/api/profiles', profileBody({ email: 'c1@example.com', phone_number: '+14155552671', first_name: 'C', location: { city: 'Oslo', latitude: 59.9 } }));
  const pid = created.json.data.id as string;
  await call('POST', '/api/profiles', profileBody({ email: 'c1@example.com' })); // 409
  await call('POST', '/api/profiles', profileBody({ email: 'bad', phone_number: '12' })); // 400
  await call('GET', `/api/profiles/${pid}`);
  await call('GET', `/api/profiles/${pid}?additional-fields[profile]=subscriptions,predictive_analytics`);
  await call('GET', '/api/profiles/01NOPE0000000000000000000');
  await call('PATCH', `/api/profiles/${pid}`, { data: { type: 'profile', id: pid, attributes: { last_name: 'D' }, meta: { patch_properties: { append: { tags: 'x' } } } } });
  await call('PATCH', `/api/profiles/${pid}`, { data: { type: 'profile', id: 'other', attributes: {} } }); // 409
  await call('POST', '/api/profile-import', profileBody({ email: 'c2@example.com', external_id: 'e2' }));
  await call('POST', '/api/profile-import', profileBody({ email: 'c2@example.com', title: 'T' }));
  await call('GET', `/api/profiles?page[size]=1&additional-fields[profile]=subscriptions`);
  await call('GET', `/api/profiles?filter=${q('equals(email,"c1@example.com")')}&fields[profile]=email,location.city&sort=-created`);
  await call('GET', `/api/profiles?filter=${q('nonsense(')}`); // 400
  // ---- lists (created early: the bulk import joins one)
  const list = await call('POST', '/api/lists', { data: { type: 'list', attributes: { name: 'Contract', opt_in_process: 'single_opt_in' } } });
  const lid = list.json.data.id as string;
  await call('POST', '/api/lists', { data: { type: 'list', attributes: { opt_in_process: 'maybe' } } }); // 400
  // ---- bulk import
  const job = await call('POST', '/api/profile-bulk-import-jobs', {
    data: {
      type: 'profile-bulk-import-job',
      attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'b1@example.com' } }, { type: 'profile', attributes: { email: 'nope' } }] } },
      relationships: { lists: { data: [{ type: 'list', id: lid }] } },
    },
  });
  const jid = job.json.data.id as string;
  await waitFor(async () => ((await client(emu.url)('GET', `/api/profile-bulk-import-jobs/${jid}`)).json.data.attributes.status === 'complete' ? true : undefined));
  await call('GET', `/api/profile-bulk-import-jobs/${jid}`);
  await call('GET', `/api/profile-bulk-import-jobs?filter=${q('equals(status,"complete")')}&sort=-created_at`);
  await call('GET', `/api/profile-bulk-import-jobs/${jid}/import-errors`);
  await call('GET', `/api/profile-bulk-import-jobs/${jid}/profiles`);
  await call('GET', `/api/profile-bulk-import-jobs/${jid}/relationships/profiles`);
  await call('GET', '/api/profile-bulk-import-jobs/01NOPE0000000000000000000'); // 404
  await call('POST', '/api/profile-bulk-import-jobs', { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: [] } } } }); // 400
  // ---- events & metrics
  await call('POST', '/api/events', eventBody({ properties: { a: 1 }, value: 9.5, unique_id: 'u1', time: '2025-03-01T00:00:00Z' }, { email: 'c1@example.com' }));
  await call('POST', '/api/events', eventBody({ time: '1980-01-01T00:00:00Z' }, { email: 'c1@example.com' })); // 400
  await call('POST', '/api/event-bulk-create-jobs', bulkEventsBody([{ profile: { email: 'c3@example.com' }, events: [{ unique_id: 'k1' }, { unique_id: 'k2' }] }]));
  await call('POST', '/api/event-bulk-create-jobs', bulkEventsBody([{ profile: { email: 'c3@example.com' }, events: [{ unique_id: 'k3' }, { unique_id: 'k3' }] }])); // 400
  const evs = await call('GET', '/api/events?include=metric,profile');
  await call('GET', `/api/events?filter=${q(`equals(profile_id,"${pid}")`)}&sort=-datetime`);
  await call('GET', `/api/events/${evs.json.data[0].id}`);
  await call('GET', '/api/events/01NOPE0000000000000000000');
  const metrics = await call('GET', '/api/metrics');
  await call('GET', `/api/metrics/${metrics.json.data[0].id}`);
  await call('GET', '/api/metrics/nope00');
  // ---- subscriptions
  const subProfile = (attrs: Record<string, unknown>) => ({ type: 'profile', attributes: attrs });
  await call('POST', '/api/profile-subscription-bulk-create-jobs', {
    data: {
      type: 'profile-subscription-bulk-create-job',
      attributes: {
        custom_source: 'contract',
        historical_import: true,
        profiles: {
          data: [
            subProfile({
              email: 'c1@example.com',
              phone_number: '+14155552671',
              subscriptions: {
                email: { marketing: { consent: 'SUBSCRIBED', consented_at: '2024-01-01T00:00:00Z' } },
                sms: { marketing: { consent: 'SUBSCRIBED', consented_at: '2024-01-01T00:00:00Z' }, transactional: { consent: 'SUBSCRIBED', consented_at: '2024-01-01T00:00:00Z' } },
              },
            }),
          ],
        },
      },
      relationships: { list: { data: { type: 'list', id: lid } } },
    },
  });
  await call('POST', '/api/profile-subscription-bulk-create-jobs', {
    data: { type: 'profile-subscription-bulk-create-job', attributes: { profiles: { data: [subProfile({ email: 'c9@example.com', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } })] } } },
  }); // 400 sms without phone
  await call('POST', '/api/profile-subscription-bulk-delete-jobs', {
    data: {
      type: 'profile-subscription-bulk-delete-job',
      attributes: { profiles: { data: [subProfile({ email: 'c2@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } })] } },
    },
  });
  await call('POST', '/api/profile-subscription-bulk-delete-jobs', {
    data: { type: 'profile-subscription-bulk-delete-job', attributes: { profiles: { data: [subProfile({ email: 'c2@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } })] } } },
  }); // 400 bad enum
  // ---- suppressions
  const suppressBody = (emails: unknown[], extra: Record<string, unknown> = {}) => ({
    data: { type: 'profile-suppression-bulk-create-job', attributes: { profiles: { data: emails.map((email) => ({ type: 'profile', attributes: { email } })) } }, ...extra },
  });
  await call('POST', '/api/profile-suppression-bulk-create-jobs', suppressBody(['c2@example.com', 'new-suppressed@example.com'])); // 202 + job
  await call('POST', '/api/profile-suppression-bulk-create-jobs', suppressBody([], { relationships: { list: { data: { type: 'list', id: lid } } } })); // 202, a list's members
  await call('POST', '/api/profile-suppression-bulk-create-jobs', suppressBody(['not an email'])); // 400
  // ---- lists
  await call('GET', '/api/lists');
  await call('GET', `/api/lists?filter=${q(`any(id,["${lid}"])`)}&sort=name&fields[list]=name`);
  await call('GET', '/api/lists?page[size]=11'); // 400
  await call('GET', `/api/lists/${lid}`);
  await call('GET', `/api/lists/${lid}?additional-fields[list]=profile_count`);
  await call('GET', '/api/lists/nope00'); // 404
  await call('POST', `/api/lists/${lid}/relationships/profiles`, { data: [{ type: 'profile', id: pid }] });
  await call('POST', `/api/lists/${lid}/relationships/profiles`, { data: [{ type: 'profile', id: '01NOPE0000000000000000000' }] }); // 400
  await call('GET', `/api/lists/${lid}/profiles?additional-fields[profile]=subscriptions&page[size]=1`);
  await call('GET', `/api/lists/${lid}/profiles?filter=${q('greater-or-equal(joined_group_at,2020-01-01T00:00:00Z)')}&sort=-joined_group_at&fields[profile]=email,joined_group_at`);
  await call('GET', `/api/lists/${lid}/profiles?page[size]=101`); // 400
  await call('GET', `/api/lists/${lid}/relationships/profiles`);
  await call('DELETE', `/api/lists/${lid}/relationships/profiles`, { data: [{ type: 'profile', id: pid }] });
  await call('DELETE', `/api/lists/${lid}/relationships/profiles`, { data: [{ type: 'list', id: pid }] }); // 400
  // ---- segments
  await call('GET', '/api/segments');
  await call('GET', '/api/segments/SegA01');
  await call('GET', '/api/segments/SegA01/profiles?additional-fields[profile]=subscriptions');
  await call('GET', `/api/segments/SegA01/profiles?filter=${q('equals(email,"s2@example.com")')}`);
  await call('GET', '/api/segments/nope00'); // 404
  // ---- catalog: campaigns, flows, templates
  const email = await call('GET', `/api/campaigns?filter=${q("equals(messages.channel,'email')")}&include=campaign-messages,tags`);
  await call('GET', `/api/campaigns?filter=${q("equals(messages.channel,'sms')")}&include=campaign-messages,tags`);
  await call('GET', `/api/campaigns?filter=${q("equals(messages.channel,'mobile_push')")}&include=campaign-messages`);
  await call('GET', `/api/campaigns?filter=${q("and(equals(messages.channel,'email'),equals(archived,true))")}&sort=-created_at&page[size]=2`);
  await call('GET', '/api/campaigns'); // 400: the channel filter is required
  const cid = email.json.data[0].id as string;
  await call('GET', `/api/campaigns/${cid}?include=campaign-messages,tags`);
  await call('GET', '/api/campaigns/NOPE'); // 404
  const msgs = await call('GET', `/api/campaigns/${cid}/campaign-messages?include=campaign,template`);
  await call('GET', `/api/campaign-messages/${msgs.json.data[0].id}?include=campaign,template`);
  await call('GET', '/api/campaign-messages/MsgSms0?include=campaign');
  await call('GET', '/api/campaign-messages/NOPE'); // 404
  const flows = await call('GET', '/api/flows?include=flow-actions,tags&sort=-updated');
  await call('GET', `/api/flows?filter=${q('equals(trigger_type,"Metric")')}&page[size]=1`);
  await call('GET', '/api/flows?page[size]=51'); // 400
  const fid = flows.json.data[0].id as string;
  await call('GET', `/api/flows/${fid}?additional-fields[flow]=definition&include=flow-actions,tags`);
  await call('GET', '/api/flows/NOPE00'); // 404
  const actions = await call('GET', `/api/flows/${fid}/flow-actions?sort=created`);
  const send = actions.json.data.find((a: { attributes: { definition: { type: string } } }) => a.attributes.definition.type.startsWith('send-'));
  await call('GET', `/api/flow-actions/${send.id}?include=flow,flow-messages`);
  await call('GET', '/api/flow-actions/1'); // 404
  const fmsgs = await call('GET', `/api/flow-actions/${send.id}/flow-messages`);
  await call('GET', `/api/flow-messages/${fmsgs.json.data[0].id}?include=flow-action,template`);
  await call('GET', '/api/flow-messages/NOPE00'); // 404
  const templates = await call('GET', `/api/templates?sort=name&additional-fields[template]=definition`);
  await call('GET', `/api/templates/${templates.json.data[0].id}`);
  await call('GET', '/api/templates?page[size]=11'); // 400
  await call('GET', '/api/templates/NOPE00'); // 404
  const triggering = await call('GET', '/api/metrics?include=flow-triggers');
  await call('GET', `/api/metrics/${triggering.json.data[0].id}?include=flow-triggers`);
  await call('GET', '/api/lists?include=flow-triggers');
  await call('GET', '/api/segments/SegA01?include=flow-triggers');
  // ---- transport errors
  await recording(emu.url, null)('GET', '/api/lists'); // 401
  await recording(emu.url, 'AbC123')('GET', '/api/lists'); // 403
  await call('GET', '/api/lists', undefined, { revision: undefined }); // 400 revision
  await call('POST', '/api/lists', 'name=x', { 'content-type': 'text/plain' }); // 415
  await call('POST', '/api/event-bulk-create-jobs', JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024 + 10) })); // 413
  const slow = recording(throttling.url);
  for (let i = 0; i < 3; i++) await slow('POST', '/api/lists', { data: { type: 'list', attributes: { name: `T${i}` } } }); // 201 then 429
}

describe('emulator responses validate against the official OpenAPI spec', () => {
  it('every response of a tour of all endpoints (successes and errors) matches its operation+status schema', async () => {
    await tour();
    const failures: string[] = [];
    const seen = new Set<string>();
    const statuses = new Set<number>();
    for (const r of recorded) {
      const c = spec.check(r.method, r.path, r.status, r.text);
      seen.add(c.operationId);
      statuses.add(r.status);
      if (c.errors.length > 0) failures.push(`${r.method} ${r.path} ${r.status} (${c.operationId} ${c.statusKey}): ${c.errors.slice(0, 5).join('; ')}`);
    }
    expect(failures).toEqual([]);
    // the tour touched every operation of the tier table and every error class
    const missing = Object.values(ENDPOINTS).map((e) => e.operationId).filter((id) => !seen.has(id));
    expect(missing).toEqual([]);
    expect([...statuses].sort()).toEqual(expect.arrayContaining([200, 201, 202, 204, 400, 401, 403, 404, 409, 413, 415, 429]));
  });

  it('the validator rejects a response that breaks the schema (it can fail)', () => {
    const bad = spec.check('GET', '/api/lists/abc/profiles', 200, JSON.stringify({ data: [{ type: 'profile', id: 'x', attributes: {}, links: { self: 'http://h/x' } }] }));
    expect(bad.errors.join(' ')).toContain('joined_group_at');
    const notEmpty = spec.check('POST', '/api/lists/abc/relationships/profiles', 204, '{}');
    expect(notEmpty.empty).toBe(true);
    expect(notEmpty.errors).not.toEqual([]);
  });
});
