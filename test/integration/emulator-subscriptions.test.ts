import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { client, getJson, KEY } from '../unit/emulator/client.js';

const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);
let t = T0;
let emu: EmulatorHandle;
let call: ReturnType<typeof client>;
const f = (s: string) => encodeURIComponent(s);
const micros = (ms: number) => new Date(ms).toISOString().replace('Z', '000+00:00');

beforeAll(async () => {
  emu = await startEmulator({ port: 0, limits: 'off', now: () => t, subscriptionDelayMs: 0 });
  call = client(emu.url);
});
afterAll(() => emu.close());

type Subs = Record<string, Record<string, Record<string, unknown>>>;

function subscribeBody(profiles: Record<string, unknown>[], opts: { list?: string; historical?: boolean; source?: string } = {}) {
  return {
    data: {
      type: 'profile-subscription-bulk-create-job',
      attributes: {
        ...(opts.source ? { custom_source: opts.source } : {}),
        ...(opts.historical ? { historical_import: true } : {}),
        profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) },
      },
      ...(opts.list ? { relationships: { list: { data: { type: 'list', id: opts.list } } } } : {}),
    },
  };
}

function unsubscribeBody(profiles: Record<string, unknown>[], list?: string) {
  return {
    data: {
      type: 'profile-subscription-bulk-delete-job',
      attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } },
      ...(list ? { relationships: { list: { data: { type: 'list', id: list } } } } : {}),
    },
  };
}

async function subsOf(email: string): Promise<Subs> {
  const r = await call('GET', `/api/profiles?filter=${f(`equals(email,"${email}")`)}&additional-fields[profile]=subscriptions`);
  expect(r.json.data).toHaveLength(1);
  return r.json.data[0].attributes.subscriptions;
}

async function newList(name: string, opt = 'single_opt_in'): Promise<string> {
  return (await call('POST', '/api/lists', { data: { type: 'list', attributes: { name, opt_in_process: opt } } })).json.data.id;
}

async function memberEmails(list: string): Promise<string[]> {
  const r = await call('GET', `/api/lists/${list}/profiles?page[size]=100`);
  return r.json.data.map((p: { attributes: { email: string } }) => p.attributes.email);
}

describe('POST /api/profile-subscription-bulk-create-jobs', () => {
  it('202 with an empty body; creates the profile and stores consent in Klaviyo shape', async () => {
    t = T0;
    const r = await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'new@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }], { source: 'signup-form' }));
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    const s = await subsOf('new@example.com');
    expect(s.email!.marketing).toEqual({
      can_receive_email_marketing: true,
      consent: 'SUBSCRIBED',
      consent_timestamp: micros(T0),
      last_updated: micros(T0),
      method: 'API',
      method_detail: 'signup-form',
      custom_method_detail: 'signup-form',
      double_optin: false,
      suppression: [],
      list_suppressions: [],
    });
    expect(s.sms!.marketing).toMatchObject({ can_receive_sms_marketing: false, consent: 'NEVER_SUBSCRIBED', consent_timestamp: null });
  });

  it('historical import keeps consented_at, subscribes sms marketing + transactional and joins the list', async () => {
    t = T0 + 60_000;
    const list = await newList('Historical', 'double_opt_in');
    const r = await call(
      'POST',
      '/api/profile-subscription-bulk-create-jobs',
      subscribeBody(
        [
          {
            email: 'hist@example.com',
            phone_number: '+14155552671',
            subscriptions: {
              email: { marketing: { consent: 'SUBSCRIBED', consented_at: '2021-06-01T10:00:00Z' } },
              sms: { marketing: { consent: 'SUBSCRIBED', consented_at: '2021-06-02T10:00:00Z' }, transactional: { consent: 'SUBSCRIBED', consented_at: '2021-06-03T10:00:00Z' } },
            },
          },
        ],
        { list, historical: true },
      ),
    );
    expect(r.status).toBe(202);
    const s = await subsOf('hist@example.com');
    expect(s.email!.marketing).toMatchObject({ consent: 'SUBSCRIBED', consent_timestamp: micros(Date.parse('2021-06-01T10:00:00Z')), double_optin: false });
    expect(s.sms!.marketing).toMatchObject({ can_receive_sms_marketing: true, consent: 'SUBSCRIBED', consent_timestamp: micros(Date.parse('2021-06-02T10:00:00Z')) });
    expect(s.sms!.transactional).toMatchObject({ can_receive_sms_transactional: true, consent: 'SUBSCRIBED' });
    expect(await memberEmails(list)).toEqual(['hist@example.com']);
    const members = await call('GET', `/api/lists/${list}/profiles?additional-fields[profile]=subscriptions`);
    expect(members.json.data[0].attributes.joined_group_at).toBe(micros(T0 + 60_000));
    expect(members.json.data[0].attributes.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
  });

  it('a double opt-in list without historical import marks double_optin', async () => {
    const list = await newList('DOI', 'double_opt_in');
    await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'doi@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }], { list }));
    expect((await subsOf('doi@example.com')).email!.marketing!.double_optin).toBe(true);
  });

  it('unknown list → 404 with a pointer; a bad item rejects the whole request (nothing applied)', async () => {
    const r = await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'x@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }], { list: 'NoList' }));
    expect(r.status).toBe(404);
    expect(r.json.errors[0].source).toEqual({ pointer: '/data/relationships/list/data/id' });
    const bad = await call(
      'POST',
      '/api/profile-subscription-bulk-create-jobs',
      subscribeBody([
        { email: 'ok@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
        { email: 'broken', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } },
      ]),
    );
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ pointer: '/data/attributes/profiles/data/1/attributes/email' });
    const none = await call('GET', `/api/profiles?filter=${f('any(email,["ok@example.com","x@example.com"])')}`);
    expect(none.json.data).toEqual([]);
  });
});

