/** What a run sets up before it reads: its state directories, the checkpoint (lock, resume) and the rejects file. */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AckTracker, Checkpointer, createCheckpointStore, mappingVersion, pipelineHash, type ResumeState } from '../checkpoint/index.js';
import type { Lock } from '../checkpoint/store.js';
import type { PipelineConfig } from '../config/pipeline.js';
import type { EtlError, RunWarning } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SourcePosition } from '../core/record.js';
import { DEFAULT_DRY_RUN_REJECTS_PATH, DEFAULT_REJECTS_PATH, expandRejectsPath, unusedRejectsPath } from '../core/rejects-path.js';
import { openRunRejects, type RunRejects } from './rejects.js';

/** The checkpoint side of a run: undefined parts for dry runs (which touch no checkpoint). */
export interface CheckpointSetup {
  checkpointer?: Checkpointer;
  /** Where the checkpoint is (for the report). */
  location?: string;
  resume?: ResumeState;
  /** A temporary state directory, removed when the run ends (`--emulator` runs without a state directory). */
  ephemeralDir?: string;
  /** The pipeline's lock, held without a checkpoint (`--from-rejects` runs), released at tear-down. */
  lock?: { release(): Promise<void> };
}

/** Everything a run sets up before it reads. */
export interface RunSetup extends CheckpointSetup {
  runId: string;
  /** Where reading starts (moved back when a resume finds bulk jobs the service forgot: see forgotten-jobs.ts). */
  startAfter?: SourcePosition;
  /** seq of the first record this run reads. */
  firstSeq: number;
  /** The pipeline's state directory (`<stateDir>/<name>` or `.klaviyo-etl/<name>` beside the pipeline file). */
  stateDir: string;
  /**
   * `--emulator` runs: where destinations that would write to real remote storage (S3) write instead
   * (`emulator-output/` in the pipeline's state directory, kept after the run).
   */
  emulatorOutputDir?: string;
  tracker: AckTracker;
  rejects: RunRejects;
  /**
   * The skipped file: rows a loader deliberately did not send (a subscription whose profile opted out since), with
   * their source location, code and reason (`skipped.ndjson` in the state directory; created on the first skip).
   */
  skipped: RunRejects;
  /** The source's incremental state to read with (none for a full refresh, or inputs a new mapping reads again). */
  watermark?: unknown;
  /** What the set-up decided that the user should know (the report's `warnings`). */
  warnings: RunWarning[];
}

/** What {@link setUpRun} needs. */
export interface SetupOptions {
  config: PipelineConfig;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  dryRun: boolean;
  restart?: boolean;
  /** `--full-refresh`: read every source in full, then replace the watermark (see Checkpointer). */
  fullRefresh?: boolean;
  /** `--from-rejects`: the run reads a rejects file, holds the pipeline's lock and touches no checkpoint. */
  fromRejects?: boolean;
  /** The source's watermark lists the inputs it read: a new mapping version reads them again. */
  rereadOnNewMapping?: boolean;
  /** `--state-dir` (or $KLAVIYO_ETL_STATE_DIR). */
  stateDir?: string;
  /** The run uses the embedded emulator, whose state dies with the run. */
  emulator: boolean;
  /** Load-stage reject codes the destination settles before rejecting (see DestinationCapabilities). */
  settledBeforeReject?: readonly string[];
  /** Called with an error that must fail the run. */
  fail(error: EtlError): void;
  /** When the run started (`{date}` of the rejects path). */
  startedAt: Date;
  /** CSV rejects: the columns of a source's rows (its header), when the run has seen them. */
  columnsOf?: (source: string) => readonly string[] | undefined;
}

/**
 * Where the checkpoint goes. An `--emulator` run never uses the pipeline's own store (its `checkpoint.dir` or S3
 * store hold the real account's progress): it checkpoints under `--state-dir` when given, else into a temporary
 * directory, since the embedded emulator's state dies with the run and its checkpoint must not outlive it either.
 */
async function checkpointSettings(options: SetupOptions, defaultDir: string): Promise<{ settings: PipelineConfig['checkpoint']; ephemeralDir?: string }> {
  const { config } = options;
  if (options.emulator) {
    const ephemeralDir = options.stateDir ? undefined : await mkdtemp(path.join(tmpdir(), `klaviyo-etl-${config.name}-`));
    return { settings: { ...config.checkpoint, store: 'local', dir: ephemeralDir ?? defaultDir }, ephemeralDir };
  }
  return { settings: config.checkpoint.store === 'local' && !config.checkpoint.dir ? { ...config.checkpoint, dir: defaultDir } : config.checkpoint };
}

