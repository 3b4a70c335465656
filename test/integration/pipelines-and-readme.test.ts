import { readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipelineFile, loadPipelineText } from '../../src/config/load.js';
import { run } from '../../src/runner/index.js';
import { ROOT } from '../helpers/cli.js';

/** Every pipeline file under pipelines/, recursively. */
function pipelineFiles(dir = path.join(ROOT, 'pipelines')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name.startsWith('.') ? [] : pipelineFiles(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

/** The ```yaml blocks of the README. */
function readmeYamlBlocks(): string[] {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

// Pipelines read ${DATABASE_URL}; validation needs it set (it is not contacted here).
const env = { ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' };

let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-pipelines-'));
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const files = pipelineFiles();
const loaded = await Promise.all(files.map(async (file) => ({ file, ...(await loadPipelineFile(file, { env })) })));

describe('every pipeline in pipelines/', () => {
  const READS_AN_EXPORT = new Set(['roundtrip-events-import.yaml', 'roundtrip-profiles-import.yaml']);
  it('there are example pipelines', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });
  for (const { file, problems, config } of loaded) {
    const rel = path.relative(ROOT, file);
    it(`${rel} validates`, () => {
      expect(problems).toEqual([]);
    });
    // File sources dry-run here; PostgreSQL and S3 examples dry-run in pipeline-postgres / pipeline-s3 tests, and the
    // round-trip imports (which read what their export pipeline writes) run in roundtrip.test.ts.
    if ((config?.source.type === 'csv' || config?.source.type === 'ndjson') && !READS_AN_EXPORT.has(path.basename(file))) {
      it(`${rel} dry-runs with no rejects`, async () => {
        const report = await run({ pipelineFile: file, env, dryRun: true, stateDir });
        expect(report.status).toBe('succeeded');
        expect(report.rows.read).toBeGreaterThan(0);
        expect(report.requests.planned).toBeGreaterThan(0);
        expect(report.requests.total).toBe(0);
      });
    }
  }
});

describe('every YAML block in the README', () => {
  const blocks = readmeYamlBlocks();
  it('the README has YAML examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });
  blocks.forEach((block, i) => {
    it(`README block ${i + 1} validates and dry-runs from the repository root`, async () => {
      const { problems } = loadPipelineText(block, { file: `README.md#${i + 1}`, dir: ROOT, env });
      expect(problems).toEqual([]);
      const file = path.join(ROOT, `.readme-test-${process.pid}-${i}.yaml`);
      await writeFile(file, block);
      try {
        const report = await run({ pipelineFile: file, env, dryRun: true, stateDir });
        expect(report.status).toBe('succeeded');
        expect(report.rows.read).toBeGreaterThan(0);
      } finally {
        await rm(file, { force: true });
      }
    });
  });
});
