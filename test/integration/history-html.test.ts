import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { cli } from '../helpers/cli.js';
import { countColor, decodePng, distinctColors } from '../helpers/png.js';

/**
 * Issue 14: `history --html` writes one self-contained page (no script, no network) whose charts are rendered by
 * headless Chromium: the screenshot's chart areas are not blank. Chromium is Debian's `chromium` (.ci/run installs
 * it); the test fails, never skips, without it.
 */

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const KEY = 'pk_history_html_000000000000000000';
let tmp: string;
let emulator: EmulatorHandle;
let throttling: EmulatorHandle;

function chromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${path.join(tmp, 'chromium')}`, ...args], { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${CHROMIUM} failed: ${error.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-history-html-'));
  emulator = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000 });
  throttling = await startEmulator({ port: 0, limits: 'off', processingRate: 100_000, faults: { rate429: 0.4, seed: 7 } });
});

afterAll(async () => {
  await emulator?.close();
  await throttling?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('history --html (rendered in headless Chromium)', () => {
  it('draws rows, rejects, duration and 429s per run and the last run’s rejects by code', async () => {
    expect(existsSync(CHROMIUM), `headless Chromium is needed at ${CHROMIUM} (Debian: apt-get install -y chromium; .ci/run installs it)`).toBe(true);
    const yaml = path.join(tmp, 'charted.yaml');
    const runs = [
      { good: 12, bad: 2, base: () => emulator.url },
      { good: 20, bad: 0, base: () => throttling.url },
      { good: 8, bad: 5, base: () => emulator.url },
    ];
    for (const [i, r] of runs.entries()) {
      const lines = ['email'];
      for (let j = 0; j < r.good; j++) lines.push(`run${i}-${j}@example.com`);
      for (let j = 0; j < r.bad; j++) lines.push(`bad-${i}-${j}`);
      await writeFile(path.join(tmp, `people${i}.csv`), lines.join('\n') + '\n');
      await writeFile(yaml, `version: 1\nname: charted\nsource: { type: csv, path: people${i}.csv }\ntransform:\n  type: profile\n  profile:\n    email: { column: email, type: email }\ndestination:\n  type: klaviyo\n  batch: { profiles: 3 }\n`);
      const res = await cli(['run', yaml, '--state-dir', path.join(tmp, 'state')], { env: { KLAVIYO_BASE_URL: r.base(), KLAVIYO_API_KEY: KEY } });
      expect(res.code, res.stderr).toBe(r.bad > 0 ? 3 : 0);
    }
    const page = path.join(tmp, 'history.html');
    const res = await cli(['history', yaml, '--state-dir', path.join(tmp, 'state'), '--html', page]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('3 run(s) of charted');
    const html = await readFile(page, 'utf8');
    // self-contained: nothing to fetch, nothing to run
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(|https?:\/\//i);

    const dom = (await chromium(['--dump-dom', pathToFileURL(page).href])).stdout;
    for (const id of ['chart-rows', 'chart-rejects', 'chart-duration', 'chart-throttled', 'chart-codes']) expect(dom).toContain(`id="${id}"`);

    const shot = path.join(tmp, 'history.png');
    await chromium([`--screenshot=${shot}`, '--window-size=820,1500', pathToFileURL(page).href]);
    const png = decodePng(await readFile(shot));
    expect(png.width).toBe(820);
    // the chart area (below the title) is not blank, and each measure's bars are drawn in its colour
    expect(distinctColors(png, { x: 0, y: 80, w: png.width, h: 1000 })).toBeGreaterThan(20);
    expect(countColor(png, '#2f6fde')).toBeGreaterThan(300); // rows loaded
    expect(countColor(png, '#d9822b')).toBeGreaterThan(300); // rejected rows (rows chart, rejects chart, codes chart)
    expect(countColor(png, '#6b5bd2')).toBeGreaterThan(300); // duration
    expect(countColor(png, '#c0392b')).toBeGreaterThan(50); // 429s
    // the last run's rejects by code: one bar, labelled with its code and count
    expect(dom).toMatch(/<figure id="chart-codes">.*INVALID_EMAIL.*>5<\/text>/s);
  }, 300_000);
});
