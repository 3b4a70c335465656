/** The metrics a run serves while it goes on (`--metrics-port`): its live counters, then its report once made. */
import type { RunStats } from '../core/stats.js';
import { snapshotOf } from './after-run.js';
import type { MetricsSnapshot } from '../metrics/registry.js';
import type { RunReport } from './report.js';

/** What the served metrics are read from: filled in as the run gets there. */
export interface LiveMetrics {
  pipeline: string;
  startedAt: Date;
  stats?: RunStats;
  /** Rows read so far whose effect is settled (acknowledged, rejected or skipped): the checkpoint position. */
  settled?: () => number;
  /** Rejected rows by code so far. */
  rejectsByCode?: () => Record<string, number>;
  report?: RunReport;
}

export function liveSnapshot(live: LiveMetrics): MetricsSnapshot {
  if (live.report) return snapshotOf(live.report, []);
  const stats = live.stats;
  return {
    pipeline: live.pipeline,
    status: 'running',
    rows: stats ? { ...stats.rows, loaded: Math.max(0, (live.settled?.() ?? 0) - stats.rows.rejected - stats.rows.skipped) } : { read: 0, loaded: 0, rejected: 0, skipped: 0 },
    rejectsByCode: live.rejectsByCode?.() ?? {},
    requestsByEndpoint: { ...stats?.requests.byEndpoint },
    throttledByEndpoint: { ...stats?.requests.throttledByEndpoint },
    durationMs: Date.now() - live.startedAt.getTime(),
  };
}
