import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { spawnCli } from '../helpers/cli.js';
import { flushesLogged } from '../helpers/export-progress.js';

/**
 * The built CLI exporting a 420-member list is SIGKILLed right after a chunk reached the partial file (several
 * times), then run again until it succeeds: the published file holds every member exactly once.
 * Page requests are slowed by the emulator so each kill lands while a later page is in flight.
 */

const MEMBERS = 420;
let tmp: string;
let emu: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-kill-'));
  const emails = Array.from({ length: MEMBERS }, (_, i) => `k${i}@example.com`);
  const seedFile = path.join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify({ lists: [{ id: 'Kill01', name: 'Kill list', members: emails }] }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, faults: { seed: 1, slowRate: 1, slowMs: 150 } });
}, 30_000);

afterAll(async () => {
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

function runCli(file: string): { exited: Promise<number | null>; kill: () => void } {
  const child = spawnCli(['run', file, '--state-dir', path.join(tmp, 'state')], {
    env: { KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: 'pk_export_kill_0000000000' },
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { exited, kill: () => child.kill('SIGKILL') };
}


describe('export killed with SIGKILL', () => {
  it('is resumed by running it again and publishes each member exactly once', async () => {
    const file = path.join(tmp, 'export.yaml');
    await writeFile(
      file,
      `version: 1
name: kill-export
source: {type: klaviyo, list: Kill01, pageSize: 50}
transform: {type: export, columns: {id: id, email: email}}
destination: {type: csv, path: out/members.csv}
`,
    );
    const out = path.join(tmp, 'out', 'members.csv');
    let kills = 0;
    // kill after the 1st, 2nd and 3rd chunk of 100 rows (each chunk needs two 50-member pages)
    for (const target of [1, 2, 3]) {
      const { exited, kill } = runCli(file);
      let done: number | null | undefined;
      void exited.then((c) => (done = c));
      while (done === undefined && flushesLogged(out) < target) await new Promise((r) => setTimeout(r, 5));
      if (done !== undefined) break; // finished before the kill point (a very slow machine): nothing to kill
      kill();
      await exited;
      kills++;
    }
    expect(kills).toBeGreaterThan(0);
    const final = runCli(file);
    expect(await final.exited).toBe(0);
    const rows = parse(await readFile(out, 'utf8'), { columns: true }) as { id: string; email: string }[];
    expect(rows).toHaveLength(MEMBERS);
    expect(new Set(rows.map((r) => r.email)).size).toBe(MEMBERS);
    expect(rows.map((r) => r.email).sort()).toEqual(Array.from({ length: MEMBERS }, (_, i) => `k${i}@example.com`).sort());
  }, 120_000);
});
