import { afterEach, describe, expect, it } from 'vitest';
import { createKlaviyoLoader } from '../../../src/load/index.js';
import { PROFILES_ENDPOINT_KEY } from '../../../src/load/klaviyo-profiles.js';
import { makeItems, recordingContext, specBodyValidator, testClient, withServer, type Reply, type SeenRequest, type TestServer } from './helpers.js';

type Body = { data: { attributes: { profiles: { data: { attributes: Record<string, unknown> }[] } }; relationships?: unknown } };

/** A tiny stateful bulk-import server: jobs go processing → complete; "bad…" emails become import errors. */
function jobServer(options: { cancel?: boolean; preexisting?: Record<string, string[]> } = {}) {
  const jobs = new Map<string, { emails: string[]; polls: number }>();
  for (const [id, emails] of Object.entries(options.preexisting ?? {})) jobs.set(id, { emails, polls: 0 });
  let n = 0;
  return (req: SeenRequest): Reply => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST' && url.pathname === '/api/profile-bulk-import-jobs') {
      const emails = (req.json as Body).data.attributes.profiles.data.map((p) => p.attributes.email as string);
      const refused = emails.flatMap((e, i) => (e.startsWith('reject') ? [i] : []));
      if (refused.length > 0) {
        return {
          status: 400,
          body: { errors: refused.map((i) => ({ code: 'invalid', detail: 'Invalid email address', source: { pointer: `/data/attributes/profiles/data/${i}/attributes/email` } })) },
        };
      }
      const id = `job-${++n}`;
      jobs.set(id, { emails, polls: 0 });
      return { status: 202, body: { data: { type: 'profile-bulk-import-job', id, attributes: { status: 'queued', total_count: emails.length } } } };
    }
    const match = /^\/api\/profile-bulk-import-jobs\/([^/]+)(\/import-errors)?$/.exec(url.pathname);
    const job = match ? jobs.get(match[1]!) : undefined;
    if (!match || !job) return { status: 404, body: { errors: [{ code: 'not_found', detail: 'no such job' }] } };
    if (!match[2]) {
      job.polls++;
      const status = job.polls < 2 ? 'processing' : options.cancel ? 'cancelled' : 'complete';
      return { status: 200, body: { data: { type: 'profile-bulk-import-job', id: match[1], attributes: { status } } } };
    }
    const errors = job.emails.flatMap((e, i) =>
      e.startsWith('bad')
        ? [{ type: 'import-error', id: `${match[1]}-${i}`, attributes: { code: 'invalid', title: 'Invalid input', detail: `Invalid email ${e}`, source: { pointer: `/data/attributes/profiles/data/${i}/attributes/email` }, original_payload: { email: e } } }]
        : [],
    );
    // two per page, next as a full URL
    const cursor = Number(url.searchParams.get('page[cursor]') ?? 0);
    const page = errors.slice(cursor, cursor + 2);
    const next = cursor + 2 < errors.length ? `http://${req.headers.host}${url.pathname}?page%5Bcursor%5D=${cursor + 2}` : null;
    return { status: 200, body: { data: page, links: { self: req.url, next } } };
  };
}

const config = (profiles = 3, lists?: string[]) => ({ batch: { events: 1000, profiles, subscriptions: 1000, maxBytes: 4_900_000 }, concurrency: 2, lists });
const poll = { intervalMs: 20, maxIntervalMs: 50 };

let server: TestServer | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await server?.close();
  server = undefined;
});

function setup(url: string, extra: Parameters<typeof recordingContext>[1] = {}) {
  const t = testClient(url);
  cleanups.push(t.close);
  return { ...t, ...recordingContext(t.stats, extra) };
}

