/**
 * Hostile requests against a standalone emulator (`klaviyo-etl emulator`, the BUILT CLI: `npm run build` first), so
 * that a request that kills the process, or blocks it, shows: each answer is Klaviyo's JSON:API error, nothing is
 * stored, every account is still served, and the process still exits 0 on SIGTERM at the end.
 */
import type { ChildProcess } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/cli.js';
import { client, getJson, KEY, waitFor } from '../unit/emulator/client.js';

const OTHER_KEY = 'pk_hostile_other_account_0001';
const DEEP = 50_000;
/** JSON text of `[[[…]]]` nested `n` deep. */
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
/** `{"a":{"a":…1…}}`: `n` objects nested inside each other. */
const nest = (n: number): unknown => (n === 0 ? 1 : { a: nest(n - 1) });

const metric = '{"data":{"type":"metric","attributes":{"name":"Hostile"}}}';
const profile = (email: string) => `{"data":{"type":"profile","attributes":{"email":"${email}"}}}`;
const eventText = (props: string, email = 'deep@example.com') =>
  `{"data":{"type":"event","attributes":{"properties":${props},"metric":${metric},"profile":${profile(email)}}}}`;
const bulkEventText = (props: string) =>
  `{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[{"type":"event-bulk-create","attributes":{"profile":${profile('bulk@example.com')},"events":{"data":[{"type":"event","attributes":{"properties":${props},"metric":${metric}}}]}}}]}}}}`;
const bulkImportText = (props: string) =>
  `{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"import@example.com","properties":${props}}}]}}}}`;

let child: ChildProcess;
let url: string;
let stderr = '';
let exited: Promise<number | null>;

beforeAll(async () => {
  child = spawnCli(['emulator', '--limits', 'off']);
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
    });
    child.on('exit', (code) => reject(new Error(`the emulator exited (${code}) before printing its URL: ${stderr}`)));
  });
});

