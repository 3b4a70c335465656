/** What a run sets up before it reads: its state directories, the checkpoint (lock, resume) and the rejects file. */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AckTracker, Checkpointer, createCheckpointStore, pipelineHash, type ResumeState } from '../checkpoint/index.js';
import type { PipelineConfig } from '../config/pipeline.js';
import type { EtlError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SourcePosition } from '../core/record.js';
import { openRunRejects, type RunRejects } from './rejects.js';

/** The checkpoint side of a run: undefined parts for dry runs (which touch no checkpoint). */
export interface CheckpointSetup {
  checkpointer?: Checkpointer;
  /** Where the checkpoint is (for the report). */
  location?: string;
  resume?: ResumeState;
  /** A temporary state directory, removed when the run ends (`--emulator` runs without a state directory). */
  ephemeralDir?: string;
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
}

/** What {@link setUpRun} needs. */
export interface SetupOptions {
  config: PipelineConfig;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  dryRun: boolean;
  restart?: boolean;
  /** `--state-dir` (or $KLAVIYO_ETL_STATE_DIR). */
  stateDir?: string;
  /** The run uses the embedded emulator, whose state dies with the run. */
  emulator: boolean;
  /** Load-stage reject codes the destination settles before rejecting (see DestinationCapabilities). */
  settledBeforeReject?: readonly string[];
  /** Called with an error that must fail the run. */
  fail(error: EtlError): void;
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
  const checkpointer = new Checkpointer({ store, pipeline: config.name, configHash: pipelineHash(config), every: config.checkpoint.every, logger });
  const resume = await checkpointer.start({ restart: options.restart });
  checkpointer.onLockLost(options.fail);
  if (resume.resumed) logger.info('resuming an unfinished run', { runId: resume.runId, after: resume.startAfter });
  return { checkpointer, location: store.location, resume, ephemeralDir };
}

/** The rejects file: `rejects.path`, else `rejects.ndjson` (`rejects.dry-run.ndjson`) in the state directory. */
function rejectsFile(options: SetupOptions, defaultDir: string): { path: string; format: 'csv' | 'ndjson' } {
  const { rejects } = options.config;
  const file = rejects.path
    ? path.resolve(options.baseDir, rejects.path)
    : path.join(defaultDir, options.dryRun ? 'rejects.dry-run.ndjson' : 'rejects.ndjson');
  return { path: file, format: rejects.format ?? (file.endsWith('.csv') ? 'csv' : 'ndjson') };
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
  const rejects = await openRunRejects({
    ...rejectsFile(options, defaultDir),
    resumed: checkpoint.resume?.resumed ?? false,
    tracker,
    firstSeq,
    settledBeforeReject: options.settledBeforeReject,
    maxRejects: config.rejects.maxRejects,
    fail: options.fail,
  });
  const skipped = await openRunRejects({
    path: path.join(defaultDir, options.dryRun ? 'skipped.dry-run.ndjson' : 'skipped.ndjson'),
    format: 'ndjson',
    resumed: checkpoint.resume?.resumed ?? false,
    tracker,
    firstSeq,
    fail: options.fail,
  });
  const runId = checkpoint.resume?.runId ?? randomUUID();
  const emulatorOutputDir = options.emulator ? path.join(defaultDir, 'emulator-output') : undefined;
  return { ...checkpoint, runId, startAfter, firstSeq, stateDir: checkpoint.ephemeralDir ?? defaultDir, emulatorOutputDir, tracker, rejects, skipped };
}

/** Remove what a run set up only for itself. */
export async function tearDownRun(setup: RunSetup): Promise<void> {
  if (setup.ephemeralDir) await rm(setup.ephemeralDir, { recursive: true, force: true });
}
