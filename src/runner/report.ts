import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunWarning } from '../core/errors.js';
import type { ItemCounts, RunStats } from '../core/stats.js';
import type { AlertDelivery } from '../alerts/deliver.js';
import { describeExample, type RejectExample } from './rejects.js';
import { formatPlan, type RunPlan } from './plan.js';
import type { RunSetup } from './setup.js';

export type RunStatus = 'succeeded' | 'completed_with_rejects' | 'failed' | 'interrupted';

/** The run report: printed as a summary, written as JSON with `--report`. Stable interface (README, "Run report"). */
export interface RunReport {
  status: RunStatus;
  pipeline: { name: string; file: string };
  runId: string;
  /** True when this run continued an interrupted earlier run from its checkpoint. */
  resumed: boolean;
  /**
   * A resumed run: the rows its earlier attempts had settled (this attempt read on after them). `rows` count the
   * whole run; `durationMs` is this attempt's.
   */
  resumedAfterRows?: number;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  /** Skipped rows by reason (a `where:` condition, a subscription's `when`): adds up to `rows.skipped`. */
  skippedBy?: Record<string, number>;
  /**
   * `duplicates`: events Klaviyo ignores as repeats of an earlier event of this run (see RunStats). `exportRows`:
   * rows written by an export.
   */
  /** Items per kind (`unsubscribes`, `suppressions` and `listRemovals` are in every report this version writes). */
  items: ReportItems;
  /** Fields cleared (`clear: true`): profiles patched, fields cleared, rows whose profile held nothing to clear. */
  clears?: { profiles: number; fields: number; unchanged: number };
  requests: {
    total: number;
    throttled: number;
    retried: number;
    failed: number;
    /** Requests a real run would make (dry runs). */
    planned: number;
    byEndpoint: Record<string, number>;
    /** 429s per endpoint. */
    throttledByEndpoint: Record<string, number>;
  };
  /** `forgotten`: jobs of the interrupted run that Klaviyo no longer knew at the resume; their rows were sent again. */
  jobs: { submitted: number; completed: number; importErrors: number; forgotten: number };
  /**
   * This run's rejects file (every run writes its own; none is created when no row is rejected), the rejected rows,
   * and the rows by code (the most common first) with the first reject of each code as an example.
   */
  rejects?: { file: string; count: number; byCode: Record<string, number>; examples: Record<string, RejectExample> };
  /** The run read every source in full (`--full-refresh`, or the resume of such a run). */
  fullRefresh?: boolean;
  /** The rejects file whose rows this run sent again (`--from-rejects`). */
  fromRejects?: string;
  /**
   * Rows a loader deliberately did not send (`rows.skipped` also counts rows a transform filtered out), by code
   * (CONSENT_OPTED_OUT: the profile opted out after the row's consent), and the file listing them with their source
   * location and reason. Present when a loader skipped rows in the run (a resumed run: in any of its attempts).
   */
  skips?: { file: string; byCode: Record<string, number> };
  /** The read-back of a subscription load (`destination.verify`): how many sampled profiles hold their consent. */
  verify?: { sampled: number; holding: number; notHolding: number; requests: number; waitedMs: number; complete: boolean };
  /** What an export wrote, once published: its file (relative to the working directory when inside it) or `s3://bucket/key`. */
  output?: string;
  /** Where the run stands for the next run (for resumable runs). */
  checkpoint?: { file: string; position?: unknown };
  /**
   * What the user should know of a run that did not fail for it: a source file that is empty or holds no row, rows
   * sent again because Klaviyo forgot their job. Each with a stable code (WARNING_CODES, docs/errors.md).
   */
  warnings?: RunWarning[];
  error?: { code: string; message: string };
  /**
   * A run that completed with rejects: the pipeline's `failOn` thresholds (default `rejects: 0`) and whether the
   * rejects exceed them (exit 3) or not (exit 0).
   */
  failOn?: { rejects?: number; rejectShare?: number; exceeded: boolean };
  /** The alerts this run raised and whether each webhook took them (see docs/operations.md). */
  alerts?: AlertDelivery[];
  /** Dry runs: requests and bulk jobs per endpoint, the least wall time the tiers allow, and `--window`'s verdict. */
  plan?: RunPlan;
  /** What the embedded emulator holds at the end (`--emulator` runs). */
  emulator?: { url: string; state: unknown };
}