describe('POST /api/profile-subscription-bulk-delete-jobs', () => {
  it('with a list: members leave the list (list suppression); non-members are unsubscribed globally', async () => {
    t = T0 + 120_000;
    const list = await newList('Promo');
    const sub = (email: string) => ({ email, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } });
    await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([sub('member@example.com')], { list }));
    await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([sub('outsider@example.com')]));
    t = T0 + 180_000;
    const unsub = (email: string) => ({ email, subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } });
    const r = await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody([unsub('member@example.com'), unsub('outsider@example.com')], list));
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    expect(await memberEmails(list)).toEqual([]);
    const m = (await subsOf('member@example.com')).email!.marketing!;
    expect(m).toMatchObject({ consent: 'UNSUBSCRIBED', can_receive_email_marketing: false, suppression: [], list_suppressions: [{ list_id: list, reason: 'UNSUBSCRIBE', timestamp: micros(T0 + 180_000) }] });
    const o = (await subsOf('outsider@example.com')).email!.marketing!;
    expect(o).toMatchObject({ consent: 'UNSUBSCRIBED', can_receive_email_marketing: false, suppression: [{ reason: 'UNSUBSCRIBE', timestamp: micros(T0 + 180_000) }], list_suppressions: [] });
    const state = await getJson(`${emu.url}/_emulator/state?key=${KEY}`);
    expect(state.lists.find((l: { id: string }) => l.id === list).members).toBe(0);
  });

  it('subscribing again lifts the UNSUBSCRIBE suppression and the list suppression', async () => {
    const list = await newList('Comeback');
    const sub = { email: 'back@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } };
    await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([sub], { list }));
    await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody([{ email: 'back@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } }]));
    expect((await subsOf('back@example.com')).email!.marketing!.suppression).toHaveLength(1);
    await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([sub], { list }));
    const m = (await subsOf('back@example.com')).email!.marketing!;
    expect(m).toMatchObject({ consent: 'SUBSCRIBED', can_receive_email_marketing: true, suppression: [], list_suppressions: [] });
  });

  it('sms unsubscribe by phone number', async () => {
    await call(
      'POST',
      '/api/profile-subscription-bulk-create-jobs',
      subscribeBody([{ phone_number: '+447400123456', email: 'sms@example.com', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } }]),
    );
    const r = await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody([{ phone_number: '+447400123456', subscriptions: { sms: { marketing: { consent: 'UNSUBSCRIBED' } } } }]));
    expect(r.status).toBe(202);
    const s = await subsOf('sms@example.com');
    expect(s.sms!.marketing).toMatchObject({ consent: 'UNSUBSCRIBED', can_receive_sms_marketing: false });
  });

  it('subscriptions survive a state file round trip', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const stateFile = join(mkdtempSync(join(tmpdir(), 'emu-subs-')), 'state.json');
    const a = await startEmulator({ port: 0, limits: 'off', stateFile, subscriptionDelayMs: 0 });
    await client(a.url)('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'keep@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }]));
    await a.close();
    const b = await startEmulator({ port: 0, limits: 'off', stateFile, subscriptionDelayMs: 0 });
    try {
      const r = await client(b.url)('GET', `/api/profiles?filter=${f('equals(email,"keep@example.com")')}&additional-fields[profile]=subscriptions`);
      expect(r.json.data[0].attributes.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
    } finally {
      await b.close();
    }
  });
});

