/** One run from set-up to outcome: wire the components, read everything, close, and settle the checkpoint. */
import type { PipelineSource } from '../config/load.js';
import type { PipelineConfig } from '../config/pipeline.js';
import { isEtlError, redact, type EtlError, type RunWarning } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ItemSpan, SourcePosition } from '../core/record.js';
import type { CountUpTo, RunStats } from '../core/stats.js';
import type { Destination } from '../destinations/types.js';
import type { SourceReader } from '../extract/types.js';
import type { EmbeddedKlaviyo } from './emulator.js';
import { resendForgottenJobs, type JobStarts } from './forgotten-jobs.js';
import type { RunOptions } from './options.js';
import { startProgress } from './progress.js';
import { preflight } from './preflight.js';
import { readAll } from './read-loop.js';
import type { RunOutcome } from './report.js';
import type { ResendRow } from './from-rejects.js';
import { rowFiller, type SourceColumns } from './reject-rows.js';
import type { RunSetup } from './setup.js';
import { openDestination, openSource, openTransform, type PipelineComponents, type WiringContext } from './wiring.js';

/** A run in progress: what it set up, and the parts it opened. */
export interface LiveRun {
  options: RunOptions;
  config: PipelineConfig;
  /** The pipeline file: its text and directory (the pre-flight check locates its problems in it). */
  pipelineSource: PipelineSource;
  parts: PipelineComponents;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  dryRun: boolean;
  startedAt: Date;
  klaviyo?: EmbeddedKlaviyo;
  stats: RunStats;
  setup: RunSetup;
  /** The first error that must fail the run (a failed rejects write, too many rejects). */
  failure: { fatal?: EtlError };
  reader?: SourceReader;
  destination?: Destination;
  /** Records read by this run. */
  read: { count: number };
  /** `--from-rejects`: the rows to send again, read instead of the source. */
  resend?: ResendRow[];
  /** Each source's columns (the rows of rejects that carry only their text). */
  columns: SourceColumns;
  /** Where each bulk job's rows begin (for the checkpoint). */
  jobStarts: JobStarts;
  /** What the run decided that the user should know (the report's `warnings`). */
  warnings: RunWarning[];
  /** Rows skipped, by position: a resume skips again the rows skipped past the checkpoint position. */
  skipped: CountUpTo;
  /** Of those, the rows a loader skipped (`RunStats.skippedByCode`), by position, as the checkpoint stores them. */
  loaderSkipped: CountUpTo;
  /**
   * Jobs that finished while the rejects file still had writes to make durable (their import errors among them):
   * the checkpoint keeps them pending until those writes are, so a failed write leaves them for the next run.
   */
  jobsWritingRejects: Set<string>;
}

/** The bulk jobs the checkpoint lists as pending. */
function checkpointJobs(run: LiveRun): string[] | undefined {
  return run.destination && [...run.destination.pendingJobs(), ...run.jobsWritingRejects];
}

/** The counters a checkpoint at `position` stores (skipped rows up to it only). */
function countersAt(run: LiveRun, position: SourcePosition | undefined): RunStats {
  const seq = position?.seq ?? -1;
  const counters: RunStats = { ...run.stats, rows: { ...run.stats.rows, skipped: run.skipped.upTo(seq) }, skippedBy: run.skipped.byUpTo(seq) };
  const byCode = run.loaderSkipped.byUpTo(seq);
  if (Object.keys(byCode).length > 0) counters.skippedByCode = byCode;
  else delete counters.skippedByCode;
  return counters;
}

function failure(err: unknown): { code: string; message: string } {
  return isEtlError(err)
    ? { code: err.code, message: redact(err.message) }
    : { code: 'INTERNAL', message: redact(err instanceof Error ? err.message : String(err)) };
}

/** The report keeps this many warnings of one code (the log has them all). */
const MAX_WARNINGS_PER_CODE = 20;

