import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtlError } from '../../../src/core/errors.js';
import {
  loadPipelineFile,
  loadPipelineFileOrThrow,
  loadPipelineText,
  resolvePipelinePath,
  validatePipelineFiles,
} from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/problem.js';

const VALID_PROFILE = `version: 1
name: customers
source:
  type: csv
  path: customers.csv
transform:
  type: profile
  profile:
    email: Email
    phone_number: {column: Phone, type: phone, region: US}
    properties:
      Signed up: {column: Created, type: datetime, format: "yyyy-MM-dd HH:mm", zone: America/New_York}
destination:
  type: klaviyo
`;

describe('loadPipelineText: a valid pipeline', () => {
  it('returns the config with defaults and no problems', () => {
    const result = loadPipelineText(VALID_PROFILE, { file: 'p.yaml', env: {} });
    expect(result.problems).toEqual([]);
    expect(result.config?.name).toBe('customers');
    expect(result.config?.source).toMatchObject({ type: 'csv', delimiter: ',', header: true });
    expect(result.config?.destination).toMatchObject({ type: 'klaviyo', apiKeyEnv: 'KLAVIYO_API_KEY', batch: { events: 1000 } });
    expect(result.config?.checkpoint.store).toBe('local');
  });

  it('resolves relative paths against the pipeline file directory', () => {
    const result = loadPipelineText(VALID_PROFILE, { file: '/data/pipelines/p.yaml', env: {} });
    expect(result.source.dir).toBe('/data/pipelines');
    expect(resolvePipelinePath(result.source, 'customers.csv')).toBe('/data/pipelines/customers.csv');
    expect(resolvePipelinePath(result.source, '/abs/x.csv')).toBe('/abs/x.csv');
  });
});

