import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli, spawnCli } from '../helpers/cli.js';
import { client, profileBody } from '../unit/emulator/client.js';

/**
 * Issue 12: a resumed list export asks Klaviyo for the members joined at its resume instant with a sparse fieldset
 * (`fields[profile]=…`), and `joined_group_at` is a sparse field of its own, which Klaviyo leaves out unless the
 * fieldset names it. The emulator honours that; the export asks for it. Through the CLI: an export SIGKILLed after
 * its first chunk, resumed, publishes every member once, and the next incremental run exports only the members
 * who joined since, at that same instant (the resume had to learn which members of the instant it had exported).
 */

const KEY = 'pk_export_resume_sparse_000000000';
const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const MEMBERS = 250;
let tmp: string;
let emu: EmulatorHandle;
let onRequest: (() => void) | undefined;
let call: ReturnType<typeof client>;
let list: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-sparse-'));
  // every member joins at the same instant: the resume position's joined_group_at is the last one of the list
  emu = await startEmulator({
    port: 0,
    limits: 1000, // rate limited, so every /api request reads the clock (the hook below)
    now: () => {
      onRequest?.();
      return T0;
    },
  });
  call = client(emu.url, KEY);
  list = (await call('POST', '/api/lists', { data: { type: 'list', attributes: { name: 'Sparse' } } })).json.data.id as string;
  await addMembers(0, MEMBERS);
}, 60_000);

afterAll(async () => {
  onRequest = undefined;
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function addMembers(from: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) {
    const r = await call('POST', '/api/profiles', profileBody({ email: `s${i}@example.com` }));
    expect(r.status).toBe(201);
    ids.push(r.json.data.id as string);
  }
  const r = await call('POST', `/api/lists/${list}/relationships/profiles`, { data: ids.map((id) => ({ type: 'profile', id })) });
  expect(r.status).toBe(204);
  return ids;
}

const rowsOf = (file: string): Record<string, string>[] => parse(readFileSync(file, 'utf8'), { columns: true }) as Record<string, string>[];

describe('emulator: joined_group_at under a sparse fieldset', () => {
  it('is left out unless fields[profile] names it', async () => {
    const base = `/api/lists/${list}/profiles?page[size]=2`;
    const without = await call('GET', `${base}&fields[profile]=email`);
    expect(without.status).toBe(200);
    expect(Object.keys(without.json.data[0].attributes)).toEqual(['email']);
    const named = await call('GET', `${base}&fields[profile]=email,joined_group_at`);
    expect(named.status).toBe(200);
    expect(named.json.data[0].attributes).toEqual({ email: 's0@example.com', joined_group_at: expect.stringMatching(/^2026-06-01T12:00:00/) });
    const all = await call('GET', base);
    expect(all.json.data[0].attributes.joined_group_at).toMatch(/^2026-06-01T12:00:00/);
  });
});

describe('a list export SIGKILLed and resumed (CLI)', () => {
  it('publishes every member once; the next run exports only the members who joined since at the same instant', async () => {
    const dir = await mkdtemp(path.join(tmp, 'run-'));
    const file = path.join(dir, 'export.yaml');
    await writeFile(
      file,
      `version: 1
name: sparse-export
source: {type: klaviyo, list: ${list}, pageSize: 10}
transform: {type: export, columns: {id: id, email: email, joined_group_at: joined_group_at}}
destination: {type: csv, path: out/members.csv}
`,
    );
    const out = path.join(dir, 'out', 'members.csv');
    const stateDir = path.join(dir, 'state');
    const env = { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY };
    const child = spawnCli(['run', file, '--state-dir', stateDir], { env });
    child.stdout?.resume();
    child.stderr?.resume();
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // killed once the checkpoint has passed the first chunk (its rows durably in the partial file), while a later
    // page is asked for
    onRequest = () => {
      try {
        const position = (JSON.parse(readFileSync(path.join(stateDir, 'sparse-export', 'checkpoint.json'), 'utf8')) as { position?: unknown }).position;
        if (position) child.kill('SIGKILL');
      } catch {
        // no checkpoint yet
      }
    };
    try {
      expect(await exited).toBe('SIGKILL');
    } finally {
      onRequest = undefined;
    }
    const cp = JSON.parse(await readFile(path.join(stateDir, 'sparse-export', 'checkpoint.json'), 'utf8'));
    expect(cp.position.seq).toBeGreaterThanOrEqual(99);
    expect(cp.position.seq).toBeLessThan(MEMBERS - 1);

    const second = await cli(['run', file, '--state-dir', stateDir, '--json'], { env });
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout);
    expect(report.resumed).toBe(true);
    expect(report.status).toBe('succeeded');
    const rows = rowsOf(out);
    expect(rows).toHaveLength(MEMBERS);
    expect(new Set(rows.map((r) => r.email))).toEqual(new Set(Array.from({ length: MEMBERS }, (_, i) => `s${i}@example.com`)));

    // members joining at the same instant: the next run exports them and none of the earlier ones
    const tie = await addMembers(MEMBERS, 4);
    await rm(out);
    const third = await cli(['run', file, '--state-dir', stateDir, '--json'], { env });
    expect(third.code).toBe(0);
    expect(rowsOf(out).map((r) => r.id).sort()).toEqual([...tie].sort());
  }, 60_000);
});