/** The context the components are wired with: acks settle rows and move the checkpoint, rejects are routed. */
function wiringOf(run: LiveRun, drainSignal: AbortSignal): WiringContext {
  const { setup, stats } = run;
  const fillRows = rowFiller(run.config.source, run.columns);
  const saveProgress = (): void => {
    const pendingJobs = checkpointJobs(run);
    const position = setup.tracker.safePosition();
    setup.checkpointer?.update({
      position,
      pendingJobs,
      ...(pendingJobs ? { pendingJobsAfter: run.jobStarts.of(pendingJobs) } : {}),
      counters: countersAt(run, position),
      rejects: { path: setup.rejects.path, count: setup.rejects.written },
    });
  };
  return {
    ...run,
    redisUrl: run.options.redisUrl ?? run.env.KLAVIYO_ETL_REDIS_URL,
    onPlanned: run.options.onPlannedRequest,
    signal: run.options.signal,
    drainSignal,
    onAck: (items: ItemSpan[], info?: { jobId?: string }) => {
      // before settling them: the position then is before the job's first row
      if (info?.jobId) run.jobStarts.acknowledged(info.jobId, setup.tracker.safePosition());
      for (const item of items) setup.tracker.settled(item.first);
      saveProgress();
    },
    onReject: (rejects) => {
      fillRows(rejects);
      setup.rejects.route(rejects);
      stats.rows.rejected = setup.rejects.count;
    },
    onSkip: (skips) => {
      // counted before they settle: a checkpoint past them claims them skipped; a resume before them skips them again
      for (const s of skips) {
        stats.rows.skipped++;
        run.skipped.add(s.seq, 1, s.code);
        run.loaderSkipped.add(s.seq, 1, s.code);
        stats.skippedBy[s.code] = (stats.skippedBy[s.code] ?? 0) + 1; // skippedBy adds up to rows.skipped
        const byCode = (stats.skippedByCode ??= {});
        byCode[s.code] = (byCode[s.code] ?? 0) + 1;
      }
      setup.skipped.route(skips); // settles them in the tracker once written
    },
    warn: (warning: RunWarning) => {
      run.logger.warn(warning.message, { code: warning.code, file: warning.file });
      // one line each in the summary: a glob of a thousand empty files says so in the first ones
      if (run.warnings.filter((w) => w.code === warning.code).length < MAX_WARNINGS_PER_CODE) run.warnings.push(warning);
    },
    onJobDone: (jobId: string) => {
      const tail = setup.rejects.lastWrite;
      if (tail) {
        run.jobsWritingRejects.add(jobId);
        void tail.then(() => {
          if (setup.rejects.error) return;
          run.jobsWritingRejects.delete(jobId);
          saveProgress();
        });
      }
      saveProgress();
    },
  };
}

/** Wire the components and read everything; the outcome, with the error of a failed run. */
async function pump(run: LiveRun, drainSignal: AbortSignal): Promise<RunOutcome> {
  const { options, setup, stats } = run;
  const wiring = wiringOf(run, drainSignal);
  // the source's data against the mapping, before the first request (throws the problems it finds; not for
  // --from-rejects, which reads no source); empty files are reported by the reader as it comes to them
  const warnings = run.resend ? [] : await preflight({ config: run.config, source: run.pipelineSource, components: run.options.components, env: run.env, watermark: run.setup.watermark });
  for (const w of warnings) {
    if (w.code !== 'SOURCE_FILE_EMPTY' && w.code !== 'SOURCE_FILE_NO_ROWS') wiring.warn({ code: w.code, message: w.message });
  }
  run.destination = openDestination(wiring);
  const warning = await resendForgottenJobs(setup, run.destination, run.jobStarts, run.logger);
  if (warning) run.warnings.push(warning);
  run.reader = openSource(wiring, { since: options.since, until: options.until, limit: options.limit, shard: options.shard });
  const transformer = openTransform(wiring);
  const loop = { reader: run.reader, transformer, destination: run.destination, tracker: setup.tracker, stats, rejects: setup.rejects, skipped: run.skipped };
  await readAll({ ...loop, route: wiring.onReject, fatal: () => run.failure.fatal, signal: options.signal, firstSeq: setup.firstSeq, read: run.read, columns: run.columns });
  // After an interrupt, bulk jobs still processing are not waited for: they stay in the checkpoint's
  // pendingJobs and the next run polls them (and collects their import errors).
  await run.destination.close({ stopWaitingForJobs: options.signal });
  if (run.failure.fatal) throw run.failure.fatal;
  return { outcome: options.signal?.aborted ? 'interrupted' : 'completed' };
}