// Each case: a broken pipeline and every problem it must report, as `CODE@line:col` in line order.
const CASES: Array<{ name: string; text: string; expected: string[]; paths?: string[] }> = [
  {
    name: 'YAML syntax error (bad indentation)',
    text: 'version: 1\nname: x\nsource:\n  type: csv\n path: a.csv\n',
    expected: ['CONFIG_YAML_SYNTAX@5:1'],
  },
  {
    name: 'YAML syntax error (unclosed flow mapping) with its line',
    text: 'version: 1\nname: x\nsource: {type: csv, path: a.csv\n',
    expected: ['CONFIG_YAML_SYNTAX@4:1'],
  },
  {
    name: 'duplicate key',
    text: VALID_PROFILE.replace('name: customers\n', 'name: customers\nname: again\n'),
    expected: ['CONFIG_YAML_SYNTAX@3:1'],
  },
  {
    name: 'two YAML documents in one file',
    text: VALID_PROFILE + '---\n' + VALID_PROFILE,
    expected: ['CONFIG_YAML_SYNTAX@15:1'],
  },
  {
    name: 'empty file',
    text: '',
    expected: ['CONFIG_INVALID@1:1'],
  },
  {
    name: 'unknown keys point at the key itself, at every depth',
    text: VALID_PROFILE.replace('  path: customers.csv\n', '  path: customers.csv\n  delimitr: ";"\n').replace(
      'destination:\n',
      'destinaton: {}\ndestination:\n',
    ),
    expected: ['CONFIG_UNKNOWN_KEY@6:3', 'CONFIG_UNKNOWN_KEY@14:1'],
    paths: ['source.delimitr', 'destinaton'],
  },
  {
    name: 'unknown key inside a field mapping',
    text: VALID_PROFILE.replace('{column: Phone, type: phone, region: US}', '{column: Phone, type: phone, regoin: US}'),
    expected: ['CONFIG_UNKNOWN_KEY@10:48'],
    paths: ['transform.profile.phone_number.regoin'],
  },
  {
    name: 'wrong types, wrong enum value, missing required keys: all reported',
    text: `version: 2
name: Orders
source:
  type: csvx
  path: a.csv
transform:
  type: profile
  profile:
    email: 42
destination:
  type: klaviyo
  concurrency: 0
`,
    expected: ['CONFIG_INVALID@1:10', 'CONFIG_INVALID@2:7', 'CONFIG_INVALID@4:9', 'CONFIG_INVALID@9:12', 'CONFIG_INVALID@12:16'],
    paths: ['version', 'name', 'source.type', 'transform.profile.email', 'destination.concurrency'],
  },
  {
    name: 'missing required section points at the document start',
    text: 'version: 1\nname: x\nsource: {type: csv, path: a.csv}\ntransform: {type: profile, profile: {email: E}}\n',
    expected: ['CONFIG_INVALID@1:1'],
    paths: ['destination'],
  },
  {
    name: 'missing required key inside a section points at the section key',
    text: VALID_PROFILE.replace('  path: customers.csv\n', ''),
    expected: ['CONFIG_INVALID@3:1'],
    paths: ['source.path'],
  },
  {
    name: 'event without unique_id',
    text: `version: 1
name: orders
source: {type: csv, path: orders.csv}
transform:
  type: event
  metric: Placed Order
  profile: {email: Email}
destination: {type: klaviyo}
`,
    expected: ['CONFIG_RULE@4:1'],
    paths: ['transform.unique_id'],
  },
  {
    name: 'profile mapping without an identifier',
    text: VALID_PROFILE.replace('    email: Email\n    phone_number: {column: Phone, type: phone, region: US}\n', '    first_name: First\n'),
    expected: ['CONFIG_RULE@8:3'],
    paths: ['transform.profile'],
  },
  {
    name: 'field mappings: none / two of column, template, value',
    text: VALID_PROFILE.replace('    email: Email\n', '    email: {type: email}\n    external_id: {column: Id, template: "{{Id}}"}\n'),
    expected: ['CONFIG_RULE@9:5', 'CONFIG_RULE@10:5'],
  },
  {
    name: 'date without format; token datetime without offset or zone; unknown zone; format on a string field (iso, offset and unix formats need no zone)',
    text: VALID_PROFILE.replace(
      '      Signed up: {column: Created, type: datetime, format: "yyyy-MM-dd HH:mm", zone: America/New_York}\n',
      [
        '      Birthday: {column: B, type: date}',
        '      Seen: {column: S, type: datetime, format: "MM/dd/yyyy HH:mm"}',
        '      Iso: {column: I, type: datetime, format: iso}',
        '      Zoned: {column: Z, type: datetime, format: iso, zone: Europe/Atlantis}',
        '      Offset: {column: O, type: datetime, format: "yyyy-MM-dd HH:mm ZZ"}',
        '      Epoch: {column: E, type: datetime, format: unix}',
        '      Name: {column: N, format: iso}',
        '',
      ].join('\n'),
    ),
    expected: ['CONFIG_RULE@12:35', 'CONFIG_RULE@13:49', 'CONFIG_RULE@15:61', 'CONFIG_RULE@18:33'],
    paths: [
      'transform.profile.properties.Birthday.type',
      'transform.profile.properties.Seen.format',
      'transform.profile.properties.Zoned.zone',
      'transform.profile.properties.Name.format',
    ],
  },
  {
    name: 'unknown phone region',
    text: VALID_PROFILE.replace('region: US', 'region: QQ'),
    expected: ['CONFIG_RULE@10:56'],
  },
  {
    name: 'postgres: table and query; lookback without cursor',
    text: `version: 1
name: pg
source:
  type: postgres
  url: postgres://localhost/test
  table: customers
  query: select * from customers
  lookback: 2h
transform: {type: profile, profile: {email: email}}
destination: {type: klaviyo}
`,
    expected: ['CONFIG_RULE@7:10', 'CONFIG_RULE@8:13'],
  },
  {
    name: 'postgres destination: its key is not an output column',
    text: `version: 1
name: pgdest
source: {type: klaviyo, list: L1}
transform: {type: export, columns: {email: email, profile_id: id}}
destination:
  type: postgres
  url: postgres://localhost/test
  table: members
  key: klaviyo_id
`,
    expected: ['CONFIG_RULE@9:8'],
    paths: ['destination.key'],
  },
  {
    name: 'postgres: neither table nor query; columns without table',
    text: `version: 1
name: pg
source:
  type: postgres
  url: postgres://localhost/test
  columns: [a, b]
transform: {type: profile, profile: {email: email}}
destination: {type: klaviyo}
`,
    expected: ['CONFIG_RULE@4:9', 'CONFIG_RULE@6:3'],
  },
  {
    name: 'klaviyo source: no list/segment, wrong transform, wrong destination',
    text: `version: 1
name: export
source: {type: klaviyo}
transform: {type: profile, profile: {email: email}}
destination: {type: klaviyo}
`,
    expected: ['CONFIG_RULE@3:16', 'CONFIG_RULE@4:19', 'CONFIG_RULE@5:21'],
  },
  {
    name: 'klaviyo source with both list and segment',
    text: `version: 1
name: export
source: {type: klaviyo, list: L1, segment: S1}
transform: {type: export, columns: {email: email}}
destination: {type: csv, path: out.csv}
`,
    expected: ['CONFIG_RULE@3:44'],
  },
  {
    name: 'csv destination and export transform without a klaviyo source',
    text: `version: 1
name: export
source: {type: csv, path: in.csv}
transform: {type: export, columns: {email: email}}
destination: {type: csv, path: out.csv}
`,
    expected: ['CONFIG_RULE@4:19', 'CONFIG_RULE@5:21'],
  },
  {
    name: 'subscription: historical_import without consented_at; sms channel without phone',
    text: `version: 1
name: consent
source: {type: csv, path: in.csv}
transform:
  type: subscription
  profile: {email: Email}
  channels: {email: {}, sms: {marketing: true}}
  historical_import: true
destination: {type: klaviyo}
`,
    expected: ['CONFIG_RULE@7:25', 'CONFIG_RULE@8:22'],
  },
  {
    name: 'checkpoint store s3 without url',
    text: VALID_PROFILE + 'checkpoint:\n  store: s3\n',
    expected: ['CONFIG_RULE@16:10'],
  },
  {
    name: 'group.itemEvents without unique_id (schema: required)',
    text: `version: 1
name: orders
source: {type: csv, path: orders.csv}
transform:
  type: event
  metric: Placed Order
  unique_id: {template: "{{Name}}"}
  profile: {email: Email}
  group:
    by: Name
    items: {SKU: Lineitem sku}
    itemEvents:
      metric: Ordered Product
destination: {type: klaviyo}
`,
    expected: ['CONFIG_INVALID@12:5'],
    paths: ['transform.group.itemEvents.unique_id'],
  },
  {
    name: 'several problems across sections are all reported at once',
    text: `version: 1
name: orders
source:
  type: postgres
  url: \${DATABASE_URL}
  query: select 1
  lookback: 1h
  colour: red
transform:
  type: event
  metric: Placed Order
  profile: {first_name: First}
  time: {column: t, type: datetime, format: "yyyy-MM-dd"}
destination:
  type: klaviyo
  batch: {events: 5000}
`,
    expected: [
      'CONFIG_ENV_MISSING@5:8',
      'CONFIG_RULE@7:13',
      'CONFIG_UNKNOWN_KEY@8:3',
      'CONFIG_RULE@9:1',
      'CONFIG_RULE@12:3',
      'CONFIG_RULE@13:45',
      'CONFIG_INVALID@16:19',
    ],
  },
];

