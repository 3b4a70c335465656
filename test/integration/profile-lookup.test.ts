import { afterEach, describe, expect, it } from 'vitest';
import { newStats } from '../../src/core/stats.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { connectKlaviyo, type KlaviyoConnection } from '../../src/klaviyo/connect.js';
import { lookupProfiles, PROFILES_LOOKUP_KEY } from '../../src/klaviyo/profile-lookup.js';

/** The batch lookup of profiles by email, phone and external id (GET /api/profiles, any() filters, paced), against the emulator. */

const KEY = 'pk_profile_lookup_test_0000000000';
let emu: EmulatorHandle | undefined;
let conn: KlaviyoConnection | undefined;

afterEach(async () => {
  await conn?.close();
  conn = undefined;
  await emu?.close();
  emu = undefined;
});

async function post(path: string, body: unknown): Promise<number> {
  const res = await fetch(`${emu!.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Klaviyo-API-Key ${KEY}`, revision: '2026-07-15', 'content-type': 'application/vnd.api+json' },
    body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

async function setUp(): Promise<{ conn: KlaviyoConnection; stats: ReturnType<typeof newStats> }> {
  emu = await startEmulator({ port: 0, limits: 'off' });
  const stats = newStats();
  conn = connectKlaviyo({ baseUrl: emu.url, revision: '2026-07-15', rateLimits: undefined, retries: 2, timeoutMs: 10_000 }, { apiKey: KEY, stats });
  return { conn, stats };
}

describe('lookupProfiles', () => {
  it('finds profiles by email (case-insensitively) and by phone, 100 values a request, with their subscriptions', async () => {
    const { conn, stats } = await setUp();
    const profiles = [...Array.from({ length: 150 }, (_, i) => ({ email: `p${i}@example.com` })), { phone_number: '+14155550100' }];
    const job = { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } } };
    expect(await post('/api/profile-bulk-import-jobs', { data: job })).toBe(202);
    while (emu!.snapshot().jobs.complete < 1) await new Promise((r) => setTimeout(r, 20));
    expect(
      await post('/api/profile-subscription-bulk-delete-jobs', {
        data: {
          type: 'profile-subscription-bulk-delete-job',
          attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'p3@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } }] } },
        },
      }),
    ).toBe(202);

    const emails = ['P3@Example.com', 'nobody@example.com', ...Array.from({ length: 150 }, (_, i) => `p${i}@example.com`)];
    const found = await lookupProfiles(conn.client, { emails, phones: ['+14155550100', '+14155550199'] }, { additionalFields: ['subscriptions'], fields: ['subscriptions'] });
    expect(found.byEmail.size).toBe(150);
    expect(found.byPhone.size).toBe(1);
    expect(found.byPhone.get('+14155550100')?.id).toMatch(/^[0-9A-Z]{26}$/);
    // 151 distinct emails → 2 requests; 2 phones → 1
    expect(found.requests).toBe(3);
    expect(stats.requests.byEndpoint[PROFILES_LOOKUP_KEY]).toBe(3);
    const p3 = found.byEmail.get('p3@example.com')!;
    const marketing = (p3.attributes.subscriptions as { email: { marketing: { consent: string; suppression: { reason: string; timestamp: string }[] } } }).email.marketing;
    expect(marketing.consent).toBe('UNSUBSCRIBED');
    expect(marketing.suppression).toEqual([{ reason: 'UNSUBSCRIBE', timestamp: expect.any(String) }]);
    // the sparse fieldset keeps the identifiers the lookup maps by
    expect(p3.attributes.email).toBe('p3@example.com');
    expect(p3.attributes.first_name).toBeUndefined();
  });

  it('finds profiles by external id (any(external_id,[…])), keeping external_id in a sparse fieldset', async () => {
    const { conn } = await setUp();
    const profiles = [{ external_id: 'crm-1' }, { external_id: 'crm-2', email: 'two@example.com' }, { email: 'three@example.com' }];
    const job = { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } } };
    expect(await post('/api/profile-bulk-import-jobs', { data: job })).toBe(202);
    while (emu!.snapshot().jobs.complete < 1) await new Promise((r) => setTimeout(r, 20));
    const found = await lookupProfiles(conn.client, { externalIds: ['crm-1', 'crm-2', 'crm-none', 'crm-1'] }, { fields: ['first_name'] });
    expect([...found.byExternalId.keys()].sort()).toEqual(['crm-1', 'crm-2']);
    expect(found.byExternalId.get('crm-2')!.attributes).toMatchObject({ email: 'two@example.com', external_id: 'crm-2' });
    expect(found.byEmail.size).toBe(0);
    expect(found.requests).toBe(1);
  });

  it('makes no request for an empty batch, and a refusal fails with KLAVIYO_REQUEST_REJECTED', async () => {
    const { conn } = await setUp();
    expect((await lookupProfiles(conn.client, {})).requests).toBe(0);
    await expect(lookupProfiles(conn.client, { emails: ['a@example.com'] }, { fields: ['no_such_field'] })).rejects.toMatchObject({ code: 'KLAVIYO_REQUEST_REJECTED' });
  });
});
