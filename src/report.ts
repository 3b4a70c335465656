import type { RunStats } from './core/stats.js';

export type RunStatus = 'succeeded' | 'completed_with_rejects' | 'failed' | 'interrupted';

/** The run report: printed as a summary, written as JSON with `--report`. Stable interface (README, "Run report"). */
export interface RunReport {
  status: RunStatus;
  pipeline: { name: string; file: string };
  runId: string;
  /** True when this run continued an interrupted earlier run from its checkpoint. */
  resumed: boolean;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  /**
   * `duplicates`: events Klaviyo ignores as repeats of an earlier event of this run (see RunStats). `exportRows`:
   * rows written by an export.
   */
  items: { profiles: number; events: number; subscriptions: number; exportRows: number; duplicates: number };
  requests: {
    total: number;
    throttled: number;
    retried: number;
    failed: number;
    /** Requests a real run would make (dry runs). */
    planned: number;
    byEndpoint: Record<string, number>;
  };
  /** `forgotten`: jobs of the interrupted run that Klaviyo no longer knew at the resume; their rows were sent again. */
  jobs: { submitted: number; completed: number; importErrors: number; forgotten: number };
  rejects?: { file: string; count: number };
  /** Where the run stands for the next run (for resumable runs). */
  checkpoint?: { file: string; position?: unknown };
  /** What the run decided that the user should know (e.g. rows sent again because Klaviyo forgot their job). */
  warnings?: string[];
  error?: { code: string; message: string };
  /** What the embedded emulator holds at the end (`--emulator` runs). */
  emulator?: { url: string; state: unknown };
}

export function statusFor(stats: RunStats, outcome: 'completed' | 'failed' | 'interrupted'): RunStatus {
  if (outcome !== 'completed') return outcome;
  return stats.rows.rejected > 0 ? 'completed_with_rejects' : 'succeeded';
}

const fmt = new Intl.NumberFormat('en-US');

/** A human summary of a report, a few lines long. */
export function formatSummary(report: RunReport): string {
  const secs = (report.durationMs / 1000).toFixed(1);
  const rate = report.durationMs > 0 ? Math.round((report.rows.read * 1000) / report.durationMs) : 0;
  const lines = [
    `${report.pipeline.name}: ${report.status}${report.dryRun ? ' (dry run)' : ''}${report.resumed ? ' (resumed)' : ''} in ${secs}s`,
    `  rows      read ${fmt.format(report.rows.read)}, loaded ${fmt.format(report.rows.loaded)}, rejected ${fmt.format(report.rows.rejected)}, skipped ${fmt.format(report.rows.skipped)} (${fmt.format(rate)} rows/s)`,
    `  items     profiles ${fmt.format(report.items.profiles)}, events ${fmt.format(report.items.events)}, subscriptions ${fmt.format(report.items.subscriptions)}` +
      (report.items.exportRows > 0 ? `, export rows ${fmt.format(report.items.exportRows)}` : '') +
      (report.items.duplicates > 0 ? `, duplicates ${fmt.format(report.items.duplicates)} (ignored by Klaviyo: same profile, metric and unique_id)` : ''),
    report.dryRun
      ? `  requests  a real run would make ${fmt.format(report.requests.planned)} requests`
      : `  requests  ${fmt.format(report.requests.total)} total, ${fmt.format(report.requests.throttled)} throttled (429), ${fmt.format(report.requests.retried)} retried`,
  ];
  if (report.jobs.submitted > 0 || report.jobs.forgotten > 0) {
    lines.push(
      `  jobs      ${report.jobs.submitted} bulk import jobs, ${report.jobs.importErrors} import errors` +
        (report.jobs.forgotten > 0 ? `, ${report.jobs.forgotten} unknown to Klaviyo at the resume (rows sent again)` : ''),
    );
  }
  for (const warning of report.warnings ?? []) lines.push(`  warning   ${warning}`);
  if (report.rejects && report.rejects.count > 0) lines.push(`  rejects   ${report.rejects.count} → ${report.rejects.file}`);
  if (report.error) lines.push(`  error     [${report.error.code}] ${report.error.message}`);
  return lines.join('\n');
}