export function statusFor(stats: RunStats, outcome: 'completed' | 'failed' | 'interrupted'): RunStatus {
  if (outcome !== 'completed') return outcome;
  return stats.rows.rejected > 0 ? 'completed_with_rejects' : 'succeeded';
}

const fmt = new Intl.NumberFormat('en-US');

type ConsentKinds = 'unsubscribes' | 'suppressions' | 'listRemovals';
type ReportItems = Omit<ItemCounts, ConsentKinds> & Partial<Pick<ItemCounts, ConsentKinds>>;

/** The consent-removing items of a run, when it had some. */
function consentItems(items: ReportItems): string {
  const named: [string, number | undefined][] = [
    ['unsubscribes', items.unsubscribes],
    ['suppressions', items.suppressions],
    ['list removals', items.listRemovals],
  ];
  return named.map(([name, n]) => (n ? `, ${name} ${fmt.format(n)}` : '')).join('');
}

/** A human summary of a report, a few lines long. */
export function formatSummary(report: RunReport): string {
  const secs = (report.durationMs / 1000).toFixed(1);
  // a resumed run's rows count the whole run, its duration this attempt: the rate is of the rows this attempt read
  const before = report.resumedAfterRows ?? 0;
  const thisAttempt = Math.max(0, report.rows.read - before);
  const rate = report.durationMs > 0 ? Math.round((thisAttempt * 1000) / report.durationMs) : 0;
  const lines = [
    `${report.pipeline.name}: ${report.status}${report.dryRun ? ' (dry run)' : ''}${report.fullRefresh ? ' (full refresh)' : ''}${report.fromRejects ? ` (rows of ${report.fromRejects})` : ''}` +
      (report.resumed ? ` (resumed after row ${fmt.format(before)}; this attempt ${secs}s)` : ` in ${secs}s`),
    `  rows      read ${fmt.format(report.rows.read)}, loaded ${fmt.format(report.rows.loaded)}, rejected ${fmt.format(report.rows.rejected)}, skipped ${fmt.format(report.rows.skipped)}` +
      (report.resumed ? ` (whole run; ${fmt.format(thisAttempt)} read by this attempt, ${fmt.format(rate)} rows/s)` : ` (${fmt.format(rate)} rows/s)`),
    `  items     profiles ${fmt.format(report.items.profiles)}, events ${fmt.format(report.items.events)}, subscriptions ${fmt.format(report.items.subscriptions)}` +
      consentItems(report.items) +
      (report.items.exportRows > 0 ? `, export rows ${fmt.format(report.items.exportRows)}` : '') +
      (report.items.duplicates > 0 ? `, duplicates ${fmt.format(report.items.duplicates)} (ignored by Klaviyo: same profile, metric and unique_id)` : ''),
    report.dryRun
      ? `  requests  a real run would make ${fmt.format(report.requests.planned)} requests`
      : `  requests  ${fmt.format(report.requests.total)} total, ${fmt.format(report.requests.throttled)} throttled (429), ${fmt.format(report.requests.retried)} retried`,
  ];
  if (report.clears) {
    const c = report.clears;
    lines.push(`  cleared   ${fmt.format(c.fields)} fields in ${fmt.format(c.profiles)} profiles (PATCH); ${fmt.format(c.unchanged)} rows had nothing to clear`);
  }
  for (const [reason, count] of Object.entries(report.skippedBy ?? {})) lines.push(`  skipped   ${fmt.format(count)} × ${reason}`);
  if (report.jobs.submitted > 0 || report.jobs.forgotten > 0) {
    lines.push(
      `  jobs      ${report.jobs.submitted} bulk import jobs, ${report.jobs.importErrors} import errors` +
        (report.jobs.forgotten > 0 ? `, ${report.jobs.forgotten} unknown to Klaviyo at the resume (rows sent again)` : ''),
    );
  }
  if (report.skips) {
    const codes = Object.entries(report.skips.byCode).map(([code, n]) => `${code} ${fmt.format(n)}`).join(', ');
    lines.push(`  skipped   ${codes} → ${report.skips.file}`);
  }
  if (report.verify) {
    const v = report.verify;
    lines.push(
      `  verify    ${fmt.format(v.holding)} of ${fmt.format(v.sampled)} sampled profiles hold the consent sent` +
        (v.complete ? '' : ` after ${(v.waitedMs / 1000).toFixed(0)} s (Klaviyo applies subscriptions asynchronously; the rest may follow)`),
    );
  }
  if (report.plan && (report.plan.endpoints.length > 0 || report.plan.window)) lines.push(...formatPlan(report.plan));
  for (const warning of report.warnings ?? []) lines.push(`  warning   [${warning.code}] ${warning.message}`);
  if (report.output) lines.push(`  output    ${report.output}`);
  if (report.rejects && report.rejects.count > 0) {
    const within = report.failOn && !report.failOn.exceeded ? ' (within failOn: the run counts as succeeded, exit 0)' : '';
    lines.push(`  rejects   ${fmt.format(report.rejects.count)} → ${report.rejects.file}${within}`);
    // the three most common reasons, each with one example to look at
    for (const [code, count] of Object.entries(report.rejects.byCode).slice(0, 3)) {
      const example = report.rejects.examples[code];
      lines.push(`            ${code} ${fmt.format(count)}${example ? `, e.g. ${describeExample(example)}` : ''}`);
    }
    const more = Object.keys(report.rejects.byCode).length - 3;
    if (more > 0) lines.push(`            and ${more} more code${more === 1 ? '' : 's'} (see the report's rejects.byCode)`);
  }
  for (const alert of report.alerts ?? []) {
    lines.push(`  alert     ${alert.kinds.join(', ')} → webhook ${alert.webhook} (${alert.format}): ${alert.delivered ? 'delivered' : `not delivered after ${alert.attempts} attempts`}`);
  }
  if (report.error) lines.push(`  error     [${report.error.code}] ${report.error.message}`);
  return lines.join('\n');
}

