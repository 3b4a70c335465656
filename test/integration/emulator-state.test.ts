import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emulatorOptionsFromArgs, serveEmulator } from '../../src/cli/commands/emulator.js';
import { startEmulator, type RouteModule } from '../../src/emulator/index.js';
import { bulkEventsBody, client, KEY, profileBody, getJson } from '../unit/emulator/client.js';

describe('state endpoints', () => {
  it('GET /_emulator/state has the documented fields; ?key= selects an account; reset wipes', async () => {
    const emu = await startEmulator({ port: 0, limits: 'off' });
    try {
      const a = client(emu.url, KEY);
      const b = client(emu.url, 'pk_other_account_99');
      await a('POST', '/api/profiles', profileBody({ email: 's1@example.com' }));
      await a('POST', '/api/event-bulk-create-jobs', bulkEventsBody([{ profile: { email: 's1@example.com' }, events: [{ unique_id: '1' }, { unique_id: '2' }] }]));
      await b('POST', '/api/event-bulk-create-jobs', bulkEventsBody([{ profile: { email: 's2@example.com' }, events: [{ unique_id: '1' }], metric: 'Other' }]));
      const all = await getJson(`${emu.url}/_emulator/state`);
      expect(all).toMatchObject({ profiles: 2, events: 3, eventsByMetric: { 'Placed Order': 2, Other: 1 }, duplicateEventsIgnored: 0, lists: [], accounts: 2, requests: { total: 3, throttled: 0 } });
      const onlyA = await getJson(`${emu.url}/_emulator/state?key=${KEY}`);
      expect(onlyA).toMatchObject({ profiles: 1, events: 2, eventsByMetric: { 'Placed Order': 2 }, requests: { total: 2 } });
      const byHeader = await getJson(`${emu.url}/_emulator/state`, { headers: { authorization: 'Klaviyo-API-Key pk_other_account_99' } });
      expect(byHeader.events).toBe(1);
      const lines = (await fetch(`${emu.url}/_emulator/events?key=${KEY}`).then((r) => r.text())).trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(emu.snapshot()).toEqual(all);
      expect((await fetch(`${emu.url}/_emulator/reset`, { method: 'POST' })).status).toBe(204);
      expect(emu.snapshot()).toMatchObject({ profiles: 0, events: 0, accounts: 0, requests: { total: 0 } });
    } finally {
      await emu.close();
    }
  });

  it('stateFile: saved on close, loaded on start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emu-state-'));
    const stateFile = join(dir, 'state.json');
    const first = await startEmulator({ port: 0, limits: 'off', stateFile });
    await client(first.url)('POST', '/api/events', {
      data: { type: 'event', attributes: { properties: { a: 1 }, unique_id: 'x', metric: { data: { type: 'metric', attributes: { name: 'Saved' } } }, profile: { data: { type: 'profile', attributes: { email: 'saved@example.com' } } } } },
    });
    await first.close();
    expect(existsSync(stateFile)).toBe(true);
    expect(readFileSync(stateFile, 'utf8')).not.toContain(KEY); // accounts are stored by key hash
    const second = await startEmulator({ port: 0, limits: 'off', stateFile });
    try {
      expect(second.snapshot()).toMatchObject({ profiles: 1, events: 1, eventsByMetric: { Saved: 1 } });
      // dedup keys survive a restart
      await client(second.url)('POST', '/api/events', {
        data: { type: 'event', attributes: { properties: {}, unique_id: 'x', metric: { data: { type: 'metric', attributes: { name: 'Saved' } } }, profile: { data: { type: 'profile', attributes: { email: 'saved@example.com' } } } } },
      });
      expect(second.snapshot()).toMatchObject({ events: 1, duplicateEventsIgnored: 1 });
      const found = await client(second.url)('GET', `/api/profiles?filter=${encodeURIComponent('equals(email,"saved@example.com")')}`);
      expect(found.json.data).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('extra route modules can be registered', async () => {
    const extra: RouteModule = [{ method: 'GET', path: '/api/accounts', endpoint: null, handler: (ctx) => ({ status: 200, body: { data: [{ type: 'account', id: ctx.account.key }] } }) }];
    const emu = await startEmulator({ port: 0, routes: [extra] });
    try {
      const r = await client(emu.url)('GET', '/api/accounts');
      expect(r.status).toBe(200);
      expect(r.json.data[0].type).toBe('account');
      expect((await client(emu.url, null)('GET', '/api/accounts')).status).toBe(401);
    } finally {
      await emu.close();
    }
  });
});

describe('klaviyo-etl emulator command', () => {
  it('parses flags into options', () => {
    expect(emulatorOptionsFromArgs({ port: 0, host: '127.0.0.1', limits: '2.5', apiKey: [KEY], processingRate: 100, faults: 'seed=3,rate500=0.1', state: 's.json', seed: 'seed.json' })).toEqual({
      port: 0,
      host: '127.0.0.1',
      limits: 2.5,
      apiKeys: [KEY],
      processingRate: 100,
      faults: { seed: 3, rate500: 0.1 },
      stateFile: 's.json',
      seedFile: 'seed.json',
    });
    expect(emulatorOptionsFromArgs({ port: 1, host: 'h', limits: 'off', faults: '{"rate503":0.2}' })).toMatchObject({ limits: 'off', faults: { rate503: 0.2 } });
    expect(() => emulatorOptionsFromArgs({ port: 0, host: 'h', limits: 'fast' })).toThrow(/--limits/);
    expect(emulatorOptionsFromArgs({ port: 0, host: 'h', limits: 'off', realism: 'authStatus=400,unknownListStatus=400,invalidProfile=request' })).toMatchObject({
      realism: { authStatus: 400, unknownListStatus: 400, invalidProfile: 'request' },
    });
    expect(emulatorOptionsFromArgs({ port: 0, host: 'h', limits: 'off', realism: '{"authStatus":400}' })).toMatchObject({ realism: { authStatus: 400 } });
    expect(() => emulatorOptionsFromArgs({ port: 0, host: 'h', limits: 'off', realism: 'authStatus=402' })).toThrow(/--realism.*`authStatus` to be 401 or 400/);
    expect(() => emulatorOptionsFromArgs({ port: 0, host: 'h', limits: 'off', realism: 'bogus=1' })).toThrow(/--realism.*realism option/);
  });

  it('prints the base URL as the first stdout line and serves until stopped', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => void out.push(t), stderr: () => {}, setExitCode: () => {} };
    const stop = new AbortController();
    const served = serveEmulator({ port: 0, limits: 'off' }, io, stop.signal);
    while (out.length === 0) await new Promise((r) => setTimeout(r, 10));
    const url = out[0]!.trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await client(url)('GET', '/api/profiles');
    expect(r.status).toBe(200);
    stop.abort();
    await served;
    await expect(fetch(`${url}/_emulator/state`)).rejects.toThrow();
  });
});
