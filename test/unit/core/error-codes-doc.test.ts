import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/core/errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('docs/errors.md', () => {
  it.each(ERROR_CODES)('documents %s', (code) => {
    expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });
  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !(ERROR_CODES as readonly string[]).includes(c!))).toEqual([]);
  });
});
