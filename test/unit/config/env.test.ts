import { describe, expect, it } from 'vitest';
import { interpolate } from '../../../src/config/env.js';
import { loadPipelineText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/problem.js';

const SECRET = 'pk_live_SeCrEt0123456789';

const PIPELINE = `version: 1
name: pg-profiles
source:
  type: postgres
  url: \${DATABASE_URL}
  table: \${PG_TABLE:-customers}
transform:
  type: profile
  profile:
    email: email
    properties:
      Note: {value: "price is $\${amount}"}
destination:
  type: klaviyo
  baseUrl: \${KLAVIYO_BASE_URL:-https://a.klaviyo.com}
`;

describe('interpolate', () => {
  it('replaces ${VAR} and keeps the surrounding text', () => {
    expect(interpolate('postgres://${USER}@${HOST}/db', { USER: 'u', HOST: 'h' })).toEqual({
      value: 'postgres://u@h/db',
      substituted: true,
      issues: [],
    });
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty', () => {
    expect(interpolate('${A:-x}', {}).value).toBe('x');
    expect(interpolate('${A:-x}', { A: '' }).value).toBe('x');
    expect(interpolate('${A:-x}', { A: 'y' }).value).toBe('y');
    expect(interpolate('${A:-}', {}).value).toBe('');
  });

  it('reports a missing variable without default by name', () => {
    expect(interpolate('${NOPE}', {}).issues).toEqual([expect.objectContaining({ kind: 'missing', name: 'NOPE' })]);
  });

  it('$${ escapes a literal ${', () => {
    expect(interpolate('$${HOME} and ${X}', { X: '1', HOME: '/root' })).toMatchObject({ value: '${HOME} and 1', issues: [] });
  });

  it('leaves strings without ${ alone, including lone $ and {{templates}}', () => {
    expect(interpolate('$5 {{Order ID}}', {})).toEqual({ value: '$5 {{Order ID}}', substituted: false, issues: [] });
  });

  it('reports malformed references', () => {
    expect(interpolate('${1BAD}', {}).issues[0]?.kind).toBe('malformed');
    expect(interpolate('abc ${OPEN', {}).issues[0]?.kind).toBe('malformed');
  });
});

describe('${VAR} interpolation in pipeline files', () => {
  it('substitutes values, defaults and escapes into the config', () => {
    const result = loadPipelineText(PIPELINE, { env: { DATABASE_URL: 'postgres://localhost/test' } });
    expect(result.problems).toEqual([]);
    expect(result.config?.source).toMatchObject({ url: 'postgres://localhost/test', table: 'customers' });
    expect(result.config?.destination).toMatchObject({ baseUrl: 'https://a.klaviyo.com' });
    expect(result.config?.transform).toMatchObject({ profile: { properties: { Note: { value: 'price is ${amount}' } } } });
  });

  it('does not interpolate keys', () => {
    const text = PIPELINE.replace('      Note:', '      ${KEY}:');
    const result = loadPipelineText(text, { env: { DATABASE_URL: 'x', KEY: 'k' } });
    expect(result.config?.transform).toMatchObject({ profile: { properties: { '${KEY}': { value: 'price is ${amount}' } } } });
  });

  it('reports a missing variable at its scalar as CONFIG_ENV_MISSING, once', () => {
    const result = loadPipelineText(PIPELINE, { file: 'p.yaml', env: {} });
    expect(result.problems.map(formatProblem)).toEqual([
      'p.yaml:5:8  CONFIG_ENV_MISSING  source.url: environment variable DATABASE_URL is not set (use ${DATABASE_URL:-default} for a default)',
    ]);
    expect(result.config).toBeUndefined();
  });

  it('never echoes the value of a variable in a problem', () => {
    // the secret lands in a field that fails validation (name pattern) and in a zone that fails a rule
    const text = PIPELINE.replace('name: pg-profiles', 'name: ${NAME}').replace(
      '      Note: {value: "price is $${amount}"}',
      '      Seen: {column: s, type: datetime, format: iso, zone: "${ZONE}"}',
    );
    const result = loadPipelineText(text, { file: 'p.yaml', env: { DATABASE_URL: SECRET, NAME: SECRET, ZONE: SECRET } });
    expect(result.problems.map((p) => p.code)).toEqual(['CONFIG_INVALID', 'CONFIG_RULE']);
    for (const problem of result.problems) expect(formatProblem(problem)).not.toContain(SECRET);
    expect(result.problems[1]?.message).toContain('value from the environment');
  });

  it('a missing variable is not reported again by the schema or a rule', () => {
    const text = PIPELINE.replace('      Note: {value: "price is $${amount}"}', '      Seen: {column: s, type: datetime, format: iso, zone: "${TZ}"}');
    const result = loadPipelineText(text, { file: 'p.yaml', env: { DATABASE_URL: 'x' } });
    expect(result.problems.map((p) => `${p.code} ${p.path}`)).toEqual(['CONFIG_ENV_MISSING transform.profile.properties.Seen.zone']);
  });

  it('reports a malformed reference as CONFIG_INVALID', () => {
    const result = loadPipelineText(PIPELINE.replace('${DATABASE_URL}', '${DATABASE URL}'), { file: 'p.yaml', env: {} });
    expect(result.problems.map((p) => `${p.code}@${p.line}:${p.column}`)).toEqual(['CONFIG_INVALID@5:8']);
  });
});
