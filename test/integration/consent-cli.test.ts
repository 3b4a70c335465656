import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { readRejects, rejectsFileOf } from '../helpers/resume.js';
import { client } from '../unit/emulator/client.js';

/**
 * Issue 12, "Consent and membership, both directions, safely" (subscribing side), through the CLI against the
 * emulator: the consent guard (opt-outs newer than the row's consent are skipped, counted and listed), SMS consent
 * only for regions the account can text, and asynchronous subscriptions with the `verify` read-back. Each asserts what
 * the emulator ends up holding, the requests made and the exit code.
 */

const KEY = 'pk_consent_cli_00000000000000000000';
const LOOKUP = 'GET /api/profiles';
const SUBSCRIBE = 'POST /api/profile-subscription-bulk-create-jobs';
let tmp: string;
let emulator: EmulatorHandle | undefined;
/** The emulator's clock: real time shifted by this (ms). */
let shift = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-consent-'));
});

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
  shift = 0;
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function start(options: EmulatorOptions): Promise<{ emu: EmulatorHandle; call: ReturnType<typeof client> }> {
  emulator = await startEmulator({ port: 0, limits: 'off', now: () => Date.now() + shift, ...options });
  return { emu: emulator, call: client(emulator.url, KEY) };
}

interface Report {
  status: string;
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  requests: { total: number; byEndpoint: Record<string, number> };
  skips?: { file: string; byCode: Record<string, number> };
  verify?: { sampled: number; holding: number; notHolding: number; complete: boolean; waitedMs: number };
  warnings?: { code: string; message: string }[];
}

async function run(name: string, yaml: string, csv: string) {
  await writeFile(path.join(tmp, `${name}.csv`), csv);
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(file, yaml);
  const reportFile = path.join(tmp, `${name}-report.json`);
  const result = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--report', reportFile], {
    env: { KLAVIYO_BASE_URL: emulator!.url, KLAVIYO_API_KEY: KEY },
  });
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  return { ...result, report };
}

function subscribeBody(profiles: Record<string, unknown>[]) {
  return { data: { type: 'profile-subscription-bulk-create-job', attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } } } };
}

function unsubscribeBody(emails: string[]) {
  return {
    data: {
      type: 'profile-subscription-bulk-delete-job',
      attributes: { profiles: { data: emails.map((email) => ({ type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } })) } },
    },
  };
}

async function emailConsent(call: ReturnType<typeof client>, email: string): Promise<{ consent: string; suppression: { reason: string }[] } | undefined> {
  const r = await call('GET', `/api/profiles?filter=${encodeURIComponent(`equals(email,"${email}")`)}&additional-fields[profile]=subscriptions`);
  return r.json.data[0]?.attributes.subscriptions.email.marketing;
}

const rejectsOf = async (name: string) => readRejects(await rejectsFileOf(path.join(tmp, 'state'), name));

const consentPipeline = (name: string, extra = '') => `version: 1
name: ${name}
source: {type: csv, path: ${name}.csv}
transform:
  type: subscription
  profile: {email: email}
  channels: {email: {marketing: true}}
  consented_at: consented_at
${extra}destination: {type: klaviyo, concurrency: 1}
`;

