/**
 * What a run's rejects make of its outcome for a scheduler: every row rejected is a failure (exit 1,
 * ALL_ROWS_REJECTED); otherwise `failOn` says above which count or share of rejected rows a completed run exits 3
 * (without it: any reject). The status stays `completed_with_rejects` either way: the rejects are never hidden.
 */
import type { FailOnConfig } from '../config/operations.js';
import type { RunReport } from './report.js';

/** `failOn` when the pipeline sets none: any rejected row exits 3. */
const DEFAULT_FAIL_ON: FailOnConfig = { rejects: 0 };

/** Whether rejected rows exceed the thresholds (each one set is checked; a run above any of them fails). */
export function rejectsExceed(rows: RunReport['rows'], count: number | undefined, share: number | undefined): boolean {
  if (count !== undefined && rows.rejected > count) return true;
  return share !== undefined && rows.read > 0 && rows.rejected / rows.read > share;
}

/** Apply the reject policy to a finished run's report (in place). */
export function judgeRejects(report: RunReport, failOn: FailOnConfig | undefined): void {
  if (report.status !== 'completed_with_rejects') return;
  const { rows } = report;
  if (rows.loaded === 0 && rows.rejected > 0 && rows.rejected + rows.skipped >= rows.read) {
    report.status = 'failed';
    report.error = {
      code: 'ALL_ROWS_REJECTED',
      message: `every row was rejected (${rows.rejected} of ${rows.read} read): nothing was loaded; see the rejects file${report.rejects ? ` ${report.rejects.file}` : ''}`,
    };
    return;
  }
  const limits = failOn ?? DEFAULT_FAIL_ON;
  report.failOn = { ...limits, exceeded: rejectsExceed(rows, limits.rejects, limits.rejectShare) };
}
