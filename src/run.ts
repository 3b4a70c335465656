import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setImmediate as nextLoopTurn } from 'node:timers/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { EtlError, isEtlError, redact } from './core/errors.js';
import { silentLogger, type Logger } from './core/logger.js';
import type { ItemSpan, LoadItem, Reject, SourcePosition, SourceRecord, TransformOutput } from './core/record.js';
import { carryOver, CountUpTo, newStats, type RunStats } from './core/stats.js';
import { loadPipelineFileOrThrow } from './config/load.js';
import { getExtractor } from './extract/registry.js';
import type { SourceProgress, SourceReader } from './extract/types.js';
import { createExportTransformer } from './transform/export.js';
import { createTransformer } from './transform/registry.js';
import { openRejects } from './core/rejects.js';
import { createDestination, createExportDestination, type Destination } from './destination.js';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from './emulator/index.js';
import { AckTracker, Checkpointer, createCheckpointStore, pipelineHash, planResend, type ResumeState } from './checkpoint/index.js';
import { formatSummary, statusFor, type RunReport } from './report.js';

/** Options of one run (the `klaviyo-etl run` command is a thin wrapper around `run`). */
export interface RunOptions {
  /** Path of the pipeline file. */
  pipelineFile: string;
  /** Environment for `${VAR}` interpolation, the API key and KLAVIYO_BASE_URL. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Start an embedded Klaviyo emulator and run against it (`true`, or emulator options). */
  emulator?: boolean | EmulatorOptions;
  /** Read, transform, batch and validate everything; send nothing to Klaviyo and touch no checkpoint. */
  dryRun?: boolean;
  /** Ignore an unfinished run's checkpoint (even one whose pipeline changed) and start over. */
  restart?: boolean;
  /** Write the JSON run report here. */
  reportFile?: string;
  /**
   * Directory for the default checkpoint and rejects locations (`<stateDir>/<pipeline name>/`), instead of
   * `.klaviyo-etl/` beside the pipeline file. @default $KLAVIYO_ETL_STATE_DIR
   */
  stateDir?: string;
  /** Backfill bounds for one run (cursor sources), without moving the stored watermark. */
  since?: string;
  until?: string;
  /** Read at most this many records (sample runs; the watermark is not moved). */
  limit?: number;
  /** Share rate limits with other processes through this Redis URL. @default $KLAVIYO_ETL_REDIS_URL */
  redisUrl?: string;
  /** After an interrupt, how long in-flight requests may take to finish before they are cut off. @default 30000 */
  drainTimeoutMs?: number;
  logger?: Logger;
  /** Abort to stop reading, drain in-flight requests, checkpoint and report `interrupted`. */
  signal?: AbortSignal;
  /**
   * Called about once a second with the live counters, and how far the source got through its input when it can
   * tell (local CSV files: bytes read / total bytes, for an ETA).
   */
  onProgress?: (stats: RunStats, source?: SourceProgress) => void;
  /** Log a `progress` line at info level this often (nightly job logs). 0 disables. @default 10000 */
  progressLogIntervalMs?: number;
}

/**
 * Run one pipeline: source → transform → destination, routing bad rows to the rejects file and checkpointing the
 * acknowledged prefix so an interrupted run resumes where it stopped.
 *
 * Throws EtlError only for an invalid pipeline file (codes CONFIG_*), and for LOCKED / CHECKPOINT_* when the run
 * cannot start. Every other failure is in the returned report with status `failed`.
 */