describe('the consent guard: a subscription never re-subscribes a profile that opted out after the row’s consent', () => {
  it('skips (CONSENT_OPTED_OUT, counted, listed with source lines) rows whose profile unsubscribed after consented_at or at all without one; subscribes the rest', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0 });
    // opt-outs recorded on 2024-01-01
    shift = Date.UTC(2024, 0, 1) - Date.now();
    expect((await call('POST', SUBSCRIBE.slice(5), subscribeBody(['b', 'c', 'e'].map((n) => ({ email: `${n}@example.com`, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }))))).status).toBe(202);
    expect((await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody(['b@example.com', 'c@example.com', 'e@example.com']))).status).toBe(202);
    shift = 0;
    const before = emu.snapshot().requests.byEndpoint;
    const csv = [
      'email,consented_at',
      'a@example.com,2023-06-01T00:00:00Z', // never opted out: subscribed
      'b@example.com,2023-06-01T00:00:00Z', // unsubscribed 2024-01-01, after the consent: skipped
      'c@example.com,2024-06-01T00:00:00Z', // consent given again after the unsubscribe: subscribed
      'e@example.com,', // unsubscribed, and the row says nothing of when consent was given: skipped
    ].join('\n');
    const { code, report, stdout } = await run('guard', consentPipeline('guard'), csv + '\n');
    expect(code).toBe(0);
    expect(report.status).toBe('succeeded');
    expect(report.rows).toEqual({ read: 4, loaded: 2, rejected: 0, skipped: 2 });
    expect(report.skips?.byCode).toEqual({ CONSENT_OPTED_OUT: 2 });
    expect(stdout).toMatch(/skipped\s+CONSENT_OPTED_OUT 2 → /);
    const skipped = await readRejects(path.join(tmp, 'state', 'guard', 'skipped.ndjson'));
    expect(skipped.map((s) => [s.line, s.code])).toEqual([
      [3, 'CONSENT_OPTED_OUT'],
      [5, 'CONSENT_OPTED_OUT'],
    ]);
    expect(await rejectsOf('guard')).toEqual([]);
    // one lookup (4 emails) and one subscribe request (2 profiles)
    const after = emu.snapshot().requests.byEndpoint;
    expect((after[LOOKUP] ?? 0) - (before[LOOKUP] ?? 0)).toBe(1);
    expect((after[SUBSCRIBE] ?? 0) - (before[SUBSCRIBE] ?? 0)).toBe(1);
    expect(report.requests.byEndpoint).toEqual({ [LOOKUP]: 1, [SUBSCRIBE]: 1 });
    expect((await emailConsent(call, 'a@example.com'))?.consent).toBe('SUBSCRIBED');
    expect(await emailConsent(call, 'b@example.com')).toMatchObject({ consent: 'UNSUBSCRIBED', suppression: [{ reason: 'UNSUBSCRIBE' }] });
    expect(await emailConsent(call, 'c@example.com')).toMatchObject({ consent: 'SUBSCRIBED', suppression: [] });
    expect(await emailConsent(call, 'e@example.com')).toMatchObject({ consent: 'UNSUBSCRIBED' });
  }, 60_000);

  it('a USER_SUPPRESSED profile (POST /api/profile-suppression-bulk-create-jobs) is skipped when the suppression is newer than the consent', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0 });
    shift = Date.UTC(2024, 0, 1) - Date.now();
    const suppressed = await call('POST', '/api/profile-suppression-bulk-create-jobs', {
      data: { type: 'profile-suppression-bulk-create-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 's@example.com' } }] } } },
    });
    expect(suppressed.status).toBe(202);
    shift = 0;
    const { code, report } = await run('suppressed', consentPipeline('suppressed'), 'email,consented_at\ns@example.com,2023-06-01T00:00:00Z\nt@example.com,2023-06-01T00:00:00Z\n');
    expect(code).toBe(0);
    expect(report.rows).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 });
    const skipped = await readRejects(path.join(tmp, 'state', 'suppressed', 'skipped.ndjson'));
    expect(skipped).toMatchObject([{ line: 2, code: 'CONSENT_OPTED_OUT', message: expect.stringContaining('email suppressed (USER_SUPPRESSED) at 2024-01-01') }]);
    expect(await emailConsent(call, 's@example.com')).toMatchObject({ suppression: [{ reason: 'USER_SUPPRESSED' }] });
    expect((await emailConsent(call, 't@example.com'))?.consent).toBe('SUBSCRIBED');
    expect(emu.snapshot().requests.byEndpoint[SUBSCRIBE]).toBe(1);
  }, 60_000);

  it('unsafe_resubscribe_opted_out: true turns the guard off: no lookup, the opted-out profile is subscribed again (its suppression lifted)', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0 });
    shift = Date.UTC(2024, 0, 1) - Date.now();
    await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody(['b@example.com']));
    shift = 0;
    const { code, report } = await run('unsafe', consentPipeline('unsafe', '  unsafe_resubscribe_opted_out: true\n'), 'email,consented_at\nb@example.com,2023-06-01T00:00:00Z\n');
    expect(code).toBe(0);
    expect(report.rows).toEqual({ read: 1, loaded: 1, rejected: 0, skipped: 0 });
    expect(report.requests.byEndpoint).toEqual({ [SUBSCRIBE]: 1 });
    expect(emu.snapshot().requests.byEndpoint[LOOKUP]).toBeUndefined();
    expect(await emailConsent(call, 'b@example.com')).toMatchObject({ consent: 'SUBSCRIBED', suppression: [] });
  }, 60_000);
});

const smsPipeline = (name: string, regions?: string) => `version: 1
name: ${name}
source: {type: csv, path: ${name}.csv}
transform:
  type: subscription
  profile: {email: email, phone_number: phone}
  channels: {sms: {marketing: true}}
${regions ? `  sms_regions: ${regions}\n` : ''}destination: {type: klaviyo, concurrency: 1}
`;

