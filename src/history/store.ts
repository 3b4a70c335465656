/**
 * The run history: every run's report, kept beside the pipeline's checkpoint (the same local state directory, or the
 * same S3 prefix), newest last. Local: one JSON line per run appended to `history.ndjson`. S3: one object per run
 * under `<prefix>/<pipeline>/history/`, named so that key order is time order (S3 cannot append). The oldest runs
 * beyond {@link HISTORY_KEEP} are dropped.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { PipelineConfig } from '../config/pipeline.js';
import type { RunReport } from '../runner/report.js';
import { createS3Client, isS3NotFound, parseS3Url, s3Sdk } from '../s3/client.js';

/** Runs kept in a pipeline's history. */
export const HISTORY_KEEP = 1000;

/** Where one pipeline's run history lives. */
export interface HistoryStore {
  /** The history file, or `s3://bucket/prefix/` of its objects (for messages). */
  readonly location: string;
  /** Add one run's report at the end. */
  append(report: RunReport): Promise<void>;
  /** The last `limit` runs (all when absent), oldest first. */
  list(limit?: number): Promise<RunReport[]>;
  close(): Promise<void>;
}

/** Where the state of a pipeline is looked for: as `run` resolves it. */
export interface StateLocation {
  /** Directory of the pipeline file. */
  baseDir: string;
  /** `--state-dir` / $KLAVIYO_ETL_STATE_DIR. */
  stateDir?: string;
  /** The run's temporary state directory (`--emulator` without a state directory). */
  ephemeralDir?: string;
  /**
   * The local directory an `--emulator` run keeps its state in (never the pipeline's own checkpoint store): its
   * history goes there too.
   */
  emulatorStateDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** The local directory that holds a pipeline's checkpoint (and its history), as a run resolves it. */
export function localStateDir(config: PipelineConfig, where: StateLocation): string {
  const dir = config.checkpoint.dir;
  if (dir) return isAbsolute(dir) ? dir : resolve(where.baseDir, dir);
  if (where.ephemeralDir) return where.ephemeralDir;
  return where.stateDir ? resolve(where.stateDir, config.name) : join(where.baseDir, '.klaviyo-etl', config.name);
}

/** The history store of a pipeline: beside its checkpoint (`checkpoint.store`). */
export function openHistoryStore(config: PipelineConfig, where: StateLocation): HistoryStore {
  const cp = config.checkpoint;
  if (where.emulatorStateDir) return new LocalHistoryStore(join(where.emulatorStateDir, 'history.ndjson'));
  if (cp.store === 's3' && cp.url) {
    const { bucket, prefix } = parseS3Url(cp.url);
    const client = createS3Client({ region: cp.region, endpoint: cp.endpoint, forcePathStyle: cp.forcePathStyle, env: where.env });
    return new S3HistoryStore(client, bucket, `${prefix ? `${prefix}/` : ''}${config.name}/history/`);
  }
  return new LocalHistoryStore(join(localStateDir(config, where), 'history.ndjson'));
}

/** What is kept of a report: all but what the embedded emulator held (large, and gone with it). */
function entryOf(report: RunReport): RunReport {
  const { emulator: _emulator, ...entry } = report;
  return entry;
}

function parseLines(text: string): RunReport[] {
  const out: RunReport[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as RunReport);
    } catch {
      // a line torn by a crash mid-append: the other runs still count
    }
  }
  return out;
}

class LocalHistoryStore implements HistoryStore {
  readonly location: string;

  constructor(file: string) {
    this.location = file;
  }

  async append(report: RunReport): Promise<void> {
    await mkdir(resolve(this.location, '..'), { recursive: true });
    await appendFile(this.location, JSON.stringify(entryOf(report)) + '\n', { mode: 0o600 });
    const all = await this.list();
    // trim now and then (a fifth over the limit), atomically: a reader sees the old or the new file
    if (all.length > HISTORY_KEEP * 1.2) {
      const temp = `${this.location}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(temp, all.slice(-HISTORY_KEEP).map((r) => JSON.stringify(r) + '\n').join(''), { mode: 0o600 });
      await rename(temp, this.location);
    }
  }

  async list(limit?: number): Promise<RunReport[]> {
    let text: string;
    try {
      text = await readFile(this.location, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const all = parseLines(text);
    return limit === undefined ? all : all.slice(-limit);
  }

  async close(): Promise<void> {}
}

class S3HistoryStore implements HistoryStore {
  readonly location: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(client: S3Client, bucket: string, prefix: string) {
    this.#client = client;
    this.#bucket = bucket;
    this.#prefix = prefix;
    this.location = `s3://${bucket}/${prefix}`;
  }

  async append(report: RunReport): Promise<void> {
    // finishedAt first: keys sort in time order; the run id and a random tail keep two attempts apart
    const key = `${this.#prefix}${report.finishedAt}_${report.runId}_${randomBytes(3).toString('hex')}.json`;
    const body = JSON.stringify(entryOf(report)) + '\n';
    await this.#client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.#bucket, Key: key, Body: body, ContentType: 'application/json' }));
    const keys = await this.#keys();
    for (const old of keys.slice(0, Math.max(0, keys.length - HISTORY_KEEP))) {
      await this.#client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.#bucket, Key: old }));
    }
  }

  async list(limit?: number): Promise<RunReport[]> {
    const keys = await this.#keys();
    const out: RunReport[] = [];
    for (const key of limit === undefined ? keys : keys.slice(-limit)) {
      try {
        const res = await this.#client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.#bucket, Key: key }));
        out.push(...parseLines((await res.Body?.transformToString('utf8')) ?? ''));
      } catch (error) {
        if (!isS3NotFound(error)) throw error; // trimmed by another run meanwhile
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** The history objects' keys, oldest first. */
  async #keys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.#client.send(
        new (s3Sdk().ListObjectsV2Command)({ Bucket: this.#bucket, Prefix: this.#prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) if (o.Key?.endsWith('.json')) keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}