export async function run(options: RunOptions): Promise<RunReport> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const dryRun = options.dryRun ?? false;
  const startedAt = new Date();
  const pipelineFile = path.resolve(options.pipelineFile);
  // the state directory locates the checkpoint the rules keep the rejects file away from
  const { config, source } = await loadPipelineFileOrThrow(pipelineFile, { env, stateDir: options.stateDir });
  const baseDir = source.dir;
  if ((options.since !== undefined || options.until !== undefined) && config.source.type !== 'postgres') {
    // never a run that quietly ignores its bounds and reads everything
    throw new EtlError('USAGE', `--since/--until bound a cursor and apply to postgres sources, not to a ${config.source.type} source`);
  }
  const stateDir = options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR;
  const defaultDir = stateDir ? path.resolve(stateDir, config.name) : path.join(baseDir, '.klaviyo-etl', config.name);
  const stats = newStats();

  // ---- checkpoint: lock, and what to resume (never for dry runs)
  let checkpointer: Checkpointer | undefined;
  let ephemeralDir: string | undefined;
  let checkpointLocation: string | undefined;
  let resume: ResumeState | undefined;
  if (!dryRun) {
    // The embedded emulator's state dies with the run, so its checkpoint must not outlive it either: without an
    // explicit state directory, an --emulator run checkpoints into a temporary directory.
    if (options.emulator && !stateDir && config.checkpoint.store === 'local' && !config.checkpoint.dir) {
      ephemeralDir = await mkdtemp(path.join(tmpdir(), `klaviyo-etl-${config.name}-`));
    }
    const checkpointConfig =
      config.checkpoint.store === 'local' && !config.checkpoint.dir
        ? { ...config.checkpoint, dir: ephemeralDir ?? defaultDir }
        : config.checkpoint;
    const store = createCheckpointStore(checkpointConfig, { pipelineName: config.name, baseDir, env });
    checkpointLocation = store.location;
    checkpointer = new Checkpointer({
      store,
      pipeline: config.name,
      configHash: pipelineHash(config),
      every: config.checkpoint.every,
      logger,
    });
    resume = await checkpointer.start({ restart: options.restart });
    // the report and the checkpoint of a resumed run count every attempt's requests, retries, jobs and items
    if (resume.resumed && resume.counters) carryOver(stats, resume.counters);
    if (resume.resumed) logger.info('resuming an unfinished run', { runId: resume.runId, after: resume.startAfter });
  }
  const runId = resume?.runId ?? randomUUID();
  // `let`: a resume whose pending bulk jobs Klaviyo forgot starts reading earlier (see resendForgottenJobs)
  let startAfter = resume?.startAfter;
  let firstSeq = startAfter ? startAfter.seq + 1 : 0;

  // ---- rejects: a fresh run starts a new file; a resumed run appends, skipping rejects it already wrote
  const rejectsPath = config.rejects.path
    ? path.resolve(baseDir, config.rejects.path)
    : path.join(defaultDir, dryRun ? 'rejects.dry-run.ndjson' : 'rejects.ndjson');
  const rejectsFormat = config.rejects.format ?? (rejectsPath.endsWith('.csv') ? 'csv' : 'ndjson');
  const previous = resume?.resumed ? await readRejectKeys(rejectsPath, rejectsFormat) : { keys: new Set<string>(), seqs: new Set<number | string>() };
  // a path that cannot be removed (its directory is a file…) fails the run when the first reject is written
  if (!resume?.resumed) await rm(rejectsPath, { force: true }).catch(() => undefined);
  const rejects = openRejects({ path: rejectsPath, format: rejectsFormat, append: resume?.resumed ?? false });
  const rejectedSeqs = previous.seqs;
  // Transform and extract rejects name each record once per run, so they are counted, not remembered: a run
  // rejecting millions of rows must not hold a key and a seq for each (~80 bytes per row, times V8's heap slack).
  // Load rejects can repeat (several items of one group) and are deduplicated through the sets.
  let onceRejects = 0;
  const rejectedCount = (): number => rejectedSeqs.size + onceRejects;

  let tracker = new AckTracker({ initial: startAfter, startSeq: firstSeq });
  // Where the rows of each bulk job begin (the tracker's position when the job was acknowledged), for the checkpoint.
  const jobsAfter = new Map<string, SourcePosition | null>(Object.entries(resume?.resumeJobsAfter ?? {}));
  const pendingJobsAfter = (pending: string[]): Record<string, SourcePosition | null> =>
    Object.fromEntries(pending.map((id) => [id, jobsAfter.get(id) ?? null]));
  const warnings: string[] = [];
  let destination: Destination | undefined;
  let reader: SourceReader | undefined;
  let emulator: EmulatorHandle | undefined;
  let outcome: 'completed' | 'failed' | 'interrupted' = 'completed';
  let error: { code: string; message: string } | undefined;
  let fatal: EtlError | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let progressLogTimer: NodeJS.Timeout | undefined;
  let readThisRun = 0;

  // Jobs that finished while the rejects file still had writes to make durable (their import errors among them): the
  // checkpoint keeps them pending until those writes are, so a failed write leaves them for the next run to poll.
  const jobsWritingRejects = new Set<string>();
  const checkpointJobs = (): string[] | undefined => destination && [...destination.pendingJobs(), ...jobsWritingRejects];
  // A resume skips again the rows skipped past the checkpoint position: the checkpoint counts those up to it only.
  const skipped = new CountUpTo(stats.rows.skipped);
  const countersAt = (position: SourcePosition | undefined): RunStats => ({
    ...stats,
    rows: { ...stats.rows, skipped: skipped.upTo(position?.seq ?? -1) },
  });
  const saveProgress = (): void => {
    const pendingJobs = checkpointJobs();
    const position = tracker.safePosition();
    checkpointer?.update({
      position,
      pendingJobs,
      ...(pendingJobs ? { pendingJobsAfter: pendingJobsAfter(pendingJobs) } : {}),
      counters: countersAt(position),
      rejects: { path: rejectsPath, count: rejects.count },
    });
  };

  // Rejects writes are chained; the read loop awaits the chain's tail every REJECTS_BACKLOG rejects, so a source
  // whose rows are mostly rejected cannot queue unbounded text in memory (5M rows, 80% rejected: OOM at 4 GB).
  let rejectsTail: Promise<void> | undefined;
  let rejectsUnawaited = 0;
  // The checkpoint must not pass a rejected row before its reject is in the file (else a failed write loses it
  // for good): each write holds its first row in the tracker until the write succeeded. A failed write fails the
  // run (REJECTS_WRITE) and its hold is never released, so the next run re-reads those rows.
  let rejectsError: EtlError | undefined;
  const rejectsFailed = (err: unknown): void => {
    rejectsError ??= isEtlError(err) ? err : new EtlError('REJECTS_WRITE', `Cannot write the rejects file: ${String(err)}`);
    fatal ??= rejectsError;
  };
  const onReject = (list: Reject[]): void => {
    let hold: number | undefined;
    for (const r of list) {
      if (r.seq >= firstSeq && !SETTLED_BEFORE_REJECT.has(r.code) && (hold === undefined || r.seq < hold)) hold = r.seq;
    }
    if (hold !== undefined) {
      try {
        tracker.produced(hold);
      } catch {
        hold = undefined; // already behind the checkpoint position
      }
    }
    const fresh: Reject[] = [];
    for (const r of list) {
      if (r.stage === 'load' && !SETTLED_BEFORE_REJECT.has(r.code) && r.seq >= firstSeq) tracker.settled(r.seq);
      const key = rejectKey(r);
      if (previous.keys.has(key)) continue; // written by the interrupted run before this resume
      fresh.push(r);
      if (r.stage !== 'load' && r.seq >= 0 && !rejectedSeqs.has(r.seq)) {
        onceRejects++;
        continue;
      }
      previous.keys.add(key);
      rejectedSeqs.add(r.seq >= 0 ? r.seq : key); // an import error without a position counts on its own
    }
    if (fresh.length > 0) {
      try {
        rejectsTail = rejects.write(fresh);
        rejectsUnawaited += fresh.length;
        const held = hold;
        if (held !== undefined) {
          void rejectsTail.then(() => {
            if (rejects.error) rejectsFailed(rejects.error);
            else tracker.settled(held);
          });
        }
      } catch (err) {
        rejectsFailed(err);
      }
    } else if (hold !== undefined) tracker.settled(hold);
    stats.rows.rejected = rejectedCount();
    const max = config.rejects.maxRejects;
    if (max !== undefined && rejectedCount() > max && !fatal) {
      fatal = new EtlError('KLAVIYO_REJECTED', `more than ${max} rows rejected (rejects.maxRejects); stopping`);
    }
  };
  const onAck = (items: ItemSpan[], info?: { jobId?: string }): void => {
    // before settling them: the position then is before the job's first row
    if (info?.jobId) jobsAfter.set(info.jobId, tracker.safePosition() ?? null);
    for (const item of items) tracker.settled(item.first);
    saveProgress();
  };

  // After an interrupt, in-flight requests get a bounded time to finish; then they are cut off.
  const drain = new AbortController();
  const onInterrupt = (): void => {
    setTimeout(() => drain.abort(), options.drainTimeoutMs ?? 30_000).unref();
  };
  options.signal?.addEventListener('abort', onInterrupt, { once: true });

  try {
    const isExport = config.transform.type === 'export';
    if (options.emulator && (!dryRun || isExport)) {
      emulator = await startEmulator({ port: 0, host: '127.0.0.1', ...(typeof options.emulator === 'object' ? options.emulator : {}) });
      logger.info('embedded emulator started', { url: emulator.url });
    }
    if (options.onProgress) {
      const onProgress = options.onProgress;
      progressTimer = setInterval(() => onProgress(stats, reader?.progress?.()), 1000);
      progressTimer.unref();
    }
    const logEvery = options.progressLogIntervalMs ?? 10_000;
    if (logEvery > 0) {
      const begun = Date.now();
      progressLogTimer = setInterval(() => logger.info('progress', progressFields(stats, reader?.progress?.(), Date.now() - begun)), logEvery);
      progressLogTimer.unref();
    }
    const emulatorLimits = typeof options.emulator === 'object' ? options.emulator.limits : undefined;
    const destinationContext = {
      baseDir,
      env,
      logger,
      stats,
      dryRun,
      signal: drain.signal,
      baseUrl: emulator?.url,
      apiKey: emulator ? (env.KLAVIYO_API_KEY ?? 'pk_emulator_demo_key_0000000000') : undefined,
      rateScale: emulatorLimits === 'off' ? 1000 : typeof emulatorLimits === 'number' ? emulatorLimits : undefined,
      redisUrl: options.redisUrl ?? env.KLAVIYO_ETL_REDIS_URL,
      resumeJobs: resume?.resumeJobs,
      onAck,
      onReject,
      onJobDone: (jobId: string) => {
        const tail = rejectsTail;
        if (tail) {
          jobsWritingRejects.add(jobId);
          void tail.then(() => {
            if (rejects.error) return;
            jobsWritingRejects.delete(jobId);
            saveProgress();
          });
        }
        saveProgress();
      },
    };
    // exports (klaviyo source → csv/s3): rows go to a CSV file, published when the run completes
    destination = isExport
      ? createExportDestination(config, {
          ...destinationContext,
          runId,
          startedAt,
          resumed: resume?.resumed ?? false,
          startAfter,
          stagingDir: ephemeralDir ?? defaultDir,
          interrupted: () => options.signal?.aborted ?? false,
        })
      : createDestination(config, destinationContext);
    if (resume?.resumed && resume.resumeJobs.length > 0) {
      const forgotten = await destination.forgottenJobs();
      if (forgotten.length > 0) {
        // Klaviyo forgot jobs of the interrupted run (7 days after they end): their rows are read and sent again
        // (an upsert; safe to repeat), and the checkpoint moves back so that a crash now does not skip them.
        const plan = planResend(forgotten, resume.resumeJobs, resume.resumeJobsAfter);
        destination.dropJobs(plan.drop);
        startAfter = plan.startAfter;
        firstSeq = startAfter ? startAfter.seq + 1 : 0;
        tracker = new AckTracker({ initial: startAfter, startSeq: firstSeq });
        checkpointer?.rewind(startAfter, plan.keep, pendingJobsAfter(plan.keep));
        const resent = (resume.startAfter?.seq ?? -1) - (startAfter?.seq ?? -1);
        warnings.push(
          `Klaviyo no longer knows ${forgotten.length} profile import job(s) of the interrupted run (${forgotten.join(', ')}; ` +
            `it forgets jobs 7 days after they end): their import errors are lost, and the ${resent} row(s) after ` +
            `${startAfter ? `seq ${startAfter.seq}` : 'the start'} that the checkpoint had passed were sent again`,
        );
        logger.warn('profile import jobs unknown to Klaviyo; sending their rows again', { jobs: forgotten, after: startAfter?.seq, rows: resent });
      }
    }
    // the export source reads Klaviyo: with --emulator, from the embedded emulator
    const sourceEnv =
      emulator && config.source.type === 'klaviyo'
        ? { ...env, KLAVIYO_BASE_URL: emulator.url, KLAVIYO_API_KEY: env.KLAVIYO_API_KEY ?? 'pk_emulator_demo_key_0000000000' }
        : env;
    reader = getExtractor(config.source.type).create(config.source as never, {
      baseDir,
      env: sourceEnv,
      stats,
      logger,
      signal: options.signal,
      startAfter,
      watermark: resume?.watermark,
      plan: resume?.sourcePlan,
      savePlan: checkpointer ? (sourcePlan: unknown) => checkpointer!.update({ sourcePlan }) : undefined,
      since: options.since,
      until: options.until,
      limit: options.limit,
    });
    const transformer = config.transform.type === 'export' ? createExportTransformer(config.transform) : createTransformer(config.transform);
    const dest = destination;
    const throwIfFatal = (): void => {
      if (fatal) throw fatal;
    };
    // Returns a promise only when items went to the destination: most rows of a grouped source produce none, and
    // skipping the await saves a promise and a microtask per row.
    const handle = (out: TransformOutput, closeBefore: number): Promise<void> | undefined => {
      for (const item of out.items) tracker.produced(item.first, item.last);
      if (out.rejects.length > 0) onReject(out.rejects); // before closeBefore: the rows stay held until written
      tracker.closeBefore(closeBefore);
      if (out.skipped) {
        stats.rows.skipped += out.skipped;
        skipped.add(closeBefore - 1, out.skipped);
      }
      if (out.items.length > 0) {
        countItems(stats, out.items);
        return dest.write(out.items).then(throwIfFatal);
      }
      throwIfFatal();
      return undefined;
    };
    let lastSeq = firstSeq - 1;
    let yieldAt = performance.now() + YIELD_AFTER_MS;
    // Records arrive in the arrays the source parses them in (a chunk of a file), when the source offers them.
    const batches = reader.batches ? reader.batches() : oneByOne(reader.records());
    read: for await (const batch of batches) {
      for (let i = 0; i < batch.length; i++) {
        const record = batch[i]!;
        readThisRun++;
        stats.rows.read = firstSeq + readThisRun;
        tracker.read(record.pos);
        lastSeq = record.pos.seq;
        const out = transformer.push(record);
        const pending = handle(out, transformer.held() ?? record.pos.seq + 1);
        if (pending) await pending;
        if (rejectsUnawaited >= REJECTS_BACKLOG && rejectsTail) {
          rejectsUnawaited = 0;
          await rejectsTail;
        }
        // A chunk of the source is hundreds of records parsed at once, and awaiting already-settled promises never
        // leaves the microtask queue: let the event loop run now and then, so responses, acks, rate-limiter timers
        // and signals are handled within a few milliseconds rather than once per chunk. By time, not by count: while
        // V8 has not optimized the code yet (the first second of a run), a record costs several times what it costs
        // later, and a count of records would leave responses waiting for 10–20 ms.
        if ((readThisRun & (YIELD_CHECK_EVERY - 1)) === 0 && performance.now() >= yieldAt) {
          await nextLoopTurn();
          yieldAt = performance.now() + YIELD_AFTER_MS;
        }
        if (options.signal?.aborted) break read;
      }
    }
    if (options.signal?.aborted) {
      outcome = 'interrupted'; // an open group stays unsent: the checkpoint stops before it
    } else {
      await handle(transformer.flush(), lastSeq + 1);
    }
    // After an interrupt, bulk jobs still processing are not waited for: they stay in the checkpoint's
    // pendingJobs and the next run polls them (and collects their import errors).
    await destination.close({ stopWaitingForJobs: options.signal });
    if (fatal) throw fatal;
    if (options.signal?.aborted) outcome = 'interrupted';
  } catch (err) {
    outcome = options.signal?.aborted ? 'interrupted' : 'failed';
    if (isEtlError(err) && err.code.startsWith('CONFIG_')) throw err;
    if (outcome === 'failed') {
      error = isEtlError(err)
        ? { code: err.code, message: redact(err.message) }
        : { code: 'INTERNAL', message: redact(err instanceof Error ? err.message : String(err)) };
      logger.error('run failed', { error });
    }
    await destination?.abort().catch(() => {});
  } finally {
    options.signal?.removeEventListener('abort', onInterrupt);
    if (progressTimer) clearInterval(progressTimer);
    if (progressLogTimer) clearInterval(progressLogTimer);
    await reader?.close?.().catch(() => {});
    await rejects.close().catch(rejectsFailed);
  }
  if (rejectsError && outcome !== 'failed') {
    outcome = 'failed';
    error = { code: rejectsError.code, message: redact(rejectsError.message) };
    logger.error('run failed', { error });
  }

  stats.rows.read = firstSeq + readThisRun;
  stats.rows.rejected = rejectedCount();
  const done = outcome === 'completed' ? stats.rows.read : (tracker.safePosition()?.seq ?? -1) + 1;
  stats.rows.loaded = Math.max(0, done - stats.rows.rejected - stats.rows.skipped);

  if (checkpointer) {
    const bounded = options.since !== undefined || options.until !== undefined || options.limit !== undefined;
    const readerInfo = reader as (SourceReader & { boundedRun?: boolean }) | undefined;
    const watermark = outcome === 'completed' && !bounded && !readerInfo?.boundedRun ? reader?.watermark?.() : undefined;
    const status = outcome === 'completed' ? 'succeeded' : outcome;
    try {
      await checkpointer.finish(status, {
        ...(watermark !== undefined ? { watermark } : {}),
        position: tracker.safePosition(),
        pendingJobs: checkpointJobs() ?? [],
        pendingJobsAfter: pendingJobsAfter(checkpointJobs() ?? []),
        counters: countersAt(tracker.safePosition()),
        rejects: { path: rejectsPath, count: rejects.count },
      });
    } catch (err) {
      outcome = 'failed';
      error ??= { code: isEtlError(err) ? err.code : 'INTERNAL', message: redact(err instanceof Error ? err.message : String(err)) };
    }
  }

  if (ephemeralDir) await rm(ephemeralDir, { recursive: true, force: true });
  const finishedAt = new Date();
  const report: RunReport = {
    status: statusFor(stats, outcome),
    pipeline: { name: config.name, file: options.pipelineFile },
    runId,
    resumed: resume?.resumed ?? false,
    dryRun,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    rows: { ...stats.rows },
    items: { ...stats.items },
    requests: {
      total: stats.requests.total,
      throttled: stats.requests.throttled,
      retried: stats.requests.retried,
      failed: stats.requests.failed,
      planned: stats.plannedRequests,
      byEndpoint: { ...stats.requests.byEndpoint },
    },
    jobs: { ...stats.jobs },
    rejects: { file: displayPath(rejectsPath), count: rejectedCount() },
    ...(checkpointLocation && !ephemeralDir ? { checkpoint: { file: displayPath(checkpointLocation), position: tracker.safePosition() } } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
    ...(error ? { error } : {}),
  };
  if (emulator) {
    report.emulator = { url: emulator.url, state: emulator.snapshot() };
    await emulator.close();
  }
  if (options.reportFile) {
    await mkdir(path.dirname(path.resolve(options.reportFile)), { recursive: true });
    await writeFile(options.reportFile, JSON.stringify(report, null, 2) + '\n');
  }
  logger.info('run finished', { summary: formatSummary(report) });
  return report;
}

