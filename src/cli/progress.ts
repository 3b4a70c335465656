import type { RunStats } from '../core/stats.js';
import type { SourceProgress } from '../extract/types.js';
import { estimate, formatDuration } from '../runner/progress.js';

/** A progress display: `update` about once a second, `done` before the summary is printed. */
export interface Progress {
  update: (stats: RunStats, source?: SourceProgress) => void;
  done: () => void;
}

/** On a stream that is not a terminal (a log file, a CI job), a plain progress line at most this often. */
const PLAIN_EVERY_MS = 5_000;

/**
 * Live progress: rows done, rows/s (over the last update), requests, 429s, and — when the source knows its size
 * (local uncompressed CSV files) — the percentage read and an ETA from the average rate so far. On a terminal it
 * redraws one line; elsewhere (`--progress` into a log file or a CI job) it writes a plain line, without escape
 * codes, at most every 5 seconds.
 */
export function createProgress(stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>, clock: () => number = Date.now): Progress {
  const tty = stream.isTTY === true;
  let plainAt = -Infinity;
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
      if (tty) {
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
      } else if (now - plainAt >= PLAIN_EVERY_MS) {
        stream.write(`progress: ${line}\n`);
        plainAt = now;
      }
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