describe('subscriptions are asynchronous (subscriptionDelayMs)', () => {
  it('a subscribe job is applied subscriptionDelayMs after its 202 (emulator clock), list membership included; an unsubscribe applies earlier jobs first', async () => {
    let now = T0;
    const slow = await startEmulator({ port: 0, limits: 'off', now: () => now, subscriptionDelayMs: 5000 });
    const c = client(slow.url);
    try {
      const list = (await c('POST', '/api/lists', { data: { type: 'list', attributes: { name: 'Async' } } })).json.data.id as string;
      const r = await c('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'later@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }], { list }));
      expect(r.status).toBe(202);
      const consent = async () => {
        const got = await c('GET', `/api/profiles?filter=${f('equals(email,"later@example.com")')}&additional-fields[profile]=subscriptions`);
        return got.json.data[0]?.attributes.subscriptions.email.marketing.consent as string | undefined;
      };
      expect(await consent()).toBeUndefined(); // not even the profile yet
      expect(slow.snapshot().subscriptionsPending).toBe(1);
      now = T0 + 4999;
      expect(await consent()).toBeUndefined();
      now = T0 + 5000;
      expect(await consent()).toBe('SUBSCRIBED');
      expect(slow.snapshot().subscriptionsPending).toBe(0);
      expect(slow.snapshot().lists.find((l) => l.id === list)?.members).toBe(1);
      // subscribe, then unsubscribe before it was applied: the unsubscribe wins (it is applied after the subscribe)
      await c('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'gone@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }]));
      await c('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody([{ email: 'gone@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } }]));
      now = T0 + 20_000;
      const gone = await c('GET', `/api/profiles?filter=${f('equals(email,"gone@example.com")')}&additional-fields[profile]=subscriptions`);
      expect(gone.json.data[0].attributes.subscriptions.email.marketing.consent).toBe('UNSUBSCRIBED');
    } finally {
      await slow.close();
    }
  });
});

describe('SMS consent only where the account can send (smsRegions)', () => {
  it('revision 2024-05-15 and later: 400 at the phone number for a region outside smsRegions, nothing applied; earlier revisions drop the sms consent', async () => {
    const us = await startEmulator({ port: 0, limits: 'off', subscriptionDelayMs: 0, smsRegions: ['US'] });
    const c = client(us.url);
    try {
      const body = subscribeBody([
        { email: 'us@example.com', phone_number: '+14155550100', subscriptions: { sms: { marketing: { consent: 'SUBSCRIBED' } } } },
        { email: 'de@example.com', phone_number: '+4915123456789', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } }, sms: { marketing: { consent: 'SUBSCRIBED' } } } },
      ]);
      const r = await c('POST', '/api/profile-subscription-bulk-create-jobs', body);
      expect(r.status).toBe(400);
      expect(r.json.errors).toEqual([
        expect.objectContaining({ code: 'invalid', status: 400, detail: expect.stringContaining('(DE)'), source: { pointer: '/data/attributes/profiles/data/1/attributes/phone_number' } }),
      ]);
      expect(us.snapshot().profiles).toBe(0);
      // revision 2024-02-15: accepted; the DE number's sms consent is dropped, its email consent kept
      const old = await c('POST', '/api/profile-subscription-bulk-create-jobs', body, { revision: '2024-02-15' });
      expect(old.status).toBe(202);
      const de = await c('GET', `/api/profiles?filter=${f('equals(email,"de@example.com")')}&additional-fields[profile]=subscriptions`);
      expect(de.json.data[0].attributes.subscriptions.sms.marketing.consent).toBe('NEVER_SUBSCRIBED');
      expect(de.json.data[0].attributes.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
      const usp = await c('GET', `/api/profiles?filter=${f('equals(email,"us@example.com")')}&additional-fields[profile]=subscriptions`);
      expect(usp.json.data[0].attributes.subscriptions.sms.marketing.consent).toBe('SUBSCRIBED');
    } finally {
      await us.close();
    }
  });
});
