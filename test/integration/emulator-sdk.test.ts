/**
 * Every endpoint the emulator serves, driven through the official `klaviyo-api` Node SDK (v23) pointed at an
 * in-process emulator: proves the emulator's answers deserialize into the SDK's models (camelCase fields).
 */
import { ApiKeySession, EventsApi, ListsApi, MetricsApi, ProfilesApi, SegmentsApi } from 'klaviyo-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { getJson, KEY, waitFor } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let profiles: ProfilesApi;
let events: EventsApi;
let lists: ListsApi;
let segments: SegmentsApi;
let metrics: MetricsApi;
const SEGMENT_ID = 'SegVIP';

beforeAll(async () => {
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'emu-sdk-'));
  const seedFile = join(dir, 'seed.json');
  writeFileSync(seedFile, JSON.stringify({ segments: [{ id: SEGMENT_ID, name: 'VIP', members: ['vip1@example.com', 'vip2@example.com'] }] }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, processingRate: 100_000, subscriptionDelayMs: 0 });
  const session = new ApiKeySession(KEY);
  profiles = new ProfilesApi(session);
  events = new EventsApi(session);
  lists = new ListsApi(session);
  segments = new SegmentsApi(session);
  metrics = new MetricsApi(session);
  for (const api of [profiles, events, lists, segments, metrics]) api.basePath = emu.url;
});
afterAll(() => emu.close());

