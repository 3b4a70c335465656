import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, isS3ConditionFailed, isS3NotFound, parseS3Url, s3Sdk } from '../s3/client.js';
import { EtlError } from '../core/errors.js';
import type { PipelineConfig } from '../config/schema.js';
import { parseCheckpoint, serializeCheckpoint, type Checkpoint, type SerializeOptions } from './format.js';
import { describeLock, isStale, keepLeaseAlive, newLockInfo, parseLockInfo, renewedLockInfo, type Lock, type LockEnvironment, type LockInfo } from './lock.js';

export type { Lock, LockInfo, LockEnvironment } from './lock.js';

/** Where one pipeline's checkpoint lives. One store per pipeline. */
export interface CheckpointStore {
  /** Human-readable location (directory or `s3://bucket/prefix`), for messages and the run report. */
  readonly location: string;
  /** The stored checkpoint, or undefined when there is none. Throws CHECKPOINT_CORRUPT on an unreadable one. */
  read(): Promise<Checkpoint | undefined>;
  /**
   * Replace the checkpoint atomically: a reader sees the old or the new one, never a mix. `options.validate: false`
   * skips the schema check of the serialized checkpoint (see serializeCheckpoint).
   */
  write(cp: Checkpoint, options?: SerializeOptions): Promise<void>;
  /** Remove the checkpoint (not the lock). */
  clear(): Promise<void>;
  /** Take the pipeline's run lock, or throw LOCKED naming the holder. */
  lock(): Promise<Lock>;
  /** Release resources the store created (an S3 client it made itself). */
  close?(): Promise<void>;
}

const CHECKPOINT_FILE = 'checkpoint.json';
const LOCK_FILE = 'checkpoint.lock';
/** A lock file that cannot be parsed (a crash between create and write) is taken over after this long. */
const UNREADABLE_LOCK_GRACE_MS = 10_000;
/** A takeover mutex older than this was left by a crashed process. */
const TAKEOVER_GRACE_MS = 30_000;

const lockedError = (location: string, info: LockInfo | undefined, detail?: string): EtlError =>
  new EtlError(
    'LOCKED',
    info
      ? `Pipeline is locked by another run (${describeLock(info)}): ${location}`
      : `Pipeline is locked by another run (${detail ?? 'lock unreadable'}): ${location}`,
    { context: { component: 'checkpoint', file: location, pid: info?.pid, hostname: info?.hostname } },
  );

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

/** The state directory cannot hold the checkpoint and its lock (a file in the way, no permission, read-only…). */
const unusableStateDir = (dir: string, error: unknown): EtlError =>
  new EtlError('STATE_DIR_UNUSABLE', `Cannot use the state directory ${dir} for the checkpoint and its lock (${errno(error) ?? String(error)}): choose another with --state-dir, checkpoint.dir or KLAVIYO_ETL_STATE_DIR`, {
    cause: error,
    context: { component: 'checkpoint', file: dir },
  });

// ---------------------------------------------------------------- local

export interface LocalCheckpointStoreOptions {
  /** How locks are judged stale (pid / hostname / liveness probe). */
  lockEnv?: LockEnvironment;
  /** The lock's lease (`checkpoint.leaseSeconds`). @default DEFAULT_LEASE_MS */
  leaseMs?: number;
  /** Fault injection for tests: called after the temp file is written and synced, before the rename. */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

/**
 * Checkpoint in `<dir>/checkpoint.json`, lock in `<dir>/checkpoint.lock`. Writes go to a temp file in the same
 * directory which is fsynced, renamed over the checkpoint, and the directory fsynced: after a crash at any point
 * the file holds the complete old or the complete new checkpoint.
 */
export class LocalCheckpointStore implements CheckpointStore {
  readonly location: string;
  readonly #dir: string;
  readonly #file: string;
  readonly #lockFile: string;
  readonly #options: LocalCheckpointStoreOptions;

  constructor(dir: string, options: LocalCheckpointStoreOptions = {}) {
    this.#dir = resolve(dir);
    this.#file = join(this.#dir, CHECKPOINT_FILE);
    this.#lockFile = join(this.#dir, LOCK_FILE);
    this.location = this.#file;
    this.#options = options;
  }

  async read(): Promise<Checkpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw new EtlError('CHECKPOINT_CORRUPT', `Cannot read checkpoint ${this.#file}: ${errno(error) ?? String(error)}`, {
        cause: error,
        context: { component: 'checkpoint', file: this.#file },
      });
    }
    return parseCheckpoint(text, this.#file);
  }

