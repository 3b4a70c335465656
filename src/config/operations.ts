import { z } from 'zod';

/*
 * The operational sections of a pipeline file: what a run's exit code counts as failed (`failOn`), who is told
 * (`alerts`) and where its numbers go (`metrics`). None of them changes what is loaded, so none is part of the
 * checkpoint's configuration hash (changing them never blocks a resume).
 */

/** A duration such as `90s`, `45m`, `2h` or `1d`. */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of a duration matching {@link DURATION_PATTERN}. */
export function durationMs(text: string): number {
  const m = DURATION_PATTERN.exec(text.trim());
  if (!m) throw new TypeError(`Expected a duration like "2h", got ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export const FailOn = z
  .strictObject({
    rejects: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('A run that completes with more rejected rows than this exits 3. Absent from a given `failOn`: not checked.'),
    rejectShare: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('A run that completes with a larger share of its rows rejected (rejected / read, 0.01 = 1%) exits 3. Absent: not checked.'),
  })
  .describe(
    'When a run that completed with rejected rows counts as failed for a scheduler (exit 3 instead of 0). Without `failOn`, any rejected row exits 3. A run in which every row was rejected always fails (exit 1, ALL_ROWS_REJECTED).',
  );

/** The kinds of alert, named as their settings under `alerts`. */
export const ALERT_KINDS = ['failed', 'rejects', 'zeroRows', 'slowerThan', 'failuresInARow', 'recovered'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const AlertWebhook = z
  .strictObject({
    url: z
      .union([z.literal(''), z.string().regex(/^https?:\/\/\S+$/)])
      .describe('Webhook URL, normally from the environment (`${SLACK_WEBHOOK_URL}`); never printed, logged or stored. An empty value (`${VAR:-}` with VAR unset) turns the webhook off.'),
    format: z
      .enum(['slack', 'json'])
      .default('json')
      .describe('`slack`: a Slack incoming-webhook message (`{"text": …}`, also understood by Mattermost, Rocket.Chat, Discord\'s /slack endpoint); `json`: the alert as a JSON object. @default json'),
    on: z.array(z.enum(ALERT_KINDS)).min(1).optional().describe('Only these kinds of alert go to this webhook. @default every kind'),
  })
  .describe('Where alerts are posted.');

export const Alerts = z
  .strictObject({
    webhooks: z.array(AlertWebhook).min(1).describe('Webhooks every alert of a run is posted to (one message per run, naming each alert).'),
    failed: z.boolean().default(true).describe('Alert when a run fails (exit 1). @default true'),
    rejects: z
      .strictObject({
        count: z.number().int().min(0).optional().describe('Alert when more rows than this are rejected.'),
        share: z.number().min(0).max(1).optional().describe('Alert when a larger share of the rows read is rejected (0.01 = 1%).'),
      })
      .optional()
      .describe('Alert on rejected rows above a count or a share. @default no reject alert'),
    zeroRows: z
      .boolean()
      .default(true)
      .describe('Alert when a run completes having read no row at all (an upstream export that silently failed). @default true'),
    slowerThan: z
      .string()
      .regex(DURATION_PATTERN)
      .optional()
      .describe('Alert when a run takes longer than this (`90m`, `2h`). @default no limit'),
    failuresInARow: z
      .number()
      .int()
      .min(2)
      .optional()
      .describe('Alert when this many runs in a row failed (from the run history; interrupted runs neither count nor break the streak). @default off'),
    recovered: z.boolean().default(true).describe('Alert when a run succeeds after a failed run. @default true'),
  })
  .describe('Webhook alerts at the end of a run (see docs/operations.md). A delivery that fails is retried briefly and logged; it never fails the run.');

export const Metrics = z
  .strictObject({
    pushgateway: z
      .union([z.literal(''), z.string().regex(/^https?:\/\/\S+$/)])
      .optional()
      .describe('Prometheus Pushgateway URL: the run\'s metrics are pushed there when it ends (grouped by `job` and `pipeline`). Empty: off.'),
    job: z.string().min(1).default('klaviyo-etl').describe('The Pushgateway job name. @default klaviyo-etl'),
  })
  .describe('Prometheus metrics of a run (see docs/operations.md); `run --metrics-port` also serves them while the run goes on.');

export type FailOnConfig = z.output<typeof FailOn>;
export type AlertsConfig = z.output<typeof Alerts>;
