import { describe, expect, it } from 'vitest';
import { Pipeline, type PipelineInput } from '../../../src/config/pipeline.js';
import {
  canonicalJson,
  parseCheckpoint,
  pipelineHash,
  redactCredentials,
  serializeCheckpoint,
  type Checkpoint,
} from '../../../src/checkpoint/format.js';

const base = (): PipelineInput => ({
  version: 1,
  name: 'orders',
  source: { type: 'postgres', url: 'postgres://etl:s3cret@db.internal:5432/shop', table: 'orders', cursor: ['updated_at', 'id'] },
  transform: {
    type: 'event',
    metric: 'Placed Order',
    profile: { email: 'email' },
    unique_id: { template: '{{id}}' },
    value: { column: 'total', type: 'number' },
  },
  destination: { type: 'klaviyo' },
});

const hashOf = (edit: (p: PipelineInput & Record<string, any>) => void = () => {}): string => {
  const p = base() as PipelineInput & Record<string, any>;
  edit(p);
  return pipelineHash(Pipeline.parse(p));
};

describe('pipelineHash', () => {
  const original = hashOf();

  it('is a sha256 and stable', () => {
    expect(original).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashOf()).toBe(original);
  });

  it.each([
    ['destination.concurrency', (p: any) => (p.destination.concurrency = 16)],
    ['destination.retries', (p: any) => (p.destination.retries = 2)],
    ['destination.timeoutMs', (p: any) => (p.destination.timeoutMs = 5000)],
    ['destination.rateLimits', (p: any) => (p.destination.rateLimits = { 'POST /api/events': { burst: 1, steady: 1 } })],
    ['destination.batch', (p: any) => (p.destination.batch = { events: 10 })],
    ['destination.apiKeyEnv', (p: any) => (p.destination.apiKeyEnv = 'OTHER_KEY')],
    ['source.batchSize', (p: any) => (p.source.batchSize = 100)],
    ['source.statementTimeout', (p: any) => (p.source.statementTimeout = 1000)],
    ['source url password (rotated)', (p: any) => (p.source.url = 'postgres://etl:n3w@db.internal:5432/shop')],
    ['a default written explicitly', (p: any) => (p.transform.backfill = false)],
    ['description, rejects, checkpoint', (p: any) => Object.assign(p, { description: 'x', rejects: { maxRejects: 5 }, checkpoint: { every: 10 } })],
    ['key order', (p: any) => (p.transform = { unique_id: p.transform.unique_id, ...p.transform })],
  ])('does not change with %s', (_name, edit) => {
    expect(hashOf(edit)).toBe(original);
  });

  it.each([
    ['the metric', (p: any) => (p.transform.metric = 'Ordered')],
    ['a mapped column', (p: any) => (p.transform.profile.email = 'mail')],
    ['unique_id', (p: any) => (p.transform.unique_id = { template: 'o-{{id}}' })],
    ['backfill', (p: any) => (p.transform.backfill = true)],
    ['the source table', (p: any) => (p.source.table = 'orders_v2')],
    ['the source cursor', (p: any) => (p.source.cursor = ['id'])],
    ['the database host', (p: any) => (p.source.url = 'postgres://etl:s3cret@other:5432/shop')],
    ['the destination revision', (p: any) => (p.destination.revision = '2025-01-15')],
    ['the destination lists', (p: any) => (p.destination.lists = ['Xy12Ab'])],
  ])('changes with %s', (_name, edit) => {
    expect(hashOf(edit)).not.toBe(original);
  });
});

describe('canonicalJson', () => {
  it('sorts keys recursively and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"f":2}]},"b":1}');
  });
});

const checkpoint = (over: Partial<Checkpoint> = {}): Checkpoint => ({
  version: 1,
  pipeline: 'orders',
  runId: 'run-1',
  status: 'running',
  configHash: 'sha256:' + 'a'.repeat(64),
  startedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  pendingJobs: [],
  ...over,
});

describe('checkpoint file format', () => {
  it('round-trips', () => {
    const cp = checkpoint({
      position: { seq: 41, source: 'orders.csv', line: 43, offset: 1234 },
      pendingJobs: ['job-1'],
      rejects: { path: '/tmp/rejects.ndjson', count: 2 },
      watermark: { cursor: ['2026-01-01T00:00:00Z', 5] },
    });
    expect(parseCheckpoint(serializeCheckpoint(cp), 'x')).toEqual(cp);
  });

  it('never stores credentials: URL passwords, API keys, password parameters', () => {
    const cp = checkpoint({
      position: { seq: 1, source: 'postgres://etl:hunter2@db/shop?sslpassword=abc', cursor: { note: 'pk_abc123def' } },
      watermark: { url: 'https://user:pw@example.com/x?token=t0k' },
    });
    const text = serializeCheckpoint(cp);
    expect(text).not.toMatch(/hunter2|pk_abc123def|sslpassword=abc|:pw@|t0k/);
    expect(text).toContain('postgres://etl:***@db/shop');
    expect(redactCredentials('redis://:secret@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379');
  });

  it('refuses to serialize an invalid checkpoint unless told not to check it', () => {
    const bad = checkpoint({ position: { seq: -1, source: 'orders.csv' } });
    expect(() => serializeCheckpoint(bad)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(JSON.parse(serializeCheckpoint(bad, { validate: false })).position).toEqual({ seq: -1, source: 'orders.csv' });
  });

  it('stores bigint cursor values as strings', () => {
    const text = serializeCheckpoint(checkpoint({ position: { seq: 1, source: 'pg', cursor: { id: 2n ** 70n } } }));
    expect(parseCheckpoint(text, 'x').position?.cursor).toEqual({ id: (2n ** 70n).toString() });
  });

  it.each([
    ['not JSON', '{"version": 1, '],
    ['empty', ''],
    ['another version', JSON.stringify({ ...checkpoint(), version: 2 })],
    ['a missing field', JSON.stringify({ ...checkpoint(), runId: undefined })],
    ['a bad status', JSON.stringify({ ...checkpoint(), status: 'done' })],
    ['an unknown key', JSON.stringify({ ...checkpoint(), extra: 1 })],
  ])('rejects %s with CHECKPOINT_CORRUPT', (_name, text) => {
    expect(() => parseCheckpoint(text, '/x/checkpoint.json')).toThrow(
      expect.objectContaining({ code: 'CHECKPOINT_CORRUPT', context: expect.objectContaining({ file: '/x/checkpoint.json' }) }),
    );
  });
});