describe('loadPipelineText: broken pipelines report every problem with its location', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const result = loadPipelineText(c.text, { file: 'p.yaml', env: {} });
      expect(result.problems.map((p) => `${p.code}@${p.line}:${p.column}`)).toEqual(c.expected);
      if (c.paths) expect(result.problems.map((p) => p.path)).toEqual(c.paths);
      expect(result.config).toBeUndefined();
      for (const p of result.problems) expect(p.file).toBe('p.yaml');
    });
  }
});

describe('loadPipelineFile / validatePipelineFiles', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'klaviyo-etl-load-'));
    await writeFile(path.join(dir, 'good.yaml'), VALID_PROFILE);
    await writeFile(path.join(dir, 'bad.yaml'), VALID_PROFILE.replace('  type: klaviyo\n', '  type: klaviyo\n  concurency: 2\n'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file and names it in problems', async () => {
    const good = await loadPipelineFile(path.join(dir, 'good.yaml'), { env: {} });
    expect(good.problems).toEqual([]);
    expect(good.source.dir).toBe(dir);
    const bad = await loadPipelineFile(path.join(dir, 'bad.yaml'), { env: {} });
    expect(bad.problems.map(formatProblem)).toEqual([
      `${path.join(dir, 'bad.yaml')}:15:3  CONFIG_UNKNOWN_KEY  destination.concurency: unknown key "concurency" (did you mean "concurrency"?)`,
    ]);
  });

  it('reports an unreadable file as a problem instead of throwing', async () => {
    const missing = path.join(dir, 'missing.yaml');
    const result = await loadPipelineFile(missing);
    expect(result.problems).toMatchObject([{ file: missing, line: 1, column: 1, code: 'CONFIG_INVALID' }]);
  });

  it('validates several files, sorted by file then position', async () => {
    const files = [path.join(dir, 'missing.yaml'), path.join(dir, 'good.yaml'), path.join(dir, 'bad.yaml')];
    const problems = await validatePipelineFiles(files, { env: {} });
    expect(problems.map((p) => path.basename(p.file))).toEqual(['bad.yaml', 'missing.yaml']);
  });

  it('loadPipelineFileOrThrow throws an EtlError carrying every problem', async () => {
    await expect(loadPipelineFileOrThrow(path.join(dir, 'good.yaml'), { env: {} })).resolves.toMatchObject({ config: { name: 'customers' } });
    const error = await loadPipelineFileOrThrow(path.join(dir, 'bad.yaml'), { env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtlError);
    expect((error as EtlError).code).toBe('CONFIG_UNKNOWN_KEY');
    expect((error as EtlError).context.problems).toHaveLength(1);
    expect((error as EtlError).message).toContain('bad.yaml:15:3');
  });
});