const SMS_CSV = 'email,phone\nus@example.com,+14155550100\nde@example.com,+4915123456789\ngb@example.com,+447400123456\n';

describe('SMS consent only where the account can send', () => {
  it('sms_regions: [US, CA]: the DE and GB numbers are rejected (SMS_REGION_UNSUPPORTED) before any request; the US one is subscribed; exit 3', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0, smsRegions: ['US', 'CA'] });
    const { code, report } = await run('sms-regions', smsPipeline('sms-regions', '[US, CA]'), SMS_CSV);
    expect(code).toBe(3);
    expect(report.status).toBe('completed_with_rejects');
    expect(report.rows).toEqual({ read: 3, loaded: 1, rejected: 2, skipped: 0 });
    const rejects = await rejectsOf('sms-regions');
    expect(rejects.map((r) => [r.line, r.stage, r.code])).toEqual([
      [3, 'transform', 'SMS_REGION_UNSUPPORTED'],
      [4, 'transform', 'SMS_REGION_UNSUPPORTED'],
    ]);
    // one lookup, one subscribe of the US profile only: Klaviyo never saw the others
    expect(report.requests.byEndpoint).toEqual({ [LOOKUP]: 1, [SUBSCRIBE]: 1 });
    expect(emu.snapshot().profiles).toBe(1);
    const us = await call('GET', `/api/profiles?filter=${encodeURIComponent('equals(phone_number,"+14155550100")')}&additional-fields[profile]=subscriptions`);
    expect(us.json.data[0].attributes.subscriptions.sms.marketing.consent).toBe('SUBSCRIBED');
  }, 60_000);

  it('the default sms_regions (every Klaviyo SMS region) against an account that texts only the US: Klaviyo’s 400 at the DE and GB numbers rejects just those rows', async () => {
    const { emu } = await start({ subscriptionDelayMs: 0, smsRegions: ['US'] });
    const { code, report } = await run('sms-klaviyo', smsPipeline('sms-klaviyo'), SMS_CSV);
    expect(code).toBe(3);
    expect(report.rows).toEqual({ read: 3, loaded: 1, rejected: 2, skipped: 0 });
    const rejects = await rejectsOf('sms-klaviyo');
    expect(rejects.map((r) => [r.line, r.stage, r.code])).toEqual([
      [3, 'load', 'KLAVIYO_REJECTED'],
      [4, 'load', 'KLAVIYO_REJECTED'],
    ]);
    // refused once naming the two profiles, the rest sent again: 2 subscribe requests, no bisection
    expect(report.requests.byEndpoint[SUBSCRIBE]).toBe(2);
    expect(emu.snapshot().profiles).toBe(1);
  }, 60_000);
});

const smsConsent = async (call: ReturnType<typeof client>, phone: string) =>
  (await call('GET', `/api/profiles?filter=${encodeURIComponent(`equals(phone_number,"${phone}")`)}&additional-fields[profile]=subscriptions`)).json.data[0]?.attributes
    .subscriptions.sms.marketing as { consent: string } | undefined;

describe('a row with email and an SMS number outside sms_regions', () => {
  it('subscribes the email, rejects the SMS consent alone (SMS_REGION_UNSUPPORTED, with its line); Klaviyo never sees the number; exit 3', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0, smsRegions: ['US'] });
    const yaml = smsPipeline('sms-partial', '[US]').replace('channels: {sms: {marketing: true}}', 'channels: {email: {marketing: true}, sms: {marketing: true}}');
    const { code, report, stdout } = await run('sms-partial', yaml, SMS_CSV);
    expect(code).toBe(3);
    // the DE and GB rows are rejected rows (their SMS consent needs fixing); their email consent is an item sent
    expect(report.rows).toEqual({ read: 3, loaded: 1, rejected: 2, skipped: 0 });
    expect((report as Report & { items: { subscriptions: number } }).items.subscriptions).toBe(3);
    const rejects = await rejectsOf('sms-partial');
    expect(rejects.map((r) => [r.line, r.stage, r.code, r.field])).toEqual([
      [3, 'transform', 'SMS_REGION_UNSUPPORTED', 'profile.phone_number'],
      [4, 'transform', 'SMS_REGION_UNSUPPORTED', 'profile.phone_number'],
    ]);
    expect(rejects[0]!.message).toMatch(/DE is not among sms_regions \(US\).*only the SMS consent is rejected: the row's email consent is subscribed/);
    expect(stdout).toMatch(/SMS_REGION_UNSUPPORTED 2, e\.g\. .*sms-partial\.csv:3/);
    // one subscribe request, accepted whole (the emulator would answer 400 to SMS consent for DE or GB)
    expect(report.requests.byEndpoint[SUBSCRIBE]).toBe(1);
    expect(await emailConsent(call, 'de@example.com')).toMatchObject({ consent: 'SUBSCRIBED' });
    expect(await emailConsent(call, 'gb@example.com')).toMatchObject({ consent: 'SUBSCRIBED' });
    expect(await smsConsent(call, '+4915123456789')).toBeUndefined(); // no profile holds the number
    expect(await smsConsent(call, '+14155550100')).toMatchObject({ consent: 'SUBSCRIBED' });
    expect(emu.snapshot().profiles).toBe(3);
  }, 60_000);
});

