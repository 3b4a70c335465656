import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EtlError, redact } from '../core/errors.js';
import type { SourcePosition } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import type { PipelineConfig } from '../config/schema.js';

/** Current checkpoint file format version. */
export const CHECKPOINT_VERSION = 1;

export const CHECKPOINT_STATUSES = ['running', 'interrupted', 'failed', 'succeeded'] as const;
export type CheckpointStatus = (typeof CHECKPOINT_STATUSES)[number];

export const SourcePositionSchema = z.looseObject({
  seq: z.number().int().min(0),
  source: z.string(),
  line: z.number().int().min(0).optional(),
  offset: z.number().int().min(0).optional(),
  cursor: z.record(z.string(), z.unknown()).optional(),
});

const Counter = z.number().int().min(0);

/** RunStats as stored: the known counters are checked, fields added to RunStats later are kept as they are. */
export const CountersSchema = z.looseObject({
  rows: z.looseObject({ read: Counter, loaded: Counter, rejected: Counter, skipped: Counter }),
  items: z.looseObject({ profiles: Counter, events: Counter, subscriptions: Counter }),
  requests: z.looseObject({
    total: Counter,
    throttled: Counter,
    retried: Counter,
    failed: Counter,
    byEndpoint: z.record(z.string(), Counter),
    throttledByEndpoint: z.record(z.string(), Counter).optional(),
  }),
  plannedRequests: Counter,
  jobs: z.looseObject({ submitted: Counter, completed: Counter, importErrors: Counter }),
});

export const RejectsStateSchema = z.strictObject({
  /** Rejects file path as the runner resolved it. */
  path: z.string(),
  /** Rejected rows written so far. */
  count: z.number().int().min(0),
});
export type RejectsState = z.output<typeof RejectsStateSchema>;

/** The checkpoint file, version 1. */
export const CheckpointSchema = z.strictObject({
  version: z.literal(CHECKPOINT_VERSION),
  /** Pipeline name. */
  pipeline: z.string().min(1),
  /** Id of the run that wrote this checkpoint (kept across resumes of the same run). */
  runId: z.string().min(1),
  status: z.enum(CHECKPOINT_STATUSES),
  /** `sha256:<hex>` of the output-affecting configuration (see `pipelineHash`). */
  configHash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  startedAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional(),
  /** Every record up to and including this position is acknowledged (or rejected). Absent: nothing yet. */
  position: SourcePositionSchema.optional(),
  /** Bulk import jobs submitted and not yet finished (polled instead of resubmitted on resume). */
  pendingJobs: z.array(z.string().min(1)),
  /**
   * For each pending job, the position its rows come after (`null`: the start of the run). When Klaviyo no longer
   * knows a pending job at a resume, the rows from there on are read and sent again.
   */
  pendingJobsAfter: z.record(z.string().min(1), SourcePositionSchema.nullable()).optional(),
  counters: CountersSchema.optional(),
  rejects: RejectsStateSchema.optional(),
  /**
   * Source state of this run, saved by the source as it goes (the file sources: the files the run covers, fixed at
   * its start, which of them were read completely, and what the parser learned from the start of the file being
   * read). Handed back to the source on resume; cleared when the run succeeds.
   */
  sourcePlan: z.unknown().optional(),
  /** Source watermark of the last successful run (the input of incremental runs). */
  watermark: z.unknown().optional(),
  /**
   * `mappingVersion` of the pipeline that stored `watermark`. A source whose watermark lists the inputs it read
   * (files, objects) reads them again under another version. Absent (older checkpoints): taken as the current one.
   */
  watermarkVersion: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
  /** The unfinished run reads every source in full (`--full-refresh`): a resume does too. */
  fullRefresh: z.literal(true).optional(),
  /** The last successful run. */
  lastSuccess: z.strictObject({ runId: z.string(), finishedAt: z.iso.datetime() }).optional(),
});

/** The checkpoint as read and written by stores. */
export interface Checkpoint {
  version: typeof CHECKPOINT_VERSION;
  pipeline: string;
  runId: string;
  status: CheckpointStatus;
  configHash: string;
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  position?: SourcePosition;
  pendingJobs: string[];
  pendingJobsAfter?: Record<string, SourcePosition | null>;
  counters?: RunStats;
  rejects?: RejectsState;
  sourcePlan?: unknown;
  watermark?: unknown;
  watermarkVersion?: string;
  fullRefresh?: true;
  lastSuccess?: { runId: string; finishedAt: string };
}

/**
 * Parse checkpoint file text. Anything that is not a valid version-1 checkpoint is `CHECKPOINT_CORRUPT`
 * (`location` names the file or object in the error context).
 */
export function parseCheckpoint(text: string, location: string): Checkpoint {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new EtlError('CHECKPOINT_CORRUPT', `Checkpoint ${location} is not valid JSON`, {
      cause,
      context: { component: 'checkpoint', file: location },
    });
  }
  if (json && typeof json === 'object' && 'version' in json && json.version !== CHECKPOINT_VERSION) {
    throw new EtlError(
      'CHECKPOINT_CORRUPT',
      `Checkpoint ${location} has format version ${JSON.stringify(json.version)}; this klaviyo-etl reads version ${CHECKPOINT_VERSION}`,
      { context: { component: 'checkpoint', file: location } },
    );
  }
  const parsed = CheckpointSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
    throw new EtlError('CHECKPOINT_CORRUPT', `Checkpoint ${location} is invalid (${where})`, {
      context: { component: 'checkpoint', file: location },
    });
  }
  return parsed.data as Checkpoint;
}

