/**
 * What happens once a run's report is made: its rejects are judged (`failOn`, every row rejected), its alerts are
 * evaluated against the run history and posted, the report is appended to the history, and its metrics pushed.
 * Nothing here fails the run: a history, webhook or Pushgateway failure is logged and said in the report's warnings.
 * Dry runs stop after the judgement (they leave no trace); `--emulator` runs record their history (in their own
 * state directory) but send no alert and push no metrics: a demo never pages anyone.
 */
import { randomUUID } from 'node:crypto';
import { deliverAlerts } from '../alerts/deliver.js';
import { evaluateAlerts } from '../alerts/evaluate.js';
import type { PipelineConfig } from '../config/pipeline.js';
import { exitCodeForReport } from '../core/exit-codes.js';
import { isEtlError, redact, type RunWarning } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { newStats, type RunStats } from '../core/stats.js';
import type { ResumeState } from '../checkpoint/index.js';
import { rejectsByCode } from '../history/codes.js';
import { openHistoryStore, type HistoryStore, type StateLocation } from '../history/store.js';
import { pushMetrics } from '../metrics/publish.js';
import type { MetricsSnapshot } from '../metrics/registry.js';
import { judgeRejects } from './fail-on.js';
import type { RunReport } from './report.js';

/** Runs of the history read to evaluate alerts (failures in a row, recovery). */
const HISTORY_FOR_ALERTS = 50;

/** What {@link afterRun} needs besides the report. */
export interface AfterRunContext extends StateLocation {
  config: PipelineConfig;
  logger: Logger;
  /** An `--emulator` run. */
  emulator: boolean;
}

/** Whether a run counts as a success for a scheduler (exit 0). */
const successful = (r: RunReport): boolean => exitCodeForReport(r) === 0;

/** The numbers a finished run's metrics show. */
export function snapshotOf(report: RunReport, previous: readonly RunReport[]): MetricsSnapshot {
  const lastSuccess = successful(report) ? report : [...previous].reverse().find(successful);
  return {
    pipeline: report.pipeline.name,
    status: report.status,
    rows: { ...report.rows },
    rejectsByCode: rejectsByCode(report),
    requestsByEndpoint: { ...report.requests.byEndpoint },
    throttledByEndpoint: { ...report.requests.throttledByEndpoint },
    durationMs: report.durationMs,
    ...(lastSuccess ? { lastSuccessAt: lastSuccess.finishedAt } : {}),
  };
}

async function readPrevious(history: HistoryStore, logger: Logger, warnings: RunWarning[]): Promise<RunReport[]> {
  try {
    return await history.list(HISTORY_FOR_ALERTS);
  } catch (error) {
    const why = redact(error instanceof Error ? error.message : String(error));
    logger.warn('run history not readable', { history: history.location, error: why });
    warnings.push({ code: 'HISTORY_UNREADABLE', message: `the run history (${history.location}) could not be read (${why}): alerts that need it were judged without it` });
    return [];
  }
}

/** Judge, alert, record and push a finished run (in place: the report gains `failOn`, `alerts`, `warnings`). */
export async function afterRun(report: RunReport, ctx: AfterRunContext): Promise<void> {
  const { config, logger } = ctx;
  judgeRejects(report, config.failOn);
  if (report.dryRun) return;
  const warnings: RunWarning[] = [];
  const history = openHistoryStore(config, ctx);
  try {
    const previous = await readPrevious(history, logger, warnings);
    if (config.alerts && !ctx.emulator) {
      const deliveries = await deliverAlerts(report, evaluateAlerts(report, previous, config.alerts), config.alerts, { logger });
      if (deliveries.length > 0) report.alerts = deliveries;
    }
    const gateway = config.metrics?.pushgateway;
    if (gateway && !ctx.emulator) {
      const failed = await pushMetrics(gateway, config.metrics!.job, snapshotOf(report, previous), logger);
      if (failed) warnings.push({ code: 'METRICS_NOT_PUSHED', message: `metrics were not pushed to the Pushgateway (${failed})` });
    }
    if (warnings.length > 0) report.warnings = [...(report.warnings ?? []), ...warnings];
    await history.append(report).catch((error: unknown) => {
      const why = redact(error instanceof Error ? error.message : String(error));
      logger.warn('run not recorded in the history', { history: history.location, error: why });
      report.warnings = [...(report.warnings ?? []), { code: 'HISTORY_NOT_RECORDED', message: `the run was not recorded in the run history ${history.location} (${why})` }];
    });
  } finally {
    await history.close();
  }
}

/** The report of a run that got no further than its state: counters as known, an error saying why. */
function failedReport(pipeline: RunReport['pipeline'], run: { runId: string; startedAt: string; finishedAt: string; stats?: RunStats }, error: RunReport['error']): RunReport {
  const zero = newStats();
  const stats = run.stats;
  return {
    status: 'failed',
    pipeline,
    runId: run.runId,
    resumed: false,
    dryRun: false,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    durationMs: Math.max(0, Date.parse(run.finishedAt) - Date.parse(run.startedAt)),
    rows: { ...zero.rows, ...stats?.rows },
    items: { ...zero.items, ...stats?.items },
    requests: { ...zero.requests, ...stats?.requests, throttledByEndpoint: { ...stats?.requests.throttledByEndpoint }, planned: 0 },
    jobs: { ...zero.jobs, ...stats?.jobs },
    error,
  };
}

/**
 * A run that could not start (LOCKED, CHECKPOINT_MISMATCH, CHECKPOINT_CORRUPT, STATE_DIR_UNUSABLE…) is a failed run
 * for the history, the alerts and the metrics: a lock left by a dead pod must not block every night silently.
 */
export async function afterRefusal(error: unknown, pipeline: { name: string; file: string }, startedAt: Date, ctx: AfterRunContext): Promise<void> {
  const report = failedReport(
    pipeline,
    { runId: randomUUID(), startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString() },
    isEtlError(error)
      ? { code: error.code, message: redact(error.message) }
      : { code: 'INTERNAL', message: redact(error instanceof Error ? error.message : String(error)) },
  );
  await afterRun(report, ctx).catch((e: unknown) => ctx.logger.warn('refused run not recorded', { error: redact(String(e)) }));
}

/**
 * A run that died without finishing (its checkpoint still said `running` when the next run took the lock) goes into
 * the history as `failed` with RUN_LOST, so failures in a row and recoveries count it. No alert is sent for it: the
 * run that found it reports its own outcome.
 */
export async function recordLostRun(lost: NonNullable<ResumeState['lostRun']>, pipeline: RunReport['pipeline'], ctx: AfterRunContext): Promise<void> {
  const message = `the run stopped without finishing (killed, out of memory, or its machine lost) after its last checkpoint at ${lost.updatedAt}; the next run resumed from there`;
  const report = failedReport(pipeline, { runId: lost.runId, startedAt: lost.startedAt, finishedAt: lost.updatedAt, stats: lost.counters }, { code: 'RUN_LOST', message });
  const history = openHistoryStore(ctx.config, ctx);
  try {
    await history.append(report);
  } catch (error) {
    ctx.logger.warn('lost run not recorded in the history', { history: history.location, error: redact(String(error)) });
  } finally {
    await history.close();
  }
}