/** The fields of a periodic `progress` log line: counters, average rate, and an ETA when the input size is known. */
export function progressFields(stats: RunStats, source: SourceProgress | undefined, elapsedMs: number): Record<string, unknown> {
  const secs = Math.max(0.001, elapsedMs / 1000);
  const fields: Record<string, unknown> = {
    rows: stats.rows.read,
    rejected: stats.rows.rejected,
    rowsPerSecond: Math.round(stats.rows.read / secs),
    requests: stats.requests.total,
    throttled: stats.requests.throttled,
    elapsedSeconds: Math.round(secs),
  };
  if (source?.totalBytes) {
    const fraction = Math.min(1, source.bytes / source.totalBytes);
    fields.percent = Math.round(fraction * 1000) / 10;
    if (fraction > 0) fields.etaSeconds = Math.round((secs * (1 - fraction)) / fraction);
  }
  return fields;
}

function countItems(stats: RunStats, items: LoadItem[]): void {
  for (const item of items) {
    if (item.kind === 'profile') stats.items.profiles++;
    else if (item.kind === 'event') stats.items.events++;
    else if (item.kind === 'subscription') stats.items.subscriptions++;
    else stats.items.exportRows++;
  }
}

function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

interface RejectKeyFields {
  seq: unknown;
  stage: unknown;
  code: unknown;
  source?: unknown;
  field?: unknown;
  row?: unknown;
}