afterAll(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

/** The first error of a response, with every member Klaviyo's error objects have. */
function firstError(r: { json: { errors?: Record<string, unknown>[] } | undefined }) {
  const err = r.json?.errors?.[0];
  expect(err).toBeDefined();
  expect(Object.keys(err!).sort()).toEqual(['code', 'detail', 'id', 'links', 'meta', 'source', 'status', 'title']);
  return err as { status: number; code: string; title: string; detail: string; source: { pointer?: string; parameter?: string } };
}

/** A raw request (string or bytes body) with the headers the emulator requires. */
async function raw(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Klaviyo-API-Key ${KEY}`, revision: '2026-07-15', 'content-type': 'application/vnd.api+json', ...headers },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
}

/** The state of the emulator, answered within 10 s (a blocked emulator fails here rather than hanging the test). */
const state = (key?: string) => getJson(`${url}/_emulator/state${key ? `?key=${key}` : ''}`, { signal: AbortSignal.timeout(10_000) });

describe('deep bodies are refused at the door', () => {
  it(`a bulk profile import with a ${DEEP.toLocaleString('en')}-deep property is a 400, no job is queued, and the process lives on`, async () => {
    const r = await raw('POST', '/api/profile-bulk-import-jobs', bulkImportText(`{"x":${deepArray(DEEP)}}`));
    expect(r.status).toBe(400);
    const err = firstError(r);
    expect(err).toMatchObject({ status: 400, code: 'invalid', detail: 'The request body nests objects and arrays more than 32 levels deep.' });
    // the 33rd container: 8 levels of envelope, `x`, then 24 levels of the array
    expect(err.source.pointer).toBe('/data/attributes/profiles/data/0/attributes/properties/x' + '/0'.repeat(24));
    expect(await state()).toMatchObject({ profiles: 0, jobs: { total: 0 } });
    // a job that is queued is processed within a tick: one queued now and finished proves the processor still runs
    const ok = await client(url)('POST', '/api/profile-bulk-import-jobs', JSON.parse(bulkImportText(JSON.stringify({ x: nest(10) }))));
    expect(ok.status).toBe(202);
    const done = await waitFor(async () => {
      const job = await client(url)('GET', `/api/profile-bulk-import-jobs/${ok.json.data.id}`);
      return job.json.data.attributes.status === 'complete' ? job.json.data.attributes : undefined;
    });
    expect(done).toMatchObject({ completed_count: 1, failed_count: 0 });
    expect(child.exitCode).toBeNull();
  });

  it(`a ${DEEP.toLocaleString('en')}-deep event is a 400 on both event endpoints; events stay readable for every account`, async () => {
    const single = await raw('POST', '/api/events', eventText(`{"x":${deepArray(DEEP)}}`));
    expect(single.status).toBe(400);
    expect(firstError(single)).toMatchObject({ status: 400, code: 'invalid', source: { pointer: '/data/attributes/properties/x' + '/0'.repeat(28) } });
    const bulk = await raw('POST', '/api/event-bulk-create-jobs', bulkEventText(`{"x":${deepArray(DEEP)}}`));
    expect(bulk.status).toBe(400);
    expect(firstError(bulk).source.pointer).toBe('/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/properties/x' + '/0'.repeat(20));
    expect(await state()).toMatchObject({ events: 0 });

    // what is allowed is stored and served: 10 nesting levels, from two accounts
    const props = { x: nest(10), list: [1, [2, [3]]] };
    expect((await raw('POST', '/api/events', eventText(JSON.stringify(props), 'ten@example.com'))).status).toBe(202);
    expect((await client(url, OTHER_KEY)('POST', '/api/events', JSON.parse(eventText('{"n":1}', 'other@example.com')))).status).toBe(202);
    const events = await client(url)('GET', '/api/events');
    expect(events.status).toBe(200);
    expect(events.json.data).toHaveLength(1);
    expect(events.json.data[0].attributes.event_properties).toMatchObject(props);
    const stream = await fetch(`${url}/_emulator/events`, { signal: AbortSignal.timeout(10_000) });
    expect(stream.status).toBe(200);
    const lines = (await stream.text()).trim().split('\n').map((l) => JSON.parse(l) as { email: string; properties: unknown });
    expect(lines.map((l) => l.email).sort()).toEqual(['other@example.com', 'ten@example.com']);
    expect(lines.find((l) => l.email === 'ten@example.com')!.properties).toEqual(props);
  });

  it('a 5 MB body nested 2.6 million deep is refused before it is parsed', async () => {
    const body = deepArray(2_600_000);
    expect(body.length).toBeLessThan(5 * 1024 * 1024);
    const r = await raw('POST', '/api/events', body);
    expect(r.status).toBe(400);
    expect(firstError(r)).toMatchObject({ code: 'invalid', source: { pointer: '/0'.repeat(32) } });
  });
});

describe('malformed transfer details are 400s, not 413 or 500', () => {
  it('a corrupt or truncated gzip body is a 400 parse_error; a gzip body over 5 MB stays a 413', async () => {
    const gz = { 'content-encoding': 'gzip' };
    const before = (await state(KEY)).events as number;
    const notGzip = await raw('POST', '/api/events', Buffer.from(eventText('{}')), gz);
    expect(notGzip.status).toBe(400);
    expect(firstError(notGzip)).toMatchObject({ status: 400, code: 'parse_error', source: { pointer: '/data/' } });
    expect(firstError(notGzip).detail).toMatch(/not valid gzip/);
    const whole = gzipSync(eventText('{"ok":1}'));
    const truncated = await raw('POST', '/api/events', whole.subarray(0, whole.length - 8), gz);
    expect(truncated.status).toBe(400);
    expect(firstError(truncated).code).toBe('parse_error');
    const bomb = await raw('POST', '/api/events', gzipSync(Buffer.alloc(6 * 1024 * 1024, 0x20)), gz);
    expect(bomb.status).toBe(413);
    expect(firstError(bomb).code).toBe('payload_too_large');
    expect((await raw('POST', '/api/events', whole, gz)).status).toBe(202);
    expect((await state(KEY)).events).toBe(before + 1);
  });

  it.each([['/api/profiles/%E0%A4%A'], ['/api/profiles/%zz'], ['/api/lists/%C0%80/profiles'], ['/_emulator/%']])('%s (bad percent-encoding) is a 400', async (path) => {
    const r = await raw('GET', path);
    expect(r.status).toBe(400);
    expect(firstError(r)).toMatchObject({ status: 400, code: 'invalid', source: { pointer: '/data/' } });
    expect(firstError(r).detail).toMatch(/percent-encoding/);
  });
});

describe('after all of it', () => {
  it('the emulator still answers, and SIGTERM ends it with exit 0', async () => {
    expect(await getJson(`${url}/_emulator/health`, { signal: AbortSignal.timeout(10_000) })).toEqual({ ok: true });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('emulator stopped\n');
  });
});
