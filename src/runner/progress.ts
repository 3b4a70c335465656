/**
 * Progress of a run: the ETA (one estimate for the terminal display and the log lines), the fields of a periodic
 * `progress` log line, and the timers that report both while a run reads.
 */
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';
import type { SourceProgress } from '../extract/types.js';

/** Share of the input read, and the time left at the average rate so far; undefined when the total is unknown. */
export function estimate(source: SourceProgress | undefined, elapsedMs: number): { percent: number; remainingMs?: number } | undefined {
  if (!source?.totalBytes) return undefined;
  const fraction = Math.min(1, source.bytes / source.totalBytes);
  if (fraction <= 0) return { percent: 0 };
  return { percent: fraction * 100, remainingMs: (elapsedMs * (1 - fraction)) / fraction };
}

/** `42s`, `3m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
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
  const eta = estimate(source, elapsedMs);
  if (eta) {
    fields.percent = Math.round(eta.percent * 10) / 10;
    if (eta.remainingMs !== undefined) fields.etaSeconds = Math.round(eta.remainingMs / 1000);
  }
  return fields;
}

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  stats: RunStats;
  /** The source's progress, once it is open. */
  source: () => SourceProgress | undefined;
  logger: Logger;
  /** Called about once a second. */
  onProgress?: (stats: RunStats, source?: SourceProgress) => void;
  /** Log a `progress` line this often; 0 disables. @default 10000 */
  logIntervalMs?: number;
}

/** Start the progress timers of a run; the returned function stops them. */
export function startProgress(options: ProgressOptions): () => void {
  const timers: NodeJS.Timeout[] = [];
  const { stats, source, logger, onProgress } = options;
  if (onProgress) timers.push(setInterval(() => onProgress(stats, source()), 1000));
  const logEvery = options.logIntervalMs ?? 10_000;
  if (logEvery > 0) {
    const begun = Date.now();
    timers.push(setInterval(() => logger.info('progress', progressFields(stats, source(), Date.now() - begun)), logEvery));
  }
  for (const timer of timers) timer.unref();
  return () => {
    for (const timer of timers) clearInterval(timer);
  };
}