/**
 * Run the pipeline to its outcome. Throws only a CONFIG_* error (a mapping that cannot work, found when the
 * transform compiles); every other failure is the outcome `failed`.
 */
export async function execute(run: LiveRun): Promise<RunOutcome> {
  const { options, logger } = run;
  // After an interrupt, in-flight requests get a bounded time to finish; then they are cut off.
  const drain = new AbortController();
  const onInterrupt = (): void => {
    setTimeout(() => drain.abort(), options.drainTimeoutMs ?? 30_000).unref();
  };
  options.signal?.addEventListener('abort', onInterrupt, { once: true });
  const stopProgress = startProgress({
    stats: run.stats,
    source: () => run.reader?.progress?.(),
    logger,
    onProgress: options.onProgress,
    logIntervalMs: options.progressLogIntervalMs,
  });
  let end: RunOutcome;
  try {
    end = await pump(run, drain.signal);
  } catch (err) {
    if (isEtlError(err) && err.code.startsWith('CONFIG_')) throw err;
    end = options.signal?.aborted ? { outcome: 'interrupted' } : { outcome: 'failed', error: failure(err) };
    if (end.error) logger.error('run failed', { error: end.error });
    await run.destination?.abort().catch(() => {});
  } finally {
    options.signal?.removeEventListener('abort', onInterrupt);
    stopProgress();
    await run.reader?.close?.().catch(() => {});
    await run.setup.rejects.close(); // a failure fails the run (finish)
    await run.setup.skipped.close();
  }
  return end;
}

/**
 * Settle the run's counters and its checkpoint: a failed rejects write fails the run; the watermark moves only
 * after a complete, unbounded run.
 */
export async function finish(run: LiveRun, end: RunOutcome): Promise<RunOutcome> {
  const { stats, setup, options } = run;
  const rejectsError = setup.rejects.error ?? setup.skipped.error;
  if (rejectsError && end.outcome !== 'failed') {
    end = { outcome: 'failed', error: { code: rejectsError.code, message: redact(rejectsError.message) } };
    run.logger.error('run failed', { error: end.error });
  }
  stats.rows.read = setup.firstSeq + run.read.count;
  stats.rows.rejected = setup.rejects.count;
  const done = end.outcome === 'completed' ? stats.rows.read : (setup.tracker.safePosition()?.seq ?? -1) + 1;
  stats.rows.loaded = Math.max(0, done - stats.rows.rejected - stats.rows.skipped);
  if (!setup.checkpointer) return end;
  const bounded = options.since !== undefined || options.until !== undefined || options.limit !== undefined || run.reader?.boundedRun;
  const watermark = end.outcome === 'completed' && !bounded ? run.reader?.watermark?.() : undefined;
  try {
    await setup.checkpointer.finish(end.outcome === 'completed' ? 'succeeded' : end.outcome, {
      ...(watermark !== undefined ? { watermark } : {}),
      position: setup.tracker.safePosition(),
      pendingJobs: checkpointJobs(run) ?? [],
      pendingJobsAfter: run.jobStarts.of(checkpointJobs(run) ?? []),
      counters: countersAt(run, setup.tracker.safePosition()),
      rejects: { path: setup.rejects.path, count: setup.rejects.written },
    });
  } catch (err) {
    end = { outcome: 'failed', error: end.error ?? failure(err) };
  }
  return end;
}
