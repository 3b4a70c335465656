import type { RunStats } from '../core/stats.js';
import type { SourceProgress } from '../extract/types.js';

/** A progress display: `update` about once a second, `done` before the summary is printed. */
export interface Progress {
  update: (stats: RunStats, source?: SourceProgress) => void;
  done: () => void;
}

/**
 * Live progress on a terminal: rows done, rows/s (over the last update), requests, 429s, and — when the source
 * knows its size (local uncompressed CSV files) — the percentage read and an ETA from the average rate so far.
 * Redraws one line.
 */
export function createProgress(stream: NodeJS.WriteStream, clock: () => number = Date.now): Progress {
  const started = clock();
  let last = { at: started, rows: 0 };
  let drawn = false;
  const nf = new Intl.NumberFormat('en-US');
  return {
    update(stats, source) {
      const now = clock();
      const rate = ((stats.rows.read - last.rows) * 1000) / Math.max(1, now - last.at);
      last = { at: now, rows: stats.rows.read };
      const elapsedMs = now - started;
      let line =
        `rows ${nf.format(stats.rows.read)} (${nf.format(Math.round(rate))}/s), rejected ${nf.format(stats.rows.rejected)}, ` +
        `requests ${nf.format(stats.requests.total)}, 429s ${nf.format(stats.requests.throttled)}, ` +
        `elapsed ${formatDuration(elapsedMs)}`;
      const eta = estimate(source, elapsedMs);
      if (eta) line += `, ${eta.percent.toFixed(1)}%${eta.remainingMs === undefined ? '' : `, ETA ${formatDuration(eta.remainingMs)}`}`;
      stream.write(`\r\x1b[2K${line}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}

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