describe('klaviyo-api SDK against the emulator', () => {
  let profileId = '';

  it('profiles: create, get, update, import (upsert), list with filter and paging', async () => {
    const created = await profiles.createProfile({
      data: { type: 'profile', attributes: { email: 'sdk1@example.com', firstName: 'Ada', phoneNumber: '+14155552671', properties: { plan: 'pro' } } },
    });
    expect(created.response.status).toBe(201);
    profileId = created.body.data.id!;
    expect(created.body.data.attributes.firstName).toBe('Ada');
    expect(created.body.data.attributes.phoneNumber).toBe('+14155552671');
    expect(created.body.data.attributes.created).toBeInstanceOf(Date);

    const got = await profiles.getProfile(profileId, { additionalFieldsProfile: ['subscriptions'] });
    expect(got.body.data.attributes.email).toBe('sdk1@example.com');
    expect(got.body.data.attributes.subscriptions?.email?.marketing?.canReceiveEmailMarketing).toBe(false);
    expect(got.body.data.attributes.subscriptions?.email?.marketing?.consent).toBe('NEVER_SUBSCRIBED');

    const updated = await profiles.updateProfile(profileId, { data: { type: 'profile', id: profileId, attributes: { lastName: 'Lovelace' } } });
    expect(updated.body.data.attributes.lastName).toBe('Lovelace');

    const upsert = await profiles.createOrUpdateProfile({ data: { type: 'profile', attributes: { email: 'sdk2@example.com', externalId: 'x-2' } } });
    expect(upsert.response.status).toBe(201);
    expect(upsert.body.data.attributes.externalId).toBe('x-2');
    const again = await profiles.createOrUpdateProfile({ data: { type: 'profile', attributes: { email: 'sdk2@example.com', title: 'Dr' } } });
    expect(again.response.status).toBe(200);
    expect(again.body.data.id).toBe(upsert.body.data.id);

    const filtered = await profiles.getProfiles({ filter: 'equals(email,"sdk1@example.com")', fieldsProfile: ['email', 'first_name' as 'first_name'] });
    expect(filtered.body.data.map((p) => p.id)).toEqual([profileId]);
    const page1 = await profiles.getProfiles({ pageSize: 1 });
    expect(page1.body.data).toHaveLength(1);
    expect(page1.body.links?.next).toContain('page%5Bcursor%5D');
    const page2 = await profiles.getProfiles({ pageSize: 1, pageCursor: page1.body.links!.next! });
    expect(page2.body.data[0]!.id).not.toBe(page1.body.data[0]!.id);
  });

  it('bulk import jobs: create, get, list, import-errors, profiles, profile ids', async () => {
    const list = await lists.createList({ data: { type: 'list', attributes: { name: 'Imported' } } });
    const job = await profiles.bulkImportProfiles({
      data: {
        type: 'profile-bulk-import-job',
        attributes: {
          profiles: {
            data: [
              { type: 'profile', attributes: { email: 'bulk1@example.com', firstName: 'B1' } },
              { type: 'profile', attributes: { email: 'not-an-email' } },
            ],
          },
        },
        relationships: { lists: { data: [{ type: 'list', id: list.body.data.id }] } },
      },
    });
    expect(job.response.status).toBe(202);
    const jobId = job.body.data.id;
    expect(job.body.data.attributes.status).toBe('queued');
    expect(job.body.data.attributes.totalCount).toBe(2);
    const done = await waitFor(async () => {
      const r = await profiles.getBulkImportProfilesJob(jobId);
      return r.body.data.attributes.status === 'complete' ? r : undefined;
    });
    expect(done.body.data.attributes.completedCount).toBe(1);
    expect(done.body.data.attributes.failedCount).toBe(1);
    expect(done.body.data.attributes.completedAt).toBeInstanceOf(Date);
    const all = await profiles.getBulkImportProfilesJobs({ filter: 'equals(status,"complete")' });
    expect(all.body.data.map((j) => j.id)).toContain(jobId);
    const errors = await profiles.getErrorsForBulkImportProfilesJob(jobId);
    expect(errors.body.data[0]!.attributes.source.pointer).toBe('/data/attributes/profiles/data/1/attributes/email');
    expect(errors.body.data[0]!.attributes.originalPayload).toBeDefined();
    const jobProfiles = await profiles.getProfilesForBulkImportProfilesJob(jobId);
    expect(jobProfiles.body.data.map((p) => p.attributes.firstName)).toEqual(['B1']);
    const ids = await profiles.getProfileIdsForBulkImportProfilesJob(jobId);
    expect(ids.body.data[0]!.id).toBe(jobProfiles.body.data[0]!.id);
  });

  it('events: create, bulk create, list, get; metrics: list, get', async () => {
    const one = await events.createEvent({
      data: {
        type: 'event',
        attributes: {
          properties: { sku: 'A1' },
          time: new Date('2025-01-02T03:04:05Z'),
          value: 12.5,
          uniqueId: 'order-1',
          metric: { data: { type: 'metric', attributes: { name: 'Placed Order' } } },
          profile: { data: { type: 'profile', attributes: { email: 'sdk1@example.com' } } },
        },
      },
    });
    expect(one.response.status).toBe(202);
    const bulk = await events.bulkCreateEvents({
      data: {
        type: 'event-bulk-create-job',
        attributes: {
          eventsBulkCreate: {
            data: [
              {
                type: 'event-bulk-create',
                attributes: {
                  profile: { data: { type: 'profile', attributes: { email: 'sdk3@example.com' } } },
                  events: {
                    data: [
                      { type: 'event', attributes: { properties: { n: 1 }, uniqueId: 'b-1', metric: { data: { type: 'metric', attributes: { name: 'Viewed' } } } } },
                      { type: 'event', attributes: { properties: { n: 2 }, uniqueId: 'b-2', metric: { data: { type: 'metric', attributes: { name: 'Viewed' } } } } },
                    ],
                  },
                },
              },
            ],
          },
        },
      },
    });
    expect(bulk.response.status).toBe(202);
    const list = await events.getEvents({ filter: `equals(profile_id,"${profileId}")` });
    expect(list.body.data).toHaveLength(1);
    const ev = list.body.data[0]!;
    expect(ev.attributes.eventProperties).toMatchObject({ sku: 'A1', $value: 12.5, $event_id: 'order-1' });
    expect(ev.attributes.datetime).toEqual(new Date('2025-01-02T03:04:05Z'));
    const got = await events.getEvent(ev.id);
    expect(got.body.data.relationships?.metric?.data?.id).toBeDefined();

    const ms = await metrics.getMetrics();
    const names = ms.body.data.map((m) => m.attributes.name).sort();
    expect(names).toEqual(['Placed Order', 'Viewed']);
    const m = await metrics.getMetric(ms.body.data[0]!.id);
    expect(m.body.data.attributes.integration).toMatchObject({ name: 'API' });
  });

  it('subscriptions: subscribe into a list (historical import) and unsubscribe', async () => {
    const list = await lists.createList({ data: { type: 'list', attributes: { name: 'Newsletter' } } });
    const listId = list.body.data.id;
    const sub = await profiles.bulkSubscribeProfiles({
      data: {
        type: 'profile-subscription-bulk-create-job',
        attributes: {
          customSource: 'etl',
          historicalImport: true,
          profiles: {
            data: [
              {
                type: 'profile',
                attributes: {
                  email: 'sdk1@example.com',
                  phoneNumber: '+14155552671',
                  subscriptions: {
                    email: { marketing: { consent: 'SUBSCRIBED', consentedAt: new Date('2023-05-01T00:00:00Z') } },
                    sms: { marketing: { consent: 'SUBSCRIBED', consentedAt: new Date('2023-05-01T00:00:00Z') } },
                  },
                },
              },
            ],
          },
        },
        relationships: { list: { data: { type: 'list', id: listId } } },
      },
    });
    expect(sub.response.status).toBe(202);
    const members = await lists.getProfilesForList(listId, { additionalFieldsProfile: ['subscriptions'] });
    expect(members.body.data).toHaveLength(1);
    const attrs = members.body.data[0]!.attributes;
    expect(attrs.joinedGroupAt).toBeInstanceOf(Date);
    expect(attrs.subscriptions?.email?.marketing?.canReceiveEmailMarketing).toBe(true);
    expect(attrs.subscriptions?.email?.marketing?.consentTimestamp).toEqual(new Date('2023-05-01T00:00:00Z'));
    expect(attrs.subscriptions?.sms?.marketing?.canReceiveSmsMarketing).toBe(true);

    const unsub = await profiles.bulkUnsubscribeProfiles({
      data: {
        type: 'profile-subscription-bulk-delete-job',
        attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'sdk1@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } }] } },
        relationships: { list: { data: { type: 'list', id: listId } } },
      },
    });
    expect(unsub.response.status).toBe(202);
    const after = await profiles.getProfile(profileId, { additionalFieldsProfile: ['subscriptions'] });
    expect(after.body.data.attributes.subscriptions?.email?.marketing?.consent).toBe('UNSUBSCRIBED');
    expect(after.body.data.attributes.subscriptions?.email?.marketing?.listSuppressions?.[0]?.listId).toBe(listId);
    expect((await lists.getProfileIdsForList(listId)).body.data).toHaveLength(0);
  });

  it('suppressions: bulkSuppressProfiles answers the job, and the profile can no longer receive email marketing', async () => {
    const job = await profiles.bulkSuppressProfiles({
      data: { type: 'profile-suppression-bulk-create-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'sdk-suppressed@example.com' } }] } } },
    });
    expect(job.response.status).toBe(202);
    expect(job.body.data.attributes.status).toBe('complete');
    expect(job.body.data.attributes.totalCount).toBe(1);
    const found = await profiles.getProfiles({ filter: 'equals(email,"sdk-suppressed@example.com")', additionalFieldsProfile: ['subscriptions'] });
    const marketing = found.body.data[0]!.attributes.subscriptions?.email?.marketing;
    expect(marketing?.canReceiveEmailMarketing).toBe(false);
    expect(marketing?.suppression?.map((s) => s.reason)).toEqual(['USER_SUPPRESSED']);
  });

  it('lists: create, get, list, members, member ids, add and remove', async () => {
    const created = await lists.createList({ data: { type: 'list', attributes: { name: 'VIPs', optInProcess: 'double_opt_in' } } });
    expect(created.response.status).toBe(201);
    const id = created.body.data.id;
    expect(created.body.data.attributes.optInProcess).toBe('double_opt_in');
    const got = await lists.getList(id, { additionalFieldsList: ['profile_count'] });
    expect(got.body.data.attributes.name).toBe('VIPs');
    expect(got.body.data.attributes.profileCount).toBe(0);
    const byName = await lists.getLists({ filter: 'equals(name,"VIPs")' });
    expect(byName.body.data.map((l) => l.id)).toEqual([id]);

    const add = await lists.addProfilesToList(id, { data: [{ type: 'profile', id: profileId }] });
    expect(add.response.status).toBe(204);
    const members = await lists.getProfilesForList(id, { sort: '-joined_group_at', fieldsProfile: ['email', 'joined_group_at'] });
    expect(members.body.data.map((p) => p.attributes.email)).toEqual(['sdk1@example.com']);
    expect(members.body.data[0]!.attributes.joinedGroupAt).toBeInstanceOf(Date);
    const ids = await lists.getProfileIdsForList(id, { filter: 'equals(email,"sdk1@example.com")' });
    expect(ids.body.data).toEqual([{ type: 'profile', id: profileId }]);
    const remove = await lists.removeProfilesFromList(id, { data: [{ type: 'profile', id: profileId }] });
    expect(remove.response.status).toBe(204);
    expect((await lists.getProfileIdsForList(id)).body.data).toEqual([]);

    const state = await getJson(`${emu.url}/_emulator/state?key=${KEY}`);
    expect(state.lists.find((l: { id: string }) => l.id === id)).toEqual({ id, name: 'VIPs', members: 0 });
  });

  it('segments: list, get, members', async () => {
    const all = await segments.getSegments();
    expect(all.body.data.map((s) => s.id)).toContain(SEGMENT_ID);
    const one = await segments.getSegment(SEGMENT_ID);
    expect(one.body.data.attributes.name).toBe('VIP');
    expect(one.body.data.attributes.isActive).toBe(true);
    const members = await segments.getProfilesForSegment(SEGMENT_ID, { pageSize: 1 });
    expect(members.body.data).toHaveLength(1);
    expect(members.body.data[0]!.attributes.joinedGroupAt).toBeInstanceOf(Date);
    const rest = await segments.getProfilesForSegment(SEGMENT_ID, { pageSize: 1, pageCursor: members.body.links!.next! });
    expect(rest.body.data[0]!.attributes.email).toBe('vip2@example.com');
    expect(rest.body.links?.next).toBeUndefined();
  });

  it('SDK errors carry the emulator JSON:API error body', async () => {
    const err = await lists.getList('nope00').catch((e: unknown) => e as { response: { status: number; data: { errors: { code: string }[] } } });
    expect(err).toMatchObject({ response: { status: 404 } });
    expect((err as { response: { data: { errors: { code: string }[] } } }).response.data.errors[0]!.code).toBe('not_found');
  });
});
