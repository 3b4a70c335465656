import { describe, expect, it } from 'vitest';
import { ENDPOINT_SCOPES, scopesOf } from '../../../src/klaviyo/scopes.js';
import { readSpec } from '../../helpers/openapi.js';

const spec = readSpec<{ paths: Record<string, Record<string, { 'x-klaviyo-scopes'?: string[] }>> }>();

describe('endpoint scope table', () => {
  for (const [key, scopes] of Object.entries(ENDPOINT_SCOPES)) {
    it(`${key} needs the spec's x-klaviyo-scopes`, () => {
      const [method, path] = key.split(' ');
      expect([...scopes!].sort()).toEqual([...(spec.paths[path!]![method!.toLowerCase()]!['x-klaviyo-scopes'] ?? [])].sort());
    });
  }

  it('an endpoint not in the table gets the scope its path suggests', () => {
    expect(scopesOf('GET /api/campaigns')).toEqual(['campaigns:read']);
  });
});
