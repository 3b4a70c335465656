/**
 * The runner: `run(options) → RunReport`. It wires the components a pipeline names (looked up in the registry,
 * told apart only by their declared capabilities), reads, routes rejects, checkpoints the acknowledged prefix and
 * reports. Its parts: setup.ts (state directories, checkpoint, rejects file), wiring.ts (components), read-loop.ts,
 * rejects.ts (the rejects file and policy), progress.ts, emulator.ts (`--emulator`), execute.ts, report.ts.
 */
import path from 'node:path';
import { BUILTIN_COMPONENTS } from '../components/index.js';
import { loadPipelineFileOrThrow } from '../config/load.js';
import { EtlError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { TierLimits } from '../klaviyo/endpoints.js';
import { carryOver, CountUpTo, newStats } from '../core/stats.js';
import { withEmulator } from './emulator.js';
import { execute, finish, type LiveRun } from './execute.js';
import { JobStarts } from './forgotten-jobs.js';
import { readRejectsFile } from './from-rejects.js';
import { SourceColumns } from './reject-rows.js';
import { buildPlan } from './plan.js';
import type { RunOptions } from './options.js';
import { buildReport, formatSummary, writeReport, type RunReport } from './report.js';
import { setUpRun, tearDownRun } from './setup.js';
import { afterRefusal, afterRun, recordLostRun } from './after-run.js';
import { serveLiveMetrics, type LiveMetrics } from './live-metrics.js';
import { checkBounds, checkResend, checkShard, componentsOf, needsKlaviyo, shardConfig } from './wiring.js';

export type { RunOptions } from './options.js';
export type { RunReport } from './report.js';

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
  const components = options.components ?? BUILTIN_COMPONENTS;
  if (options.window !== undefined && !dryRun) throw new EtlError('USAGE', '--window is the time a dry run checks the plan against: use it with --dry-run');
  const startedAt = new Date();
  // the state directory locates the checkpoint the rules keep the rejects file away from
  const loaded = await loadPipelineFileOrThrow(path.resolve(options.pipelineFile), { env, components, stateDir: options.stateDir });
  const { source } = loaded;
  const parts = componentsOf(loaded.config, components);
  checkBounds(parts.source, components.sources, options);
  checkShard(parts.source, components.sources, options.shard);
  const config = shardConfig(loaded.config, options.shard);
  checkResend(parts, options);
  // a rejects file that cannot be sent again is refused before the run takes the pipeline's lock
  const resend = options.fromRejects !== undefined ? await readRejectsFile(path.resolve(options.fromRejects)) : undefined;
  const emulator = needsKlaviyo(parts, dryRun) ? options.emulator : undefined;
  const stateDir = options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR;
  const pipeline = { name: config.name, file: options.pipelineFile };
  const where = { config, logger, baseDir: source.dir, env, stateDir, emulator: Boolean(options.emulator) };
  const live: LiveMetrics = { pipeline: config.name, startedAt };
  const metrics = await serveLiveMetrics(options, live, logger);
  try {
    const report = await withEmulator(emulator, { env, logger }, async (klaviyo) => {
      const failure: LiveRun['failure'] = {};
      const stats = (live.stats = newStats());
      const columns = new SourceColumns();
      const base = { options, config, pipelineSource: source, parts, baseDir: source.dir, env, logger, dryRun, startedAt, klaviyo, stats, read: { count: 0 }, failure, resend, columns };
      const setup = await setUpRun({
        config,
        baseDir: source.dir,
        env,
        logger,
        dryRun,
        restart: options.restart,
        fullRefresh: options.fullRefresh,
        fromRejects: resend !== undefined,
        rereadOnNewMapping: parts.source.capabilities.rereadOnNewMapping,
        startedAt,
        columnsOf: (s) => columns.get(s),
        stateDir,
        emulator: Boolean(options.emulator),
        settledBeforeReject: parts.destination.capabilities.settledBeforeReject,
        fail: (error) => {
          failure.fatal ??= error;
        },
      }).catch(async (error: unknown) => {
        // a run refused by its state is recorded (an --emulator run never writes into the real pipeline's history)
        if (!dryRun && !options.emulator) await afterRefusal(error, pipeline, startedAt, where);
        throw error;
      });
      const historyWhere = { ...where, ephemeralDir: setup.ephemeralDir, ...(options.emulator ? { emulatorStateDir: setup.stateDir } : {}) };
      if (setup.resume?.lostRun) await recordLostRun(setup.resume.lostRun, pipeline, historyWhere);
      // the report and the checkpoint of a resumed run count every attempt's requests, retries, jobs and items
      if (setup.resume?.resumed && setup.resume.counters) carryOver(stats, setup.resume.counters);
      const jobStarts = new JobStarts(setup.resume?.resumeJobsAfter);
      const extra = { jobStarts, warnings: [...setup.warnings], skipped: new CountUpTo(stats.rows.skipped, stats.skippedBy), loaderSkipped: new CountUpTo(0, stats.skippedByCode), jobsWritingRejects: new Set<string>() };
      const running: LiveRun = { ...base, setup, ...extra };
      live.settled = () => (setup.tracker.safePosition()?.seq ?? -1) + 1;
      live.rejectsByCode = () => setup.rejects.tally.byCode();
      const end = await finish(running, await execute(running));
      const output = running.destination?.output?.();
      const how = { fullRefresh: setup.resume?.fullRefresh === true, fromRejects: options.fromRejects };
      const report = buildReport({ pipeline, dryRun, startedAt, stats: running.stats, setup, end, warnings: running.warnings, ...how, output });
      if (dryRun) report.plan = buildPlan(stats.plannedByEndpoint, (config.destination as { rateLimits?: Record<string, TierLimits> }).rateLimits, options.window);
      await afterRun(report, historyWhere);
      live.report = report;
      await tearDownRun(setup);
      return report;
    });
    if (options.reportFile) await writeReport(options.reportFile, report);
    logger.info('run finished', { summary: formatSummary(report) });
    return report;
  } finally {
    await metrics?.close();
  }
}
