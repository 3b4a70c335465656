import type { RunReport } from '../runner/report.js';

/** A run's rejected rows by code (empty for runs whose report has no breakdown). */
export function rejectsByCode(report: RunReport): Record<string, number> {
  // reports recorded before rejects were counted by code have no breakdown
  const byCode = report.rejects?.byCode as Record<string, number> | undefined;
  return byCode ? { ...byCode } : {};
}