describe('profile loader', () => {
  it('submits spec-valid import jobs, polls them, and joins import-errors to source lines', async () => {
    server = await withServer(jobServer());
    const { client, ctx, acked, jobIds, rejects, jobsDone, stats } = setup(server.url);
    const emails = ['a@x.com', 'bad1@x', 'c@x.com', 'd@x.com', 'bad4@x', 'f@x.com', 'bad6@x'];
    const items = makeItems('profile', emails.map((email) => ({ email, properties: { tier: 'gold' } })), 'people.csv');
    const loader = createKlaviyoLoader('profile', config(3, ['LIST1']), { ...ctx, client, poll });
    await loader.write(items);
    await loader.close();

    expect(acked).toEqual(items);
    expect(jobIds).toEqual(['job-1', 'job-1', 'job-1', 'job-2', 'job-2', 'job-2', 'job-3']);
    expect(jobsDone.sort()).toEqual(['job-1', 'job-2', 'job-3']);
    expect(loader.pendingJobs?.()).toEqual([]);
    expect(rejects.map((r) => [r.seq, r.line, r.code]).sort()).toEqual([
      [1, 3, 'KLAVIYO_IMPORT_ERROR'],
      [4, 6, 'KLAVIYO_IMPORT_ERROR'],
      [6, 8, 'KLAVIYO_IMPORT_ERROR'],
    ]);
    expect(rejects.find((r) => r.seq === 4)).toMatchObject({ source: 'people.csv', field: '/attributes/email', message: 'invalid: Invalid email bad4@x' });
    expect(stats.jobs).toEqual({ submitted: 3, completed: 3, importErrors: 3, forgotten: 0 });

    const posts = server.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(3);
    const validate = await specBodyValidator(PROFILES_ENDPOINT_KEY);
    for (const post of posts) {
      expect(validate(post.json)).toEqual([]);
      expect((post.json as Body).data.relationships).toEqual({ lists: { data: [{ type: 'list', id: 'LIST1' }] } });
    }
    // import-errors of job-2 (one error) fit one page; job-1's single error too; every GET carries the key
    expect(server.requests.every((r) => r.headers.authorization?.startsWith('Klaviyo-API-Key '))).toBe(true);
  });

  it('follows import-errors pages through links.next', async () => {
    server = await withServer(jobServer());
    const { client, ctx, rejects } = setup(server.url);
    const emails = ['bad0@x', 'bad1@x', 'c@x.com', 'bad3@x', 'bad4@x'];
    const loader = createKlaviyoLoader('profile', config(10), { ...ctx, client, poll });
    await loader.write(makeItems('profile', emails.map((email) => ({ email }))));
    await loader.close();
    expect(rejects.map((r) => r.seq)).toEqual([0, 1, 3, 4]);
    expect(server.requests.filter((r) => r.url.includes('import-errors'))).toHaveLength(2);
  });

  it('a 400 on submission rejects the pointed profiles and submits the rest', async () => {
    server = await withServer(jobServer());
    const { client, ctx, acked, rejects } = setup(server.url);
    const loader = createKlaviyoLoader('profile', config(10), { ...ctx, client, poll });
    await loader.write(makeItems('profile', ['a@x.com', 'reject@x', 'c@x.com'].map((email) => ({ email }))));
    await loader.close();
    expect(rejects).toMatchObject([{ seq: 1, code: 'KLAVIYO_REJECTED', field: '/attributes/email' }]);
    expect(acked.map((i) => i.first.seq)).toEqual([0, 2]);
  });

  it('resumeJobs: polls earlier jobs without resubmitting anything', async () => {
    server = await withServer(jobServer({ preexisting: { 'old-1': ['bad@x', 'ok@x.com'] } }));
    const { client, ctx, rejects, jobsDone } = setup(server.url, { resumeJobs: ['old-1'] });
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    expect(loader.pendingJobs?.()).toEqual(['old-1']);
    await loader.close();
    expect(jobsDone).toEqual(['old-1']);
    expect(server.requests.some((r) => r.method === 'POST')).toBe(false);
    expect(rejects).toMatchObject([{ code: 'KLAVIYO_IMPORT_ERROR', seq: -1, source: 'klaviyo:profile-bulk-import-job/old-1', row: { email: 'bad@x' } }]);
  });

  it('forgottenJobs: resumed jobs Klaviyo answers 404 for are returned, counted and not followed; the others are polled', async () => {
    server = await withServer(jobServer({ preexisting: { 'old-1': ['bad@x', 'ok@x.com'] } }));
    const { client, ctx, rejects, jobsDone, stats } = setup(server.url, { resumeJobs: ['gone-1', 'old-1', 'gone-2'] });
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    expect(await loader.forgottenJobs?.()).toEqual(['gone-1', 'gone-2']);
    expect(stats.jobs.forgotten).toBe(2);
    expect(loader.pendingJobs?.()).toEqual(['old-1']);
    await loader.close();
    expect(jobsDone).toEqual(['old-1']);
    expect(rejects).toMatchObject([{ code: 'KLAVIYO_IMPORT_ERROR', row: { email: 'bad@x' } }]);
    // asked once each, then only old-1 was polled
    const gets = server.requests.filter((r) => r.method === 'GET' && !r.url.includes('import-errors')).map((r) => r.url.split('/').pop());
    expect(gets.filter((id) => id === 'gone-1')).toHaveLength(1);
    expect(gets.filter((id) => id === 'gone-2')).toHaveLength(1);
  });

  it('a resumed job that answers 404 while polled (not asked first) fails the run, naming the next run', async () => {
    server = await withServer(jobServer());
    const { client, ctx } = setup(server.url, { resumeJobs: ['gone-1'] });
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    await expect(loader.close()).rejects.toMatchObject({ code: 'KLAVIYO_JOB_FAILED', message: expect.stringMatching(/next run/) });
    expect(loader.pendingJobs?.()).toEqual(['gone-1']);
  });

  it('dropJobs: a dropped resumed job is not polled', async () => {
    server = await withServer(jobServer({ preexisting: { 'old-1': ['ok@x.com'] } }));
    const { client, ctx, jobsDone } = setup(server.url, { resumeJobs: ['old-1'] });
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    loader.dropJobs?.(['old-1']);
    await loader.close();
    expect(jobsDone).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });

  it('a cancelled job fails the run with KLAVIYO_JOB_FAILED', async () => {
    server = await withServer(jobServer({ cancel: true }));
    const { client, ctx } = setup(server.url);
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    await loader.write(makeItems('profile', [{ email: 'a@x.com' }]));
    await expect(loader.close()).rejects.toMatchObject({ code: 'KLAVIYO_JOB_FAILED' });
  });

  it('rejects a profile over 100 KB as RECORD_TOO_LARGE', async () => {
    server = await withServer(jobServer());
    const { client, ctx, acked, rejects } = setup(server.url);
    const loader = createKlaviyoLoader('profile', config(), { ...ctx, client, poll });
    await loader.write(makeItems('profile', [{ email: 'a@x.com' }, { email: 'b@x.com', properties: { blob: 'x'.repeat(100_001) } }]));
    await loader.close();
    expect(rejects).toMatchObject([{ seq: 1, code: 'RECORD_TOO_LARGE' }]);
    expect(acked.map((i) => i.first.seq)).toEqual([0]);
  });
});