  async write(cp: Checkpoint, options?: SerializeOptions): Promise<void> {
    const text = serializeCheckpoint(cp, options);
    await mkdir(this.#dir, { recursive: true });
    const temp = join(this.#dir, `${CHECKPOINT_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const fh = await open(temp, 'w', 0o600);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.#options.beforeRename?.(temp);
      await rename(temp, this.#file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await syncDir(this.#dir);
  }

  async clear(): Promise<void> {
    try {
      await unlink(this.#file);
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error;
      return;
    }
    await syncDir(this.#dir);
  }

  async lock(): Promise<Lock> {
    await mkdir(this.#dir, { recursive: true }).catch((error: unknown) => {
      throw unusableStateDir(this.#dir, error);
    });
    const env = this.#options.lockEnv ?? {};
    const info = newLockInfo(env, this.#options.leaseMs);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fh = await open(this.#lockFile, 'wx', 0o644);
        try {
          await fh.writeFile(JSON.stringify(info) + '\n', 'utf8');
          await fh.sync();
        } finally {
          await fh.close();
        }
        await syncDir(this.#dir);
        await this.#removeTempFiles();
        return this.#heldLock(info);
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw unusableStateDir(this.#dir, error);
      }
      let text: string;
      try {
        text = await readFile(this.#lockFile, 'utf8');
      } catch (error) {
        if (errno(error) === 'ENOENT') continue; // released meanwhile: try again
        throw error;
      }
      const found = parseLockInfo(text);
      if (found && !isStale(found, env)) throw lockedError(this.#lockFile, found);
      if (!found && !(await olderThan(this.#lockFile, UNREADABLE_LOCK_GRACE_MS, env))) {
        throw lockedError(this.#lockFile, undefined, 'lock file being written or unreadable');
      }
      await this.#takeOver(text);
    }
    throw lockedError(this.#lockFile, undefined, 'could not take the lock after several attempts');
  }

  /** Remove a stale lock, unless it changed since it was judged stale; serialized through a takeover mutex. */
  async #takeOver(staleText: string): Promise<void> {
    const mutex = `${this.#lockFile}.takeover`;
    try {
      await (await open(mutex, 'wx')).close();
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error;
      if (await olderThan(mutex, TAKEOVER_GRACE_MS, this.#options.lockEnv ?? {})) await unlink(mutex).catch(() => undefined);
      return; // someone else is taking over: loop and look again
    }
    try {
      const current = await readFile(this.#lockFile, 'utf8').catch(() => undefined);
      if (current === staleText) await unlink(this.#lockFile).catch(() => undefined);
    } finally {
      await unlink(mutex).catch(() => undefined);
    }
  }

  #heldLock(info: LockInfo): Lock {
    let released = false;
    const file = this.#lockFile;
    const lease = keepLeaseAlive(info, file, () => this.#renew(info));
    return {
      info,
      onLost: lease.onLost,
      async release() {
        if (released) return;
        released = true;
        lease.stop();
        const text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined && parseLockInfo(text)?.token === info.token) await unlink(file).catch(() => undefined);
      },
    };
  }

  /** Extend the lease: rewrite the lock file (temp file + rename) if it still holds this run's token. */
  async #renew(info: LockInfo): Promise<boolean> {
    const text = await readFile(this.#lockFile, 'utf8').catch((error: unknown) => {
      if (errno(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined || parseLockInfo(text)?.token !== info.token) return false;
    const temp = `${this.#lockFile}.${randomBytes(4).toString('hex')}.renew`;
    await writeFile(temp, JSON.stringify(renewedLockInfo(info, this.#options.lockEnv)) + '\n', { mode: 0o644 });
    await rename(temp, this.#lockFile).catch(async (error: unknown) => {
      await unlink(temp).catch(() => undefined);
      throw error;
    });
    return true;
  }

  /** Temp files left by a crash between write and rename (only called while holding the lock). */
  async #removeTempFiles(): Promise<void> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(`${CHECKPOINT_FILE}.`) && n.endsWith('.tmp'))
        .map((n) => unlink(join(this.#dir, n)).catch(() => undefined)),
    );
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (error) {
    // Some platforms / file systems cannot fsync a directory; the rename is still atomic there.
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'ENOTSUP'].includes(errno(error) ?? '')) throw error;
  } finally {
    await fh?.close();
  }
}

async function olderThan(path: string, ms: number, env: LockEnvironment): Promise<boolean> {
  try {
    const s = await stat(path);
    return (env.now?.() ?? new Date()).getTime() - s.mtimeMs > ms;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------- S3

export interface S3CheckpointStoreOptions {
  /** `s3://bucket/prefix`: the checkpoint is `<prefix>/checkpoint.json`, the lock `<prefix>/checkpoint.lock`. */
  url: string;
  client: S3Client;
  /** Destroy `client` in `close()` (set when the store created it). @default false */
  ownsClient?: boolean;
  lockEnv?: LockEnvironment;
  /** The lock's lease (`checkpoint.leaseSeconds`). @default DEFAULT_LEASE_MS */
  leaseMs?: number;
  /**
   * Compare the object's current ETag (HeadObject) with the expected one before each conditional write. Needed
   * with stores that ignore `If-Match` / `If-None-Match` on PutObject (s3rver, older MinIO); on AWS S3 the
   * conditional headers alone are atomic. @default true
   */
  verifyWithHead?: boolean;
}

/**
 * Checkpoint as an S3 object, replaced with conditional writes: `If-None-Match: *` when there is none yet,
 * `If-Match: <etag of the version this run read or wrote>` afterwards. A write that finds another version
 * (another process wrote meanwhile) fails with LOCKED. PutObject replaces an object atomically, so a reader
 * sees a complete checkpoint. The lock is an object created the same way.
 */
export class S3CheckpointStore implements CheckpointStore {
  readonly location: string;
  readonly #bucket: string;
  readonly #key: string;
  readonly #lockKey: string;
  readonly #client: S3Client;
  readonly #options: S3CheckpointStoreOptions;
  /** ETag of the version last read or written; null: known absent; undefined: unknown. */
  #etag: string | null | undefined;

  constructor(options: S3CheckpointStoreOptions) {
    const { bucket, prefix } = parseS3Url(options.url);
    this.#bucket = bucket;
    this.#key = prefix ? `${prefix}/${CHECKPOINT_FILE}` : CHECKPOINT_FILE;
    this.#lockKey = prefix ? `${prefix}/${LOCK_FILE}` : LOCK_FILE;
    this.#client = options.client;
    this.#options = options;
    this.location = `s3://${bucket}/${this.#key}`;
  }

  async read(): Promise<Checkpoint | undefined> {
    const got = await this.#get(this.#key);
    this.#etag = got ? got.etag : null;
    return got ? parseCheckpoint(got.text, this.location) : undefined;
  }

  async write(cp: Checkpoint, options?: SerializeOptions): Promise<void> {
    const body = serializeCheckpoint(cp, options);
    const expected = this.#etag === undefined ? await this.#head(this.#key) : this.#etag;
    if (this.#options.verifyWithHead !== false) {
      const current = await this.#head(this.#key);
      if (current !== expected) throw this.#conflict();
    }
    try {
      const res = await this.#client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: this.#bucket,
          Key: this.#key,
          Body: body,
          ContentType: 'application/json',
          ...(expected === null ? { IfNoneMatch: '*' } : { IfMatch: expected }),
        }),
      );
      this.#etag = res.ETag ?? (await this.#head(this.#key));
    } catch (error) {
      if (isS3ConditionFailed(error)) {
        this.#etag = undefined;
        throw this.#conflict(error);
      }
      throw error;
    }
  }

  async clear(): Promise<void> {
    if (this.#options.verifyWithHead !== false && this.#etag !== undefined) {
      const current = await this.#head(this.#key);
      if (current !== null && current !== this.#etag) throw this.#conflict();
    }
    await this.#client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.#bucket, Key: this.#key }));
    this.#etag = null;
  }

  async lock(): Promise<Lock> {
    const env = this.#options.lockEnv ?? {};
    const info = newLockInfo(env, this.#options.leaseMs);
    const location = `s3://${this.#bucket}/${this.#lockKey}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.#get(this.#lockKey);
      let condition: { IfNoneMatch: string } | { IfMatch: string } = { IfNoneMatch: '*' };
      if (existing) {
        const found = parseLockInfo(existing.text);
        if (found && !isStale(found, env)) throw lockedError(location, found);
        const age = (env.now?.() ?? new Date()).getTime() - (existing.lastModified?.getTime() ?? 0);
        if (!found && age < UNREADABLE_LOCK_GRACE_MS) throw lockedError(location, undefined);
        condition = { IfMatch: existing.etag };
      }
      if (this.#options.verifyWithHead !== false) {
        const current = await this.#head(this.#lockKey);
        if (current !== (existing ? existing.etag : null)) continue; // changed meanwhile: look again
      }
      try {
        await this.#client.send(
          new (s3Sdk().PutObjectCommand)({
            Bucket: this.#bucket,
            Key: this.#lockKey,
            Body: JSON.stringify(info) + '\n',
            ContentType: 'application/json',
            ...condition,
          }),
        );
      } catch (error) {
        if (isS3ConditionFailed(error)) continue;
        throw error;
      }
      // Read back: with a store that ignores conditional writes, the last of two racing writers wins here.
      const back = await this.#get(this.#lockKey);
      const owner = back ? parseLockInfo(back.text) : undefined;
      if (owner?.token === info.token) return this.#heldLock(info);
      throw lockedError(location, owner);
    }
    throw lockedError(location, undefined, 'could not take the lock after several attempts');
  }

  async close(): Promise<void> {
    if (this.#options.ownsClient) this.#client.destroy();
  }

  #heldLock(info: LockInfo): Lock {
    let released = false;
    const lease = keepLeaseAlive(info, `s3://${this.#bucket}/${this.#lockKey}`, () => this.#renew(info));
    return {
      info,
      onLost: lease.onLost,
      release: async () => {
        if (released) return;
        released = true;
        lease.stop();
        const current = await this.#get(this.#lockKey);
        if (current && parseLockInfo(current.text)?.token === info.token) {
          await this.#client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.#bucket, Key: this.#lockKey }));
        }
      },
    };
  }

  /** Extend the lease: a PUT conditional on the lock object this run last saw, if it still holds our token. */
  async #renew(info: LockInfo): Promise<boolean> {
    const current = await this.#get(this.#lockKey);
    if (!current || parseLockInfo(current.text)?.token !== info.token) return false;
    if (this.#options.verifyWithHead !== false && (await this.#head(this.#lockKey)) !== current.etag) return false;
    try {
      await this.#client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: this.#bucket,
          Key: this.#lockKey,
          Body: JSON.stringify(renewedLockInfo(info, this.#options.lockEnv)) + '\n',
          ContentType: 'application/json',
          IfMatch: current.etag,
        }),
      );
    } catch (error) {
      if (isS3ConditionFailed(error)) return false;
      throw error;
    }
    return true;
  }

  #conflict(cause?: unknown): EtlError {
    return new EtlError('LOCKED', `Checkpoint ${this.location} was changed by another run (conditional write failed)`, {
      cause,
      context: { component: 'checkpoint', file: this.location, reason: 'conflict' },
    });
  }

  async #head(key: string): Promise<string | null> {
    try {
      const res = await this.#client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.#bucket, Key: key }));
      return res.ETag ?? null;
    } catch (error) {
      if (isS3NotFound(error)) return null;
      throw error;
    }
  }

  async #get(key: string): Promise<{ text: string; etag: string; lastModified?: Date } | undefined> {
    try {
      const res = await this.#client.send(new (s3Sdk().GetObjectCommand)({ Bucket: this.#bucket, Key: key }));
      const text = (await res.Body?.transformToString('utf8')) ?? '';
      return { text, etag: res.ETag ?? '', lastModified: res.LastModified };
    } catch (error) {
      if (isS3NotFound(error)) return undefined;
      throw error;
    }
  }
}

// ---------------------------------------------------------------- factory

export interface CheckpointStoreContext {
  /** Pipeline name (names the default directory and the S3 sub-prefix). */
  pipelineName: string;
  /** Directory of the pipeline file (relative `dir` and the default location resolve against it). */
  baseDir: string;
  /** S3 client to use for store `s3` (else one is created from the checkpoint settings and closed by `close()`). */
  s3Client?: S3Client;
  env?: NodeJS.ProcessEnv;
  lockEnv?: LockEnvironment;
}

/**
 * The store for a pipeline's `checkpoint` settings. Local: `dir` (relative to the pipeline file), default
 * `<pipeline dir>/.klaviyo-etl/<name>`. S3: `<url>/<name>/checkpoint.json`, so several pipelines can share a prefix.
 */
export function createCheckpointStore(config: PipelineConfig['checkpoint'], ctx: CheckpointStoreContext): CheckpointStore {
  if (config.store === 's3') {
    if (!config.url) {
      throw new EtlError('CONFIG_RULE', 'checkpoint.url (s3://bucket/prefix) is required with checkpoint.store: s3', {
        context: { component: 'checkpoint' },
      });
    }
    const { bucket, prefix } = parseS3Url(config.url);
    const url = `s3://${bucket}/${prefix ? `${prefix}/` : ''}${ctx.pipelineName}`;
    const client =
      ctx.s3Client ?? createS3Client({ region: config.region, endpoint: config.endpoint, forcePathStyle: config.forcePathStyle, env: ctx.env });
    return new S3CheckpointStore({ url, client, ownsClient: !ctx.s3Client, lockEnv: ctx.lockEnv, leaseMs: config.leaseSeconds * 1000 });
  }
  const dir = config.dir
    ? isAbsolute(config.dir)
      ? config.dir
      : resolve(ctx.baseDir, config.dir)
    : join(ctx.baseDir, '.klaviyo-etl', ctx.pipelineName);
  return new LocalCheckpointStore(dir, { lockEnv: ctx.lockEnv, leaseMs: config.leaseSeconds * 1000 });
}