/** How a run ended, before the report: `error` set for a failed run. */
export interface RunOutcome {
  outcome: 'completed' | 'failed' | 'interrupted';
  error?: { code: string; message: string };
}

function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/** What {@link buildReport} reports on. */
export interface ReportInput {
  pipeline: { name: string; file: string };
  dryRun: boolean;
  startedAt: Date;
  stats: RunStats;
  setup: RunSetup;
  end: RunOutcome;
  warnings: RunWarning[];
  fullRefresh?: boolean;
  fromRejects?: string;
  /** Where an export went (see RunReport.output). */
  output?: string;
}

/** The report of a finished run. */
export function buildReport({ pipeline, dryRun, startedAt, stats, setup, end, warnings, fullRefresh, fromRejects, output }: ReportInput): RunReport {
  const finishedAt = new Date();
  return {
    status: statusFor(stats, end.outcome),
    pipeline,
    runId: setup.runId,
    resumed: setup.resume?.resumed ?? false,
    ...(setup.resume?.resumed ? { resumedAfterRows: setup.firstSeq } : {}),
    dryRun,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    rows: { ...stats.rows },
    skippedBy: { ...stats.skippedBy },
    items: { ...stats.items },
    ...(stats.clears.profiles + stats.clears.unchanged > 0 ? { clears: { ...stats.clears } } : {}),
    requests: {
      total: stats.requests.total,
      throttled: stats.requests.throttled,
      retried: stats.requests.retried,
      failed: stats.requests.failed,
      planned: stats.plannedRequests,
      byEndpoint: { ...stats.requests.byEndpoint },
      throttledByEndpoint: { ...stats.requests.throttledByEndpoint },
    },
    jobs: { ...stats.jobs },
    rejects: { file: displayPath(setup.rejects.path), count: setup.rejects.count, byCode: setup.rejects.tally.byCode(), examples: setup.rejects.tally.examples() },
    ...(fullRefresh ? { fullRefresh } : {}),
    ...(fromRejects !== undefined ? { fromRejects } : {}),
    ...(stats.skippedByCode ? { skips: { file: displayPath(setup.skipped.path), byCode: { ...stats.skippedByCode } } } : {}),
    ...(stats.verify ? { verify: { ...stats.verify } } : {}),
    ...(output === undefined ? {} : { output: output.startsWith('s3://') ? output : displayPath(output) }),
    ...(setup.location && !setup.ephemeralDir ? { checkpoint: { file: displayPath(setup.location), position: setup.tracker.safePosition() } } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
    ...(end.error ? { error: end.error } : {}),
  };
}

/** Write the JSON report (`--report`). */
export async function writeReport(file: string, report: RunReport): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
}
