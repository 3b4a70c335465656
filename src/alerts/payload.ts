/**
 * What an alert webhook receives: a Slack incoming-webhook message (`{"text": …}` in Slack's mrkdwn) or a plain JSON
 * object. Built from the run report only, through `redactSecrets`: never an API key, a URL password or the webhook
 * URL itself.
 */
import { redactSecrets } from '../checkpoint/format.js';
import { rejectsByCode } from '../history/codes.js';
import type { RunReport } from '../runner/report.js';
import type { Alert } from './evaluate.js';

/** The JSON payload (`format: json`). */
export interface AlertPayload {
  type: 'klaviyo-etl.alert';
  pipeline: string;
  alerts: Alert[];
  run: {
    runId: string;
    status: RunReport['status'];
    startedAt: string;
    finishedAt: string;
    durationMs: number;
    rows: RunReport['rows'];
    rejectsByCode: Record<string, number>;
    requests: { total: number; throttled: number; retried: number; failed: number };
    error?: RunReport['error'];
    warnings?: RunReport['warnings'];
  };
  /** The same as a few lines of text. */
  text: string;
}

const nf = new Intl.NumberFormat('en-US');

/** A few plain lines: the alerts, then the run's numbers. */
export function alertText(report: RunReport, alerts: readonly Alert[]): string {
  const { rows, requests } = report;
  const codes = Object.entries(rejectsByCode(report))
    .map(([code, n]) => `${code} ${nf.format(n)}`)
    .join(', ');
  const lines = [
    `klaviyo-etl ${report.pipeline.name}: ${alerts.map((a) => a.kind).join(', ')}`,
    ...alerts.map((a) => `- ${a.message}`),
    `run ${report.runId} ${report.status} in ${(report.durationMs / 1000).toFixed(1)} s (finished ${report.finishedAt})`,
    `rows read ${nf.format(rows.read)}, loaded ${nf.format(rows.loaded)}, rejected ${nf.format(rows.rejected)}${codes ? ` (${codes})` : ''}`,
    `requests ${nf.format(requests.total)}, 429s ${nf.format(requests.throttled)}, retried ${nf.format(requests.retried)}`,
    ...(report.warnings ?? []).slice(0, 5).map((w) => `warning [${w.code}] ${w.message}`),
  ];
  return redactSecrets(lines.join('\n'));
}

export function jsonPayload(report: RunReport, alerts: readonly Alert[]): AlertPayload {
  const { requests } = report;
  return redactSecrets({
    type: 'klaviyo-etl.alert',
    pipeline: report.pipeline.name,
    alerts: [...alerts],
    run: {
      runId: report.runId,
      status: report.status,
      startedAt: report.startedAt,
      finishedAt: report.finishedAt,
      durationMs: report.durationMs,
      rows: { ...report.rows },
      rejectsByCode: rejectsByCode(report),
      requests: { total: requests.total, throttled: requests.throttled, retried: requests.retried, failed: requests.failed },
      ...(report.error ? { error: report.error } : {}),
      ...(report.warnings ? { warnings: report.warnings } : {}),
    },
    text: alertText(report, alerts),
  });
}

/** Slack's incoming-webhook message: `text` in mrkdwn (first line bold). */
export function slackPayload(report: RunReport, alerts: readonly Alert[]): { text: string } {
  const [first, ...rest] = alertText(report, alerts).split('\n');
  const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return { text: [`*${escape(first!)}*`, ...rest.map(escape)].join('\n') };
}
