import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { client, waitFor } from '../unit/emulator/client.js';

let emu: EmulatorHandle;
let call: ReturnType<typeof client>;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emu-seed-'));
  const seedFile = join(dir, 'seed.json');
  writeFileSync(seedFile, JSON.stringify({ lists: [{ id: 'Y6nRLr', name: 'Newsletter', members: ['seeded@example.com'] }], segments: [{ id: 'SeG001', name: 'VIP', members: ['seeded@example.com'] }] }));
  // slow processing so the queued → processing → complete lifecycle is observable
  emu = await startEmulator({ port: 0, limits: 'off', processingRate: 40, seedFile });
  call = client(emu.url);
});
afterAll(() => emu.close());

function jobBody(profiles: Record<string, unknown>[], lists?: string[]) {
  return {
    data: {
      type: 'profile-bulk-import-job',
      attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } },
      ...(lists ? { relationships: { lists: { data: lists.map((id) => ({ type: 'list', id })) } } } : {}),
    },
  };
}

describe('profile bulk import jobs', () => {
  it('runs queued → processing → complete, with import-errors for invalid profiles and list membership', async () => {
    await call('POST', '/api/profile-import', { data: { type: 'profile', attributes: { email: 'keep@example.com', first_name: 'Keep', properties: { p: 1 } } } });
    const profiles: Record<string, unknown>[] = [];
    for (let i = 0; i < 30; i++) profiles.push({ email: `bulk${i}@example.com`, properties: { n: i } });
    profiles.push({ email: 'broken-email', first_name: 'X' }); // index 30
    profiles.push({ email: 'keep@example.com', first_name: null, last_name: 'New' }); // index 31: null ignored
    profiles.push({ phone_number: '12345' }); // index 32
    const r = await call('POST', '/api/profile-bulk-import-jobs', jobBody(profiles, ['Y6nRLr']));
    expect(r.status).toBe(202);
    expect(r.json.data.type).toBe('profile-bulk-import-job');
    expect(r.json.data.attributes).toMatchObject({ status: 'queued', total_count: 33, completed_count: 0, failed_count: 0, started_at: null, completed_at: null });
    const id = r.json.data.id;

    const statuses = new Set<string>(['queued']);
    const done = await waitFor(async () => {
      const s = await call('GET', `/api/profile-bulk-import-jobs/${id}`);
      statuses.add(s.json.data.attributes.status);
      return s.json.data.attributes.status === 'complete' ? s.json.data.attributes : undefined;
    });
    expect(statuses.has('processing')).toBe(true);
    expect(done).toMatchObject({ total_count: 33, completed_count: 31, failed_count: 2 });
    expect(done.started_at).toEqual(expect.any(String));
    expect(done.completed_at).toEqual(expect.any(String));
    expect(done.expires_at).toEqual(expect.any(String));

    const errs = await call('GET', `/api/profile-bulk-import-jobs/${id}/import-errors?page[size]=1`);
    expect(errs.json.data).toHaveLength(1);
    expect(errs.json.data[0]).toMatchObject({
      type: 'import-error',
      attributes: { code: 'invalid', detail: 'Invalid email address', source: { pointer: '/data/attributes/profiles/data/30/attributes/email' }, original_payload: { email: 'broken-email', first_name: 'X' } },
    });
    const sparse = await call('GET', `/api/profile-bulk-import-jobs/${id}/import-errors?fields[import-error]=source.pointer,code`);
    expect(sparse.json.data[0].attributes).toEqual({ code: 'invalid', source: { pointer: '/data/attributes/profiles/data/30/attributes/email' } });
    const job = await call('GET', `/api/profile-bulk-import-jobs/${id}?fields[profile-bulk-import-job]=status,failed_count`);
    expect(job.json.data.attributes).toEqual({ status: 'complete', failed_count: 2 });
    const page2 = await call('GET', errs.json.links.next.slice(emu.url.length));
    expect(page2.json.data[0].attributes.source.pointer).toBe('/data/attributes/profiles/data/32/attributes/phone_number');
    expect(page2.json.links.next).toBeUndefined();

    const keep = await call('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"keep@example.com")')}`);
    expect(keep.json.data[0].attributes).toMatchObject({ first_name: 'Keep', last_name: 'New', properties: { p: 1 } });

    const ids = await call('GET', `/api/profile-bulk-import-jobs/${id}/relationships/profiles?page[size]=100`);
    expect(ids.json.data).toHaveLength(31);
    expect(ids.json.data[0]).toEqual({ type: 'profile', id: expect.any(String) });
    const full = await call('GET', `/api/profile-bulk-import-jobs/${id}/profiles?page[size]=5`);
    expect(full.json.data).toHaveLength(5);
    expect(full.json.data[0].attributes.email).toBe('bulk0@example.com');

    const state = emu.snapshot();
    const list = state.lists.find((l) => l.id === 'Y6nRLr');
    expect(list).toEqual({ id: 'Y6nRLr', name: 'Newsletter', members: 32 }); // 31 imported + 1 seeded
    expect(state.segments).toEqual([{ id: 'SeG001', name: 'VIP', members: 1 }]);
  });

  it('lists jobs with a status filter and sort', async () => {
    const r = await call('POST', '/api/profile-bulk-import-jobs', jobBody([{ email: 'lj@example.com' }]));
    await waitFor(async () => ((await call('GET', `/api/profile-bulk-import-jobs/${r.json.data.id}`)).json.data.attributes.status === 'complete' ? true : undefined));
    const complete = await call('GET', `/api/profile-bulk-import-jobs?filter=${encodeURIComponent("equals(status,'complete')")}&sort=-created_at`);
    expect(complete.json.data.length).toBeGreaterThanOrEqual(2);
    expect(complete.json.data[0].id).toBe(r.json.data.id);
    const queued = await call('GET', `/api/profile-bulk-import-jobs?filter=${encodeURIComponent('any(status,["queued","processing"])')}`);
    expect(queued.json.data).toHaveLength(0);
  });

  it('rejects more than 10,000 profiles, wrong item types and unknown lists synchronously', async () => {
    const many = Array.from({ length: 10_001 }, (_, i) => ({ email: `m${i}@example.com` }));
    const r = await call('POST', '/api/profile-bulk-import-jobs', jobBody(many));
    expect(r.status).toBe(400);
    expect(r.json.errors[0].source.pointer).toBe('/data/attributes/profiles/data');
    const badType = await call('POST', '/api/profile-bulk-import-jobs', { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: [{ type: 'event', attributes: {} }] } } } });
    expect(badType.status).toBe(400);
    expect(badType.json.errors[0].source.pointer).toBe('/data/attributes/profiles/data/0/type');
    const noList = await call('POST', '/api/profile-bulk-import-jobs', jobBody([{ email: 'x@example.com' }], ['NoSuch']));
    expect(noList.status).toBe(404);
    expect(noList.json.errors[0].source.pointer).toBe('/data/relationships/lists/data/0/id');
  });

  it('404 for an unknown job', async () => {
    const r = await call('GET', '/api/profile-bulk-import-jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    expect(r.status).toBe(404);
  });
});
