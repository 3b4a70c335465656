import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, WARNING_CODES } from '../../../src/core/errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('docs/errors.md', () => {
  it.each(ERROR_CODES)('documents %s', (code) => {
    expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });
  it.each(WARNING_CODES)('documents the warning %s', (code) => {
    expect(doc.slice(doc.indexOf('## Warnings'))).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });
  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    const known: readonly string[] = [...ERROR_CODES, ...WARNING_CODES];
    expect(documented.filter((c) => !known.includes(c!))).toEqual([]);
  });
});