/**
 * What identifies a reject across a crash: `(seq, stage, code)`. An import error of a bulk job resumed from the
 * checkpoint has no source position (seq -1; the job's rows are not in the checkpoint), so for those the job
 * (`source`), the field and the original payload (`row`) tell them apart.
 */
/**
 * Load-stage reject codes of items Klaviyo already acknowledged (profile import jobs): the tracker settled them at
 * the ack, and the checkpoint may be past them.
 */
const SETTLED_BEFORE_REJECT: ReadonlySet<string> = new Set(['KLAVIYO_IMPORT_ERROR', 'KLAVIYO_JOB_FAILED']);

/** Rejects queued for the rejects file before the read loop waits for them to be written. */
const REJECTS_BACKLOG = 1000;

/** Records one at a time as one-record batches (sources without `batches()`). */
async function* oneByOne(records: AsyncIterable<SourceRecord>): AsyncGenerator<SourceRecord[]> {
  for await (const record of records) yield [record];
}
/** The read loop looks at the clock every this many records (a power of two)… */
const YIELD_CHECK_EVERY = 32;
/** …and lets the event loop run when this much time passed since it last did. */
const YIELD_AFTER_MS = 2;

function rejectKey(r: RejectKeyFields): string {
  const seq = Number(r.seq);
  const base = `${seq}:${String(r.stage)}:${String(r.code)}`;
  if (seq >= 0) return base;
  return `${base}:${String(r.source ?? '')}:${String(r.field ?? '')}:${JSON.stringify(r.row ?? null)}`;
}

