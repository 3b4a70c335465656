/** The metrics a run serves while it goes on (`--metrics-port`): its live counters, then its report once made. */
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';
import { serveMetrics, type MetricsServer } from '../metrics/publish.js';
import type { RunOptions } from './options.js';
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

function liveSnapshot(live: LiveMetrics): MetricsSnapshot {
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

/** Serve the run's live metrics when `options.metricsPort` asks for it. */
export async function serveLiveMetrics(options: RunOptions, live: LiveMetrics, logger: Logger): Promise<MetricsServer | undefined> {
  const metrics = options.metricsPort !== undefined ? await serveMetrics(options.metricsPort, options.metricsHost ?? '0.0.0.0', () => liveSnapshot(live)) : undefined;
  if (metrics) logger.info('metrics served', { url: metrics.url });
  options.onMetricsServed?.(metrics?.url);
  return metrics;
}