const profileConsentPipeline = (name: string, subscribe: string) => `version: 1
name: ${name}
source: {type: csv, path: ${name}.csv}
transform:
  type: profile
  profile: {email: email, phone_number: phone, first_name: name}
  subscribe:
${subscribe}destination: {type: klaviyo, concurrency: 1}
`;

describe('a profile transform’s subscribe: goes through the same consent guard and sms_regions check', () => {
  it('imports every profile, but never re-subscribes one that unsubscribed after the row’s consented_at (CONSENT_OPTED_OUT, counted, listed)', async () => {
    const { call } = await start({ subscriptionDelayMs: 0 });
    shift = Date.UTC(2024, 0, 1) - Date.now();
    expect((await call('POST', '/api/profile-subscription-bulk-create-jobs', subscribeBody([{ email: 'b@example.com', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } }]))).status).toBe(202);
    await call('POST', '/api/profile-subscription-bulk-delete-jobs', unsubscribeBody(['b@example.com']));
    shift = 0;
    const csv = 'email,phone,name,consented_at\na@example.com,,Ann,2023-06-01T00:00:00Z\nb@example.com,,Bob,2023-06-01T00:00:00Z\n';
    const subscribe = '    channels: {email: {marketing: true}}\n    consented_at: consented_at\n';
    const { code, report, stdout } = await run('profile-guard', profileConsentPipeline('profile-guard', subscribe), csv);
    expect(code).toBe(0);
    expect(report.rows).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 });
    expect(report.skips?.byCode).toEqual({ CONSENT_OPTED_OUT: 1 });
    expect(stdout).toMatch(/skipped\s+CONSENT_OPTED_OUT 1 → /);
    const skipped = await readRejects(path.join(tmp, 'state', 'profile-guard', 'skipped.ndjson'));
    expect(skipped.map((s) => [s.line, s.code])).toEqual([[3, 'CONSENT_OPTED_OUT']]);
    expect(report.requests.byEndpoint[LOOKUP]).toBe(1);
    expect(await emailConsent(call, 'a@example.com')).toMatchObject({ consent: 'SUBSCRIBED' });
    expect(await emailConsent(call, 'b@example.com')).toMatchObject({ consent: 'UNSUBSCRIBED', suppression: [{ reason: 'UNSUBSCRIBE' }] });
    // Bob's profile was imported all the same
    const bob = await call('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"b@example.com")')}`);
    expect(bob.json.data[0].attributes.first_name).toBe('Bob');
  }, 60_000);

  it('sms_regions: [US]: an out-of-region number gets no SMS consent (its reject names the line); the profile is imported and its email subscribed', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 0, smsRegions: ['US'] });
    const csv = 'email,phone,name\nus@example.com,+14155550100,Uma\nde@example.com,+4915123456789,Dirk\n';
    const subscribe = '    channels: {email: {marketing: true}, sms: {marketing: true}}\n    sms_regions: [US]\n';
    const { code, report } = await run('profile-sms', profileConsentPipeline('profile-sms', subscribe), csv);
    expect(code).toBe(3);
    expect(report.rows).toEqual({ read: 2, loaded: 1, rejected: 1, skipped: 0 });
    expect((report as Report & { items: { profiles: number; subscriptions: number } }).items).toMatchObject({ profiles: 2, subscriptions: 2 });
    const rejects = await rejectsOf('profile-sms');
    expect(rejects.map((r) => [r.line, r.stage, r.code, r.field])).toEqual([[3, 'transform', 'SMS_REGION_UNSUPPORTED', 'phone_number']]);
    expect(rejects[0]!.message).toContain('only the SMS consent is rejected: its profile is imported and its email consent subscribed');
    expect(report.requests.byEndpoint[SUBSCRIBE]).toBe(1); // accepted whole: no SMS consent for DE was sent
    expect(await emailConsent(call, 'de@example.com')).toMatchObject({ consent: 'SUBSCRIBED' });
    const dirk = (await call('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"de@example.com")')}&additional-fields[profile]=subscriptions`)).json.data[0].attributes;
    expect(dirk).toMatchObject({ first_name: 'Dirk', phone_number: '+4915123456789' });
    expect(dirk.subscriptions.sms.marketing.consent).not.toBe('SUBSCRIBED');
    expect(await smsConsent(call, '+14155550100')).toMatchObject({ consent: 'SUBSCRIBED' });
    expect(emu.snapshot().profiles).toBe(2);
  }, 60_000);
});

