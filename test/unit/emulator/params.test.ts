/**
 * The emulator's query-parameter table (src/emulator/params.ts) against the spec: every operation's fields[…],
 * additional-fields[…], include, sort and page[size] enums/bounds, and the filter fields/operators listed in each
 * `filter` parameter's description (minus the documented UNSUPPORTED_FILTERS / UNSUPPORTED_SORTS).
 */
import { describe, expect, it } from 'vitest';
import { ENDPOINTS } from '../../../src/klaviyo/endpoints.js';
import { checkQuery, QUERY_RULES, UNSUPPORTED_FILTERS, UNSUPPORTED_SORTS } from '../../../src/emulator/params.js';
import { readSpec } from '../../helpers/openapi.js';

interface Param {
  name: string;
  in: string;
  description?: string;
  schema?: { enum?: string[]; items?: { enum?: string[] }; minimum?: number; maximum?: number; default?: number };
  $ref?: string;
}
type Spec = { paths: Record<string, Record<string, { parameters?: Param[] }>> } & Record<string, unknown>;
const spec = readSpec<Spec>();

function params(key: string): Param[] {
  const [method, path] = key.split(' ');
  const op = spec.paths[path!]![method!.toLowerCase()]!;
  return (op.parameters ?? []).map((p) =>
    p.$ref ? (p.$ref.split('/').slice(1).reduce<unknown>((o, s) => (o as Record<string, unknown>)[s], spec) as Param) : p,
  );
}

const sorted = (a: readonly string[] | undefined) => [...(a ?? [])].sort();

describe('query rules match the spec', () => {
  for (const key of Object.keys(ENDPOINTS) as (keyof typeof ENDPOINTS)[]) {
    it(key, () => {
      const rules = QUERY_RULES[key];
      const ps = params(key).filter((p) => p.in === 'query');
      const bracket = (prefix: string) =>
        Object.fromEntries(ps.filter((p) => p.name.startsWith(`${prefix}[`)).map((p) => [p.name.slice(prefix.length + 1, -1), sorted(p.schema?.items?.enum)]));
      const norm = (t: Readonly<Record<string, readonly string[]>> | undefined) => Object.fromEntries(Object.entries(t ?? {}).map(([k, v]) => [k, sorted(v)]));
      expect(norm(rules.fields)).toEqual(bracket('fields'));
      expect(norm(rules.additional)).toEqual(bracket('additional-fields'));
      const include = ps.find((p) => p.name === 'include');
      expect(sorted(rules.include)).toEqual(sorted(include?.schema?.items?.enum));
      const sort = ps.find((p) => p.name === 'sort');
      expect(sorted(rules.sort)).toEqual(sorted(sort?.schema?.enum?.filter((v) => !UNSUPPORTED_SORTS[key]?.includes(v))));
      const size = ps.find((p) => p.name === 'page[size]');
      expect(rules.page).toEqual(size ? { def: size.schema!.default, max: size.schema!.maximum } : undefined);
      if (size) expect(size.schema!.minimum).toBe(1);
      const filter = ps.find((p) => p.name === 'filter');
      const expected: Record<string, string[]> = {};
      for (const m of (filter?.description ?? '').matchAll(/`([^`]+)`: ((?:`[^`]+`(?:, )?)+)/g)) {
        if (UNSUPPORTED_FILTERS[key]?.includes(m[1]!)) continue;
        expected[m[1]!] = sorted([...m[2]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!));
      }
      expect(filter === undefined ? undefined : norm(rules.filter)).toEqual(filter === undefined ? undefined : expected);
    });
  }
});

describe('checkQuery', () => {
  const rules = QUERY_RULES['GET /api/profiles'];
  const bad = (qs: string) => {
    try {
      checkQuery(rules, new URLSearchParams(qs));
      return null;
    } catch (e) {
      return (e as { errors: { source: unknown }[] }).errors[0]!.source;
    }
  };
  it('accepts spec values', () => {
    expect(bad('fields[profile]=email,location.city,subscriptions.email.marketing.consent&additional-fields[profile]=subscriptions&sort=-updated&page[size]=100&include=push-tokens')).toBeNull();
  });
  it('rejects unknown values with source.parameter', () => {
    expect(bad('fields[profile]=email,bogus')).toEqual({ parameter: 'fields[profile]' });
    expect(bad('fields[event]=datetime')).toEqual({ parameter: 'fields[event]' });
    expect(bad('additional-fields[profile]=profile_count')).toEqual({ parameter: 'additional-fields[profile]' });
    expect(bad('include=lists')).toEqual({ parameter: 'include' });
    expect(bad('sort=first_name')).toEqual({ parameter: 'sort' });
    expect(bad('page[size]=0')).toEqual({ parameter: 'page[size]' });
    expect(bad('page[size]=101')).toEqual({ parameter: 'page[size]' });
    expect(bad('page[size]=2.5')).toEqual({ parameter: 'page[size]' });
  });
});
