import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPipelineText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/problem.js';
import { PIPELINE_RULES } from '../../../src/config/rules.js';

const DOC = readFileSync(new URL('../../../docs/pipeline-reference.md', import.meta.url), 'utf8');
const PIPELINES = [...DOC.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((block) => block.startsWith('version: 1'));

describe('docs/pipeline-reference.md', () => {
  it('has complete pipeline examples', () => {
    expect(PIPELINES.length).toBeGreaterThanOrEqual(6);
  });

  for (const [i, text] of PIPELINES.entries()) {
    const name = /^name: (.+)$/m.exec(text)?.[1] ?? String(i);
    it(`example "${name}" is valid`, () => {
      const result = loadPipelineText(text, { file: `example-${name}.yaml`, env: { DATABASE_URL: 'postgres://localhost/test' } });
      expect(result.problems.map(formatProblem)).toEqual([]);
      expect(result.config?.name).toBe(name);
    });
  }

  it('documents every rule', () => {
    for (const rule of PIPELINE_RULES) expect(DOC).toContain(`\`${rule.name}\``);
  });
});