/** Options of {@link serializeCheckpoint}. */
export interface SerializeOptions {
  /**
   * Check the result against the checkpoint schema (what a resume reads back). @default true. The checkpointer
   * checks the first and the final write of a run and at most one progress write per second: validating every
   * progress write cost more than the write itself while V8 warms up.
   */
  validate?: boolean;
}

/**
 * Serialize a checkpoint: secrets are removed from every string (API keys, passwords in URLs), bigints become
 * strings, Dates ISO strings. Throws INTERNAL when the result would not be a valid checkpoint.
 */
export function serializeCheckpoint(cp: Checkpoint, options: SerializeOptions = {}): string {
  const clean = redactSecrets(JSON.parse(JSON.stringify(cp, jsonReplacer)) as unknown);
  if (options.validate !== false) {
    const parsed = CheckpointSchema.safeParse(clean);
    if (!parsed.success) {
      throw new EtlError('INTERNAL', `Refusing to write an invalid checkpoint: ${parsed.error.issues[0]?.message ?? ''}`);
    }
  }
  return JSON.stringify(clean, null, 2) + '\n';
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*):[^@/\s]*@/gi;
const SECRET_PARAM = /([?&;](?:password|passwd|pwd|sslpassword|sslkey|secret|token|access_token|api_key|apikey|key)=)[^&;#\s]*/gi;

/** Remove credentials from a string: `pk_…` keys, URL passwords (`user:***@host`), password/token query params. */
export function redactCredentials(text: string): string {
  return redact(text).replace(URL_PASSWORD, '$1:***@').replace(SECRET_PARAM, '$1***');
}

/** Deep copy of a JSON value with `redactCredentials` applied to every string (keys included). */
export function redactSecrets<T>(value: T): T {
  if (typeof value === 'string') return redactCredentials(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[redactCredentials(k)] = redactSecrets(v);
    return out as T;
  }
  return value;
}

// ---------------------------------------------------------------- pipeline hash

/** Keys per component type that tune how, not what, is read or written (excluded from the hash). */
const TUNING_KEYS: Record<string, Record<string, readonly string[]>> = {
  source: {
    postgres: ['batchSize', 'ssl', 'statementTimeout', 'applicationName'],
    s3: ['region', 'forcePathStyle'],
    klaviyo: ['pageSize', 'rateLimits'],
    // what a resume does with a file that changed since the interrupted attempt: set after a SOURCE_CHANGED refusal
    csv: ['onChangedFile'],
    ndjson: ['onChangedFile'],
  },
  destination: {
    klaviyo: ['apiKeyEnv', 'batch', 'concurrency', 'rateLimits', 'retries', 'retryBudgetMs', 'timeoutMs'],
    s3: ['region', 'forcePathStyle'],
  },
};

/** The part of a pipeline that determines its output, with tuning knobs and credentials removed. */
export function outputAffectingConfig(config: Pick<PipelineConfig, 'source' | 'transform' | 'destination'>): {
  source: unknown;
  transform: unknown;
  destination: unknown;
} {
  const strip = (section: 'source' | 'destination', value: { type: string }): Record<string, unknown> => {
    const drop = new Set(TUNING_KEYS[section]?.[value.type] ?? []);
    return Object.fromEntries(Object.entries(value).filter(([k]) => !drop.has(k)));
  };
  return {
    // Credentials are removed so a rotated password neither changes the hash nor feeds it.
    source: redactSecrets(strip('source', config.source)),
    transform: config.transform,
    destination: redactSecrets(strip('destination', config.destination)),
  };
}

/**
 * `sha256:<hex>` of the canonical JSON (sorted keys, undefined dropped) of the output-affecting configuration:
 * source, transform and destination, without tuning knobs (batch sizes, concurrency, retries, timeouts, rate
 * limits, page sizes, regions) and without credentials. Pass the parsed (defaults applied) config, so writing a
 * default explicitly does not change the hash. Name, description, rejects and checkpoint settings are not part.
 */
export function pipelineHash(config: Pick<PipelineConfig, 'source' | 'transform' | 'destination'>): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(outputAffectingConfig(config))).digest('hex');
}

/** Keys per source type that say where it reads, not how a row is read (excluded from the mapping version). */
const LOCATION_KEYS: Record<string, readonly string[]> = {
  csv: ['path'],
  ndjson: ['path'],
  s3: ['bucket', 'prefix', 'glob', 'endpoint'],
};

/**
 * `sha256:<hex>` of the pipeline's mapping: how a row is read and what it becomes. That is the output-affecting
 * configuration (see {@link pipelineHash}) without where the source reads from (a file source's `path`, an S3
 * source's bucket, prefix, glob and endpoint): the transform, the destination, and the source's parse settings
 * (delimiter, encoding, header, format…). A file watermark belongs to the version that read the files: under
 * another version they are read again. Changing a glob to match more files does not re-read those already read.
 */
export function mappingVersion(config: Pick<PipelineConfig, 'source' | 'transform' | 'destination'>): string {
  const out = outputAffectingConfig(config);
  const source = out.source as Record<string, unknown>;
  const drop = new Set(LOCATION_KEYS[String(source.type)] ?? []);
  const parse = Object.fromEntries(Object.entries(source).filter(([k]) => !drop.has(k)));
  return 'sha256:' + createHash('sha256').update(canonicalJson({ ...out, source: parse })).digest('hex');
}

/** JSON with object keys sorted recursively and `undefined` members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'bigint' ? JSON.stringify(value.toString()) : (JSON.stringify(value) ?? 'null');
  }
  if (Array.isArray(value)) return '[' + value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',') + ']';
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + canonicalJson(v)).join(',') + '}';
}