const verifyPipeline = (name: string, verify: string) => `version: 1
name: ${name}
source: {type: csv, path: ${name}.csv}
transform:
  type: subscription
  profile: {email: email}
  channels: {email: {marketing: true}}
destination:
  type: klaviyo
  concurrency: 1
${verify}`;

const people = (n: number) => ['email', ...Array.from({ length: n }, (_, i) => `v${i}@example.com`)].join('\n') + '\n';

describe('subscriptions are asynchronous: the report says what was accepted; verify reads a sample back', () => {
  it('without verify: loaded means accepted (202); the emulator has not applied the job yet', async () => {
    const { emu, call } = await start({ subscriptionDelayMs: 600_000 });
    const { code, report } = await run('accepted', verifyPipeline('accepted', ''), people(10));
    expect(code).toBe(0);
    expect(report.rows.loaded).toBe(10);
    expect(report.verify).toBeUndefined();
    expect(emu.snapshot().subscriptionsPending).toBe(1);
    expect(await emailConsent(call, 'v0@example.com')).toBeUndefined();
  }, 60_000);

  it('verify: {sample: 5}: waits until the sampled profiles hold the consent, and reports it', async () => {
    const { emu } = await start({ subscriptionDelayMs: 1500 });
    const { code, report, stdout } = await run('verified', verifyPipeline('verified', '  verify: {sample: 5, timeoutMs: 30000}\n'), people(10));
    expect(code).toBe(0);
    expect(report.rows.loaded).toBe(10);
    expect(report.verify).toMatchObject({ sampled: 5, holding: 5, notHolding: 0, complete: true });
    expect(report.verify!.waitedMs).toBeGreaterThanOrEqual(1000);
    expect(stdout).toMatch(/verify\s+5 of 5 sampled profiles hold the consent sent/);
    expect(emu.snapshot().subscriptionsPending).toBe(0);
  }, 60_000);

  it('verify that times out: the report says how many hold it (0 of 3), the run still succeeds (exit 0) with the subscriptions accepted', async () => {
    await start({ subscriptionDelayMs: 600_000 });
    const { code, report, stdout } = await run('unverified', verifyPipeline('unverified', '  verify: {sample: 3, timeoutMs: 1200}\n'), people(3));
    expect(code).toBe(0);
    expect(report.rows.loaded).toBe(3);
    expect(report.verify).toMatchObject({ sampled: 3, holding: 0, notHolding: 3, complete: false });
    expect(report.requests.byEndpoint[LOOKUP]).toBeGreaterThanOrEqual(3); // the guard's lookup and at least two polls
    expect(stdout).toMatch(/verify\s+0 of 3 sampled profiles hold the consent sent after \d+ s/);
  }, 60_000);
});

describe('pipelines/examples/newsletter-consent.yaml', () => {
  it('runs on the embedded emulator: the "no" row skipped by `when`, three subscribed (SMS for the US numbers), verify finds all three holding it', async () => {
    const reportFile = path.join(tmp, 'example-report.json');
    const r = await cli(['run', 'pipelines/examples/newsletter-consent.yaml', '--emulator', '--report', reportFile, '--state-dir', path.join(tmp, 'state-example')]);
    expect(r.code).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report & { emulator: { state: { profiles: number } } };
    expect(report.rows).toEqual({ read: 4, loaded: 3, rejected: 0, skipped: 1 });
    expect(report.verify).toMatchObject({ sampled: 3, holding: 3, complete: true });
    expect(report.emulator.state.profiles).toBe(3);
  }, 60_000);
});
