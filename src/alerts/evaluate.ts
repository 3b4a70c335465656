/**
 * Which alerts a finished run raises, from its report and the runs before it (the run history): failure, rejects
 * above a threshold, zero rows read, slower than a limit, N failures in a row, recovery after a failure.
 */
import { durationMs, type AlertKind, type AlertsConfig } from '../config/operations.js';
import { rejectsExceed } from '../runner/fail-on.js';
import type { RunReport } from '../runner/report.js';

/** One alert a run raised. */
export interface Alert {
  kind: AlertKind;
  message: string;
}

const completed = (r: RunReport): boolean => r.status === 'succeeded' || r.status === 'completed_with_rejects';

/** Failed runs at the end of the history and this run (interrupted runs neither count nor break the streak). */
export function failureStreak(report: RunReport, previous: readonly RunReport[]): number {
  let streak = report.status === 'failed' ? 1 : 0;
  if (streak === 0) return 0;
  for (let i = previous.length - 1; i >= 0; i--) {
    const r = previous[i]!;
    if (r.status === 'interrupted') continue;
    if (r.status !== 'failed') break;
    streak++;
  }
  return streak;
}

/** The last run before this one that ended (not interrupted). */
function lastEnded(previous: readonly RunReport[]): RunReport | undefined {
  for (let i = previous.length - 1; i >= 0; i--) if (previous[i]!.status !== 'interrupted') return previous[i];
  return undefined;
}

function rejectsAlert(report: RunReport, limits: NonNullable<AlertsConfig['rejects']>): Alert | undefined {
  const { rows } = report;
  if (rows.rejected === 0) return undefined;
  const any = limits.count === undefined && limits.share === undefined;
  if (!any && !rejectsExceed(rows, limits.count, limits.share)) return undefined;
  const share = rows.read > 0 ? ` (${((rows.rejected / rows.read) * 100).toFixed(2)}% of ${rows.read} read)` : '';
  const over = any ? '' : ` above the alert threshold (${[limits.count !== undefined ? `count ${limits.count}` : '', limits.share !== undefined ? `share ${limits.share}` : ''].filter(Boolean).join(', ')})`;
  return { kind: 'rejects', message: `${rows.rejected} rows rejected${share}${over}` };
}

/** The alerts `report` raises under `config`, given the runs before it (oldest first). */
export function evaluateAlerts(report: RunReport, previous: readonly RunReport[], config: AlertsConfig): Alert[] {
  const alerts: Alert[] = [];
  if (config.failed && report.status === 'failed') {
    alerts.push({ kind: 'failed', message: report.error ? `run failed: [${report.error.code}] ${report.error.message}` : 'run failed' });
  }
  const rejects = config.rejects && rejectsAlert(report, config.rejects);
  if (rejects) alerts.push(rejects);
  if (config.zeroRows && completed(report) && report.rows.read === 0) {
    // the source's own warnings (an empty file, a header without rows) say where
    const why = (report.warnings ?? []).filter((w) => w.code.startsWith('SOURCE_FILE_')).map((w) => ` [${w.code}] ${w.message}`);
    alerts.push({ kind: 'zeroRows', message: `the run read no row at all: is the upstream export empty or missing?${why.join(';')}` });
  }
  if (config.slowerThan !== undefined && report.durationMs > durationMs(config.slowerThan)) {
    alerts.push({ kind: 'slowerThan', message: `the run took ${Math.round(report.durationMs / 1000)} s, longer than ${config.slowerThan}` });
  }
  const streak = failureStreak(report, previous);
  if (config.failuresInARow !== undefined && streak >= config.failuresInARow) {
    alerts.push({ kind: 'failuresInARow', message: `${streak} failed runs in a row` });
  }
  const before = lastEnded(previous);
  if (config.recovered && completed(report) && before?.status === 'failed') {
    alerts.push({ kind: 'recovered', message: `recovered: the run ${report.status === 'succeeded' ? 'succeeded' : 'completed'} after a failed run (${before.finishedAt})` });
  }
  return alerts;
}