function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * The keys (`rejectKey`) of every reject an interrupted run already wrote, so a resumed run does not repeat them,
 * and the rejected rows among them. A torn last line (the crash cut a write short) is cut off the file, so that
 * what the resumed run appends starts on a line of its own; its reject is written again.
 */
async function readRejectKeys(file: string, format: 'csv' | 'ndjson'): Promise<{ keys: Set<string>; seqs: Set<number | string> }> {
  const keys = new Set<string>();
  const seqs = new Set<number | string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { keys, seqs };
  }
  if (text !== '' && !text.endsWith('\n')) {
    text = text.slice(0, text.lastIndexOf('\n') + 1);
    await truncate(file, Buffer.byteLength(text));
  }
  const rows: RejectKeyFields[] =
    format === 'csv'
      ? (parseCsv(text, { columns: true, relax_column_count: true }) as Record<string, string | undefined>[]).map(
          (r): RejectKeyFields => ({ seq: r.seq, stage: r.stage, code: r.code, source: r.source, field: r.field || undefined, row: parseJson(r.row) }),
        )
      : text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as RejectKeyFields];
            } catch {
              return []; // unreadable: its reject is written again
            }
          });
  for (const r of rows) {
    const key = rejectKey(r);
    keys.add(key);
    const seq = Number(r.seq);
    seqs.add(seq >= 0 ? seq : key);
  }
  return { keys, seqs };
}

