import type { RunStats } from '../core/stats.js';

/** Live progress on a terminal: rows done, rows/s, requests, 429s. Redraws one line. */
export function createProgress(stream: NodeJS.WriteStream): { update: (stats: RunStats) => void; done: () => void } {
  const started = Date.now();
  let last = { at: started, rows: 0 };
  let drawn = false;
  const nf = new Intl.NumberFormat('en-US');
  return {
    update(stats) {
      const now = Date.now();
      const rate = ((stats.rows.read - last.rows) * 1000) / Math.max(1, now - last.at);
      last = { at: now, rows: stats.rows.read };
      const line =
        `rows ${nf.format(stats.rows.read)} (${nf.format(Math.round(rate))}/s), rejected ${nf.format(stats.rows.rejected)}, ` +
        `requests ${nf.format(stats.requests.total)}, 429s ${nf.format(stats.requests.throttled)}, ` +
        `elapsed ${Math.round((now - started) / 1000)}s`;
      stream.write(`\r\x1b[2K${line}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
