/**
 * The copy of Klaviyo's spec in test/spec/klaviyo-openapi/ is what scripts/extract-spec.js makes: extracting again
 * from the copy itself gives the same operations and components (every endpoint of the table is there, every
 * `$ref` resolves, nothing unused is kept), and the copy keeps its source, revision and licence.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ENDPOINTS } from '../../../src/klaviyo/endpoints.js';
import { readSpec, SPEC_PATH } from '../../helpers/openapi.js';

interface Copy {
  info: { version: string };
  'x-source': { repository: string; commit: string; blob: string; revision: string; license: string; notice: string };
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
}

const SCRIPT = fileURLToPath(new URL('../../../scripts/extract-spec.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'spec-copy-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the spec copy', () => {
  const copy = readSpec<Copy>();

  it('keeps its source, revision and MIT notice', () => {
    expect(copy['x-source']).toMatchObject({ repository: 'https://github.com/klaviyo/openapi', revision: '2026-07-15', license: 'MIT' });
    expect(copy['x-source'].commit).toMatch(/^[0-9a-f]{40}$/);
    expect(copy['x-source'].notice).toContain('Permission is hereby granted, free of charge');
    expect(copy.info.version).toBe('2026-07-15');
    expect(readFileSync(join(SPEC_PATH, '..', 'LICENSE'), 'utf8')).toBe(copy['x-source'].notice);
  });

  it('holds exactly the endpoint table operations', () => {
    const ops = Object.entries(copy.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => ['get', 'post', 'patch', 'put', 'delete'].includes(k))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(ops.sort()).toEqual(Object.keys(ENDPOINTS).sort());
  });

  it('extracting from the copy gives the copy (closed under $ref, nothing unused)', () => {
    execFileSync(process.execPath, [SCRIPT, SPEC_PATH, '--commit', copy['x-source'].commit, '--out', out], { stdio: 'pipe' });
    const again = JSON.parse(readFileSync(join(out, 'stable.json'), 'utf8')) as Copy;
    expect(again.paths).toEqual(copy.paths);
    expect(again.components).toEqual(copy.components);
    expect(again['x-source'].revision).toBe(copy['x-source'].revision);
  });
});
