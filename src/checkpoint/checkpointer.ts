import { randomUUID } from 'node:crypto';
import { EtlError, isEtlError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { SourcePosition } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import { CHECKPOINT_VERSION, type Checkpoint, type CheckpointStatus, type RejectsState } from './format.js';
import type { CheckpointStore, Lock } from './store.js';

/**
 * Progress writes are checked against the checkpoint schema at most this often (the first and the final write of a
 * run always are): a bug that puts an invalid position or counter into the checkpoint fails the run within a second.
 */
const VALIDATE_EVERY_MS = 1000;

export interface CheckpointerOptions {
  store: CheckpointStore;
  /** Pipeline name (stored in the file). */
  pipeline: string;
  /** `pipelineHash(config)` of this run's configuration. */
  configHash: string;
  /** `mappingVersion(config)`: stored with the watermark a successful run leaves (`watermarkVersion`). */
  version?: string;
  logger?: Logger;
  /** Write on every `every`-th `update()` (the `checkpoint.every` setting); `flush`/`finish` always write. @default 1 */
  every?: number;
  now?: () => Date;
  newRunId?: () => string;
}

export interface StartOptions {
  /** Discard an unfinished run (also one whose configuration changed) and start over. @default false */
  restart?: boolean;
  /**
   * Read every source in full (no watermark), as a new run (an unfinished one is discarded, as with `restart`). The
   * last successful watermark stays stored until this run succeeds, then the one it leaves replaces it. A resume of
   * such a run reads in full too. @default false
   */
  fullRefresh?: boolean;
  /** The rejects file of a new run, stored in its first checkpoint (a resume appends to it). */
  rejects?: RejectsState;
}

/** What the runner resumes from. */
export interface ResumeState {
  runId: string;
  /** True when continuing an unfinished run of the same configuration. */
  resumed: boolean;
  /** Pass to the extractor: yield only records after this one. Undefined: from the start. */
  startAfter?: SourcePosition;
  /** Bulk jobs the unfinished run submitted and did not see finish: poll them (LoadContext.resumeJobs). */
  resumeJobs: string[];
  /** For each of `resumeJobs`, the position its rows come after (`null`: the start), when the checkpoint has it. */
  resumeJobsAfter?: Record<string, SourcePosition | null>;
  /** Counters of the unfinished run, as of its last checkpoint. */
  counters?: RunStats;
  /** Rejects written by the unfinished run (the resumed run appends to the file, skipping rejects already in it); for a new run, its file (`StartOptions.rejects`). */
  rejects?: RejectsState;
  /** Source state the unfinished run saved (ExtractContext.plan): the file list it covers, files done… */
  sourcePlan?: unknown;
  /** Source watermark of the last successful run (ExtractContext.watermark); undefined for a full refresh. */
  watermark?: unknown;
  /** The mapping version that stored `watermark` (absent in checkpoints written before versions were kept). */
  watermarkVersion?: string;
  /** This run reads every source in full (`--full-refresh`, or the resume of one). */
  fullRefresh?: boolean;
  /** With `restart`: the unfinished run that was discarded and its jobs that were not seen to finish. */
  discarded?: { runId: string; status: CheckpointStatus; pendingJobs: string[]; configChanged: boolean };
  /**
   * The checkpoint said `running` when this run took the lock: the run that wrote it died without finishing (killed
   * with SIGKILL, out of memory, its machine lost). For the run history.
   */
  lostRun?: { runId: string; startedAt: string; updatedAt: string; counters?: RunStats };
}

/** Progress the runner reports; omitted fields keep their last value. */
export interface CheckpointUpdate {
  /** `AckTracker.safePosition()`. Never moves backwards (an older position is ignored). */
  position?: SourcePosition;
  /** `Loader.pendingJobs()`. */
  pendingJobs?: string[];
  /** Where the rows of each pending job begin (see `Checkpoint.pendingJobsAfter`). */
  pendingJobsAfter?: Record<string, SourcePosition | null>;
  counters?: RunStats;
  rejects?: RejectsState;
  /** The source's run state (ExtractContext.savePlan). */
  sourcePlan?: unknown;
}

/**
 * Drives one run's checkpoint: takes the lock, decides what to resume, writes progress without blocking the hot
 * path (at most one write in flight; the latest state wins), and records the final status.
 */
export class Checkpointer {
  readonly #store: CheckpointStore;
  readonly #options: CheckpointerOptions;
  readonly #logger: Logger;
  readonly #every: number;
  /** When a progress write was last checked against the checkpoint schema (epoch ms). */
  #validatedAt = 0;
  #lock: Lock | undefined;
  #state: Checkpoint | undefined;
  #dirty = false;
  #updatesSinceWrite = 0;
  #inFlight: Promise<void> | undefined;
  #error: unknown;
  #finished = false;
  /** Set when another run took the lock over (lease ran out): no checkpoint write may follow. */
  #lost: EtlError | undefined;
  readonly #lostListeners: ((error: EtlError) => void)[] = [];

  constructor(options: CheckpointerOptions) {
    if (!/^sha256:[0-9a-f]{64}$/.test(options.configHash)) {
      throw new EtlError('INTERNAL', `Expected \`configHash\` to be a pipelineHash() value, got ${JSON.stringify(options.configHash)}`);
    }
    const every = options.every ?? 1;
    if (!Number.isInteger(every) || every < 1) {
      throw new EtlError('INTERNAL', `Expected \`every\` to be a positive integer, got ${String(every)}`);
    }
    this.#store = options.store;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#every = every;
  }

  /** The first background write error, if any (also thrown by `flush` and `finish`). */
  get error(): unknown {
    return this.#error;
  }

  /** Call `listener` if another run takes this run's lock over (the run must stop: LOCK_LOST). */
  onLockLost(listener: (error: EtlError) => void): void {
    if (this.#lost) listener(this.#lost);
    else this.#lostListeners.push(listener);
  }

  /** The checkpoint as last handed to the store (or about to be). */
  get state(): Readonly<Checkpoint> | undefined {
    return this.#state;
  }

  /**
   * Take the lock (LOCKED if another run holds it), read the checkpoint and decide:
   * - unfinished run (running / interrupted / failed) with the same config hash: resume it;
   * - unfinished run with another config hash: CHECKPOINT_MISMATCH, unless `restart`;
   * - succeeded run or none: a new run, with the last successful watermark.
   * A corrupt checkpoint is CHECKPOINT_CORRUPT unless `restart`. Writes the `running` checkpoint before returning.
   */
  async start(options: StartOptions = {}): Promise<ResumeState> {
    if (this.#lock) throw new EtlError('INTERNAL', 'Checkpointer.start() called twice');
    this.#lock = await this.#store.lock();
    this.#lock.onLost((error) => {
      this.#lost = error;
      this.#error ??= error;
      this.#logger.error('run lock lost', { checkpoint: this.#store.location, code: error.code });
      for (const listener of this.#lostListeners) listener(error);
    });
    try {
      return await this.#start(options);
    } catch (error) {
      await this.#releaseLock();
      throw error;
    }
  }

  async #start(options: StartOptions): Promise<ResumeState> {
    const restart = options.restart || options.fullRefresh;
    const previous = await this.#readPrevious(restart);
    const now = this.#now();
    const hash = this.#options.configHash;
    const unfinished = previous !== undefined && previous.status !== 'succeeded';
    const resuming = previous !== undefined && unfinished && previous.configHash === hash && !restart;
    // the last successful watermark stays stored while a full refresh runs (replaced only when it succeeds)
    const fullRefresh = resuming ? previous?.fullRefresh === true : options.fullRefresh === true;
    const stored = { watermark: previous?.watermark, watermarkVersion: previous?.watermarkVersion };
    const base: Omit<Checkpoint, 'runId' | 'startedAt' | 'pendingJobs'> = {
      version: CHECKPOINT_VERSION,
      pipeline: this.#options.pipeline,
      configHash: hash,
      status: 'running',
      updatedAt: now,
      ...(stored.watermark !== undefined ? { watermark: stored.watermark } : {}),
      ...(stored.watermarkVersion !== undefined ? { watermarkVersion: stored.watermarkVersion } : {}),
      ...(fullRefresh ? { fullRefresh: true as const } : {}),
      ...(previous?.lastSuccess ? { lastSuccess: previous.lastSuccess } : {}),
    };
    const read = {
      ...(!fullRefresh && stored.watermark !== undefined ? { watermark: stored.watermark } : {}),
      ...(!fullRefresh && stored.watermarkVersion !== undefined ? { watermarkVersion: stored.watermarkVersion } : {}),
      ...(fullRefresh ? { fullRefresh: true } : {}),
    };
    const result = previous && resuming ? this.#resume(previous, base, read) : this.#fresh(previous, base, read, options, now);
    if (previous?.status === 'running') {
      result.lostRun = { runId: previous.runId, startedAt: previous.startedAt, updatedAt: previous.updatedAt, ...(previous.counters ? { counters: previous.counters } : {}) };
    }
    await this.#store.write(this.#state!);
    this.#validatedAt = this.#clock();
    return result;
  }

  /** The stored checkpoint; a corrupt one is CHECKPOINT_CORRUPT unless the run starts over anyway. */
  async #readPrevious(restart: boolean | undefined): Promise<Checkpoint | undefined> {
    try {
      return await this.#store.read();
    } catch (error) {
      if (!(restart && isEtlError(error) && error.code === 'CHECKPOINT_CORRUPT')) throw error;
      this.#logger.warn('checkpoint corrupt; starting over (--restart)', { checkpoint: this.#store.location });
      return undefined;
    }
  }

  /** Continue the unfinished run `previous` of the same configuration. */
  #resume(previous: Checkpoint, base: Omit<Checkpoint, 'runId' | 'startedAt' | 'pendingJobs'>, read: Partial<ResumeState>): ResumeState {
    const kept = {
      ...(previous.counters ? { counters: previous.counters } : {}),
      ...(previous.rejects ? { rejects: previous.rejects } : {}),
      ...(previous.sourcePlan !== undefined ? { sourcePlan: previous.sourcePlan } : {}),
    };
    this.#state = {
      ...base,
      runId: previous.runId,
      startedAt: previous.startedAt,
      pendingJobs: [...previous.pendingJobs],
      ...(previous.pendingJobsAfter ? { pendingJobsAfter: previous.pendingJobsAfter } : {}),
      ...(previous.position ? { position: previous.position } : {}),
      ...kept,
    };
    this.#logger.info('resuming unfinished run', { runId: previous.runId, after: previous.position?.seq, pendingJobs: previous.pendingJobs.length });
    return {
      runId: previous.runId,
      resumed: true,
      resumeJobs: [...previous.pendingJobs],
      ...(previous.pendingJobsAfter ? { resumeJobsAfter: previous.pendingJobsAfter } : {}),
      ...(previous.position ? { startAfter: previous.position } : {}),
      ...kept,
      ...read,
    };
  }

  /** A new run; an unfinished `previous` is discarded only with restart (else CHECKPOINT_MISMATCH). */
  #fresh(
    previous: Checkpoint | undefined,
    base: Omit<Checkpoint, 'runId' | 'startedAt' | 'pendingJobs'>,
    read: Partial<ResumeState>,
    options: StartOptions,
    now: string,
  ): ResumeState {
    const restart = options.restart || options.fullRefresh;
    const unfinished = previous !== undefined && previous.status !== 'succeeded';
    if (previous && unfinished && !restart) {
      throw new EtlError(
        'CHECKPOINT_MISMATCH',
        `The pipeline changed since run ${previous.runId} was interrupted; its checkpoint cannot be resumed. ` + 'Run with --restart to start over.',
        { context: { component: 'checkpoint', file: this.#store.location, pipeline: this.#options.pipeline } },
      );
    }
    const runId = (this.#options.newRunId ?? randomUUID)();
    const rejects = options.rejects ? { rejects: options.rejects } : {};
    this.#state = { ...base, runId, startedAt: now, pendingJobs: [], ...rejects };
    const result: ResumeState = { runId, resumed: false, resumeJobs: [], ...read, ...rejects };
    if (previous && unfinished) {
      result.discarded = { runId: previous.runId, status: previous.status, pendingJobs: [...previous.pendingJobs], configChanged: previous.configHash !== base.configHash };
      // Its pending jobs are not polled any more: name them, so their import errors can be looked up by hand.
      this.#logger.warn('discarding unfinished run (--restart)', { runId: previous.runId, pendingJobs: previous.pendingJobs });
    }
    return result;
  }

  /**
   * Record progress. Synchronous and cheap: the state is merged and a write is scheduled in the background when
   * none is in flight (else the latest state is written right after the current write). Never throws for a
   * failed write: see `error`, `flush`, `finish`.
   */
  update(partial: CheckpointUpdate): void {
    const state = this.#requireRunning();
    if (partial.position && (!state.position || partial.position.seq >= state.position.seq)) state.position = partial.position;
    if (partial.pendingJobs) state.pendingJobs = [...partial.pendingJobs];
    if (partial.pendingJobsAfter) state.pendingJobsAfter = partial.pendingJobsAfter;
    if (partial.counters) state.counters = partial.counters;
    if (partial.rejects) state.rejects = partial.rejects;
    if (partial.sourcePlan !== undefined) state.sourcePlan = partial.sourcePlan;
    this.#dirty = true;
    this.#updatesSinceWrite++;
    if (this.#updatesSinceWrite >= this.#every) this.#schedule();
  }

  /**
   * Move the position back (the only way it moves backwards): a resumed run sends the rows after `position` again
   * (`undefined`: from the start) because Klaviyo forgot a job holding them. `pendingJobs` are the jobs still followed.
   */
  rewind(position: SourcePosition | undefined, pendingJobs: string[], pendingJobsAfter: Record<string, SourcePosition | null>): void {
    const state = this.#requireRunning();
    if (position) state.position = position;
    else delete state.position;
    state.pendingJobs = [...pendingJobs];
    state.pendingJobsAfter = pendingJobsAfter;
    this.#dirty = true;
    this.#schedule();
  }

  /** Write the latest state now (if anything changed) and wait for it. Throws the first write error. */
  async flush(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    if (this.#error === undefined && this.#dirty) {
      this.#schedule();
      while (this.#inFlight) await this.#inFlight;
    }
    if (this.#error !== undefined) throw this.#error;
  }

  /**
   * Record the final status and release the lock. `succeeded` clears the position and jobs and stores
   * `watermark` (when given; after a full refresh also none) as the last successful watermark, with this run's
   * mapping `version`; other statuses keep the resume state.
   * The lock is released even when the final write fails (which is then thrown).
   */
  async finish(status: Exclude<CheckpointStatus, 'running'>, options: { watermark?: unknown } & CheckpointUpdate = {}): Promise<void> {
    const state = this.#requireRunning();
    try {
      while (this.#inFlight) await this.#inFlight.catch(() => undefined);
      const { watermark, ...progress } = options;
      if (progress.position && (!state.position || progress.position.seq >= state.position.seq)) state.position = progress.position;
      if (progress.pendingJobs) state.pendingJobs = [...progress.pendingJobs];
      if (progress.pendingJobsAfter) state.pendingJobsAfter = progress.pendingJobsAfter;
      if (progress.counters) state.counters = progress.counters;
      if (progress.rejects) state.rejects = progress.rejects;
      if (progress.sourcePlan !== undefined) state.sourcePlan = progress.sourcePlan;
      const now = this.#now();
      state.status = status;
      state.updatedAt = now;
      state.finishedAt = now;
      if (status === 'succeeded') {
        delete state.position;
        delete state.sourcePlan;
        state.pendingJobs = [];
        delete state.pendingJobsAfter;
        // a full refresh replaces the stored watermark even by none (a source that keeps none)
        if (watermark !== undefined || state.fullRefresh) {
          if (watermark === undefined) delete state.watermark;
          else state.watermark = watermark;
          if (this.#options.version === undefined) delete state.watermarkVersion;
          else state.watermarkVersion = this.#options.version;
        }
        delete state.fullRefresh;
        state.lastSuccess = { runId: state.runId, finishedAt: now };
      }
      this.#finished = true;
      this.#dirty = false;
      // the lock is another run's now: its checkpoint must not be overwritten
      if (this.#lost) throw this.#lost;
      await this.#store.write(state);
      if (this.#error !== undefined && status !== 'succeeded') {
        this.#logger.warn('an earlier checkpoint write failed; the final one succeeded', { error: String(this.#error) });
      }
    } finally {
      await this.#releaseLock();
    }
  }

  /** Release the lock without writing (the process is going down without a final status). */
  async abandon(): Promise<void> {
    this.#finished = true;
    while (this.#inFlight) await this.#inFlight.catch(() => undefined);
    await this.#releaseLock();
  }

  #schedule(): void {
    if (this.#inFlight || this.#error !== undefined || this.#finished) return;
    const state = this.#state!;
    this.#dirty = false;
    this.#updatesSinceWrite = 0;
    state.updatedAt = this.#now();
    // Snapshot so later updates do not change what this write sends.
    const snapshot: Checkpoint = { ...state, pendingJobs: [...state.pendingJobs] };
    // schema-checked at most once per VALIDATE_EVERY_MS (the first and the final write always are)
    const now = this.#clock();
    const validate = now - this.#validatedAt >= VALIDATE_EVERY_MS;
    if (validate) this.#validatedAt = now;
    this.#inFlight = this.#store
      .write(snapshot, { validate })
      .catch((error: unknown) => {
        this.#error ??= error;
        this.#logger.error('checkpoint write failed', {
          checkpoint: this.#store.location,
          code: isEtlError(error) ? error.code : undefined,
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#dirty && this.#updatesSinceWrite >= this.#every) this.#schedule();
      });
  }

  #requireRunning(): Checkpoint {
    if (!this.#state || this.#finished) throw new EtlError('INTERNAL', 'Checkpointer is not running (call start() first)');
    return this.#state;
  }

  async #releaseLock(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release().catch((error: unknown) => {
      this.#logger.warn('could not release checkpoint lock', { error: error instanceof Error ? error.message : String(error) });
    });
  }

  #now(): string {
    return (this.#options.now?.() ?? new Date()).toISOString();
  }

  #clock(): number {
    return this.#options.now?.().getTime() ?? Date.now();
  }
}
