import type { RunReport } from '../runner/report.js';
import { rejectsByCode } from './codes.js';

const nf = new Intl.NumberFormat('en-US');

/** `1.2s`, `4m05s`, `2h03m`. */
function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** What a run's last column says: its rejects by code, and the error of a failed run. */
function notes(r: RunReport): string {
  const codes = Object.entries(rejectsByCode(r))
    .filter(([, n]) => n > 0)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${code} ${nf.format(n)}`);
  const parts = [codes.join(', ')];
  if (r.error) parts.push(`[${r.error.code}] ${r.error.message}`);
  if (r.resumed) parts.push('(resumed)');
  return parts.filter(Boolean).join('  ');
}

/** The runs as a table for people, oldest first (`empty` when there is none). */
export function formatHistory(pipeline: string, location: string, runs: readonly RunReport[]): string {
  if (runs.length === 0) return `${pipeline}: no run recorded yet (history: ${location})`;
  const head = ['finished (UTC)', 'status', 'duration', 'read', 'loaded', 'rejected', 'requests', '429s', 'rejects by code / error'];
  const rows = runs.map((r) => [
    r.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.status,
    duration(r.durationMs),
    nf.format(r.rows.read),
    nf.format(r.rows.loaded),
    nf.format(r.rows.rejected),
    nf.format(r.requests.total),
    nf.format(r.requests.throttled),
    notes(r),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6, 7]);
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [`${pipeline}: last ${runs.length} run(s), oldest first (history: ${location})`, line(head), ...rows.map(line)].join('\n');
}
