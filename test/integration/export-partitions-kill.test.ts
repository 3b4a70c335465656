import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { run } from '../../src/runner/index.js';
import { cli, spawnCli } from '../helpers/cli.js';
import { flushesLogged } from '../helpers/export-progress.js';
import { prng } from '../helpers/random.js';
import { KEY } from '../unit/emulator/client.js';

/**
 * The built CLI exporting 3,000 generated events as 4 time ranges at once (pages of 50, 40 ms per answer) is
 * SIGKILLed at random moments between pages, several times, then run until it succeeds: the published file is
 * exactly the clean run's (each row once, same order), and the next incremental run exports nothing more.
 */

const EVENTS = 3000;
let tmp: string;
let emu: EmulatorHandle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-export-pkill-'));
  const seedFile = path.join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify({ generate: { profiles: 300, events: EVENTS, years: 1, seed: 5, end: '2026-01-01T00:00:00Z' } }));
  emu = await startEmulator({ port: 0, limits: 'off', seedFile, latency: 40 });
}, 30_000);

afterAll(async () => {
  await emu?.close();
  await rm(tmp, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ KLAVIYO_BASE_URL: emu.url, KLAVIYO_API_KEY: KEY });

async function pipeline(name: string): Promise<string> {
  const file = path.join(tmp, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
name: ${name}
source: {type: klaviyo, resource: events, include: [metric], pageSize: 50, concurrency: 4}
transform: {type: export, columns: {id: id, datetime: datetime, metric: metric.name, profile: profile.id}}
destination: {type: csv, path: out/${name}.csv}
`,
  );
  return file;
}

/** Data lines of a CSV export (no header), in file order. */
const lines = (text: string): string[] => text.split('\n').slice(1).filter(Boolean);

describe('partitioned events export killed with SIGKILL at random moments', () => {
  it('resumed until it succeeds: exactly the clean run’s rows, each once', async () => {
    // the clean run in-process (the CLI's start-up is what makes the killed runs slow)
    const clean = await run({ pipelineFile: await pipeline('clean'), env: env(), stateDir: path.join(tmp, 'state') });
    expect(clean.status).toBe('succeeded');
    const cleanRows = lines(await readFile(path.join(tmp, 'out', 'clean.csv'), 'utf8'));
    expect(cleanRows).toHaveLength(EVENTS);

    const file = await pipeline('killed');
    const out = path.join(tmp, 'out', 'killed.csv');
    const random = prng(21);
    let kills = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      const child = spawnCli(['run', file, '--state-dir', path.join(tmp, 'state')], { env: env() });
      child.stdout?.resume();
      child.stderr?.resume();
      let exited = false;
      const done = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
      // wait until rows reach the partial file (the export is under way), then a random moment more
      while (!exited && flushesLogged(out) < 1 + attempt) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, random.int(300)));
      if (exited) break;
      child.kill('SIGKILL');
      await done;
      kills++;
    }
    expect(kills).toBeGreaterThan(0);
    const final = await cli(['run', file, '--state-dir', path.join(tmp, 'state'), '--json'], { env: env() });
    expect(final.code, `${final.stderr}\n${readdirSync(path.join(tmp, 'out')).join('\n')}\n${await readFile(path.join(tmp, 'state', 'killed', 'checkpoint.json'), 'utf8').catch(() => '')}`.slice(0, 8000)).toBe(0);
    expect(JSON.parse(final.stdout).resumed).toBe(true);
    const rows = lines(await readFile(path.join(tmp, 'out', 'killed.csv'), 'utf8'));
    expect(rows).toHaveLength(EVENTS);
    expect(new Set(rows).size).toBe(EVENTS);
    // the same file, order included: parts are published joined in time order whatever range answered first
    expect(rows).toEqual(cleanRows);

    // the watermark of the resumed run covers everything: the next run exports no row
    const next = await run({ pipelineFile: file, env: env(), stateDir: path.join(tmp, 'state') });
    expect(next.status).toBe('succeeded');
    expect(next.rows.read).toBe(0);
  }, 120_000);
});
