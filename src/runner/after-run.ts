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
import { newStats } from '../core/stats.js';
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

/**
 * A run that could not start (LOCKED, CHECKPOINT_MISMATCH, CHECKPOINT_CORRUPT, STATE_DIR_UNUSABLE…) is a failed run
 * for the history, the alerts and the metrics: a lock left by a dead pod must not block every night silently.
 */
export async function afterRefusal(error: unknown, pipeline: { name: string; file: string }, startedAt: Date, ctx: AfterRunContext): Promise<void> {
  const finishedAt = new Date();
  const stats = newStats();
  const report: RunReport = {
    status: 'failed',
    pipeline,
    runId: randomUUID(),
    resumed: false,
    dryRun: false,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    rows: stats.rows,
    items: stats.items,
    requests: { ...stats.requests, planned: 0 },
    jobs: stats.jobs,
    error: isEtlError(error)
      ? { code: error.code, message: redact(error.message) }
      : { code: 'INTERNAL', message: redact(error instanceof Error ? error.message : String(error)) },
  };
  await afterRun(report, ctx).catch((e: unknown) => ctx.logger.warn('refused run not recorded', { error: redact(String(e)) }));
}