describe('rules follow the type a field is coerced into', () => {
  const base = `version: 1
name: consent
source: {type: csv, path: in.csv}
transform:
  type: subscription
  profile:
    email: Email
    phone_number: {column: Phone, region: US}
  channels: {email: {}, sms: {}}
  historical_import: true
  consented_at: {column: Consented, format: "MM/dd/yyyy HH:mm"}
destination: {type: klaviyo}
`;

  it('phone_number is a phone (region allowed) and consented_at a datetime (zone needed) without declaring a type', () => {
    const result = loadPipelineText(base, { file: 'p.yaml', env: {} });
    expect(result.problems.map((p) => `${p.code}@${p.line}:${p.column} ${p.path}`)).toEqual([
      'CONFIG_RULE@11:45 transform.consented_at.format',
    ]);
    const fixed = loadPipelineText(base.replace('HH:mm"}', 'HH:mm", zone: Europe/Berlin}'), { env: {} });
    expect(fixed.problems).toEqual([]);
    expect(fixed.config?.transform.type).toBe('subscription');
  });

  it('region on a string property is flagged', () => {
    const result = loadPipelineText(
      VALID_PROFILE.replace('      Signed up:', '      Phone2: {column: P2, region: US}\n      Signed up:'),
      { file: 'p.yaml', env: {} },
    );
    expect(result.problems.map((p) => p.path)).toEqual(['transform.profile.properties.Phone2.region']);
  });
});
