/**
 * Progress reporting while a run is paced: the CSV reader's `progress()` (bytes / total bytes), the runner's
 * periodic `progress` log line with percent and ETA (what a nightly job's logs show when stderr is not a TTY), and
 * the TTY line's ETA.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.js';
import { estimate, formatDuration } from '../../src/runner/progress.js';
import { jsonLogger, silentLogger } from '../../src/core/logger.js';
import { newStats } from '../../src/core/stats.js';
import { getExtractor } from '../../src/extract/registry.js';
import { run } from '../../src/runner/index.js';

let dir: string;
let csvFile: string;
const ROWS = 300;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pacing-progress-'));
  csvFile = path.join(dir, 'signups.csv');
  const lines = ['email,tier'];
  for (let i = 0; i < ROWS; i++) lines.push(`user${i}@example.com,gold`);
  await writeFile(csvFile, lines.join('\n') + '\n');
  await writeFile(
    path.join(dir, 'signups.yaml'),
    `version: 1
name: signups
source:
  type: csv
  path: signups.csv
transform:
  type: event
  metric: Signed Up
  unique_id: { template: "signup-{{email}}" }
  profile:
    email: { column: email, type: email }
  properties:
    tier: tier
destination:
  type: klaviyo
  batch: { events: 10 }
  concurrency: 1
`,
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('progress', () => {
  it('the CSV reader reports bytes read out of the total size', async () => {
    const reader = getExtractor('csv').create(
      { type: 'csv', path: csvFile, header: true, delimiter: ',', quote: '"', encoding: 'utf8', relaxColumnCount: false } as never,
      { baseDir: dir, env: {}, logger: silentLogger },
    );
    const size = (await stat(csvFile)).size;
    let n = 0;
    for await (const _ of reader.records()) n++;
    expect(n).toBe(ROWS);
    expect(reader.progress?.()).toEqual({ bytes: size, totalBytes: size });
  });

  it('a paced run logs progress lines with percent and ETA, and passes the source progress to onProgress', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = jsonLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const seen: unknown[] = [];
    // limits × 0.5: M tier → 5 requests/s; 30 requests of 10 events take several seconds, so several lines appear.
    const report = await run({
      pipelineFile: path.join(dir, 'signups.yaml'),
      emulator: { limits: 0.5 },
      logger,
      progressLogIntervalMs: 200,
      onProgress: (_stats, source) => seen.push(source),
    });
    expect(report.status).toBe('succeeded');
    expect(report.rows.loaded).toBe(ROWS);
    const progress = lines.filter((l) => l.msg === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const p of progress) {
      expect(p).toMatchObject({ level: 'info', rows: expect.any(Number), requests: expect.any(Number), throttled: 0, percent: expect.any(Number) });
      expect(p.percent as number).toBeLessThanOrEqual(100);
    }
    const rows = progress.map((p) => p.rows as number);
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    expect(progress.some((p) => typeof p.etaSeconds === 'number')).toBe(true);
    const size = (await stat(csvFile)).size;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatchObject({ totalBytes: size });
  });

  it('the TTY line shows percent and ETA when the size is known, and omits them when it is not', () => {
    let out = '';
    let now = 0;
    const stream = { write: (s: string) => ((out = s), true) } as unknown as NodeJS.WriteStream;
    const progress = createProgress(stream, () => now);
    const stats = newStats();
    stats.rows.read = 2500;
    stats.requests.total = 3;
    now = 10_000;
    progress.update(stats, { bytes: 250, totalBytes: 1000 });
    expect(out).toContain('rows 2,500 (250/s)');
    expect(out).toContain('25.0%, ETA 30s');
    now = 20_000;
    progress.update(stats, { bytes: 500 });
    expect(out).not.toContain('ETA');
    expect(estimate({ bytes: 0, totalBytes: 10 }, 1000)).toEqual({ percent: 0 });
    expect(formatDuration(185_000)).toBe('3m05s');
    expect(formatDuration(3_720_000)).toBe('1h02m');
  });
});