/** Lock and read the checkpoint (never for dry runs). */
async function openCheckpoint(options: SetupOptions, defaultDir: string): Promise<CheckpointSetup> {
  const { config, baseDir, env, logger } = options;
  if (options.dryRun) return {};
  const { settings, ephemeralDir } = await checkpointSettings(options, defaultDir);
  const store = createCheckpointStore(settings, { pipelineName: config.name, baseDir, env });
  if (options.fromRejects) {
    // one run of a pipeline at a time, but a resend leaves the pipeline's checkpoint (watermark, unfinished run) alone
    let lock: Lock;
    try {
      lock = await store.lock();
    } catch (error) {
      await store.close?.();
      throw error;
    }
    const release = async (): Promise<void> => {
      await lock.release().finally(() => store.close?.());
    };
    return { lock: { release }, ephemeralDir };
  }
  // a new run's id and rejects file are in its first checkpoint write, so a resume after any crash appends to that file
  const runId = randomUUID();
  const freshRejects = (await rejectsFile(options, defaultDir, runId, undefined)).path;
  const checkpointer = new Checkpointer({
    store,
    pipeline: config.name,
    configHash: pipelineHash(config),
    version: mappingVersion(config),
    every: config.checkpoint.every,
    logger,
    newRunId: () => runId,
  });
  const start = { restart: options.restart, fullRefresh: options.fullRefresh, rejects: { path: freshRejects, count: 0 } };
  const resume = await checkpointer.start(start);
  checkpointer.onLockLost(options.fail);
  if (resume.resumed) logger.info('resuming an unfinished run', { runId: resume.runId, after: resume.startAfter });
  return { checkpointer, location: store.location, resume, ephemeralDir };
}

/**
 * The rejects file: a resumed run's own (kept in the checkpoint), else `rejects.path` or the default in the state
 * directory with `{runId}` and `{date}` replaced, at a name no earlier run wrote (see src/core/rejects-path.ts).
 */
async function rejectsFile(options: SetupOptions, defaultDir: string, runId: string, resume: ResumeState | undefined): Promise<{ path: string; format: 'csv' | 'ndjson' }> {
  const { rejects } = options.config;
  let file: string;
  // a resumed run's own file; a new run's is the one its first checkpoint names (a fresh name: see rejects-path.ts)
  if (resume?.rejects?.path) file = resume.rejects.path;
  else {
    const run = { runId, date: options.startedAt };
    const template = rejects.path ? path.resolve(options.baseDir, rejects.path) : path.join(defaultDir, options.dryRun ? DEFAULT_DRY_RUN_REJECTS_PATH : DEFAULT_REJECTS_PATH);
    file = await unusedRejectsPath(expandRejectsPath(template, run));
  }
  return { path: file, format: rejects.format ?? (file.endsWith('.csv') ? 'csv' : 'ndjson') };
}

/** The watermark to read with: none when the inputs it lists were read by another mapping version (they are read again). */
function watermarkOf(options: SetupOptions, resume: ResumeState | undefined): { watermark?: unknown; warning?: RunWarning } {
  if (resume?.watermark === undefined) return {};
  const version = mappingVersion(options.config);
  if (options.rereadOnNewMapping && resume.watermarkVersion !== undefined && resume.watermarkVersion !== version) {
    return {
      warning: {
        code: 'SOURCE_REREAD_NEW_MAPPING',
        message: 'the mapping changed since the last successful run: every input is read again (see docs/delivery.md, "Re-running a fixed pipeline")',
      },
    };
  }
  return { watermark: resume.watermark };
}

/**
 * Set a run up: lock and read the checkpoint, open the rejects file (a fresh run starts a new one; a resumed run
 * appends, skipping rejects it already wrote). Throws LOCKED / CHECKPOINT_* when the run cannot start.
 */
export async function setUpRun(options: SetupOptions): Promise<RunSetup> {
  const { config, baseDir } = options;
  const defaultDir = options.stateDir ? path.resolve(options.stateDir, config.name) : path.join(baseDir, '.klaviyo-etl', config.name);
  const checkpoint = await openCheckpoint(options, defaultDir);
  const startAfter = checkpoint.resume?.startAfter;
  const firstSeq = startAfter ? startAfter.seq + 1 : 0;
  const tracker = new AckTracker({ initial: startAfter, startSeq: firstSeq });
  const runId = checkpoint.resume?.runId ?? randomUUID();
  const file = await rejectsFile(options, defaultDir, runId, checkpoint.resume);
  const rejects = await openRunRejects({
    ...file,
    resumed: checkpoint.resume?.resumed ?? false,
    tracker,
    firstSeq,
    settledBeforeReject: options.settledBeforeReject,
    maxRejects: config.rejects.maxRejects,
    fail: options.fail,
    columnsOf: options.columnsOf,
  });
  const skipped = await openRunRejects({
    path: path.join(defaultDir, options.dryRun ? 'skipped.dry-run.ndjson' : 'skipped.ndjson'),
    format: 'ndjson',
    resumed: checkpoint.resume?.resumed ?? false,
    replace: true, // the latest run's skips (rows a loader did not send on purpose), not rejects to keep
    tracker,
    firstSeq,
    fail: options.fail,
  });
  const { watermark, warning } = watermarkOf(options, checkpoint.resume);
  const warnings = warning ? [warning] : [];
  const emulatorOutputDir = options.emulator ? path.join(defaultDir, 'emulator-output') : undefined;
  const stateDir = checkpoint.ephemeralDir ?? defaultDir;
  return { ...checkpoint, runId, startAfter, firstSeq, stateDir, emulatorOutputDir, tracker, rejects, skipped, watermark, warnings };
}

/** Remove what a run set up only for itself, and release a lock held without a checkpoint. */
export async function tearDownRun(setup: RunSetup): Promise<void> {
  await setup.lock?.release();
  if (setup.ephemeralDir) await rm(setup.ephemeralDir, { recursive: true, force: true });
}
