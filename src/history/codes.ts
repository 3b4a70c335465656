import type { RunReport } from '../runner/report.js';

/** A run's rejected rows by code (empty for runs whose report has no breakdown). */
export function rejectsByCode(report: RunReport): Record<string, number> {
  const byCode = (report.rejects as { byCode?: Record<string, number> } | undefined)?.byCode;
  return byCode ? { ...byCode } : {};
}
