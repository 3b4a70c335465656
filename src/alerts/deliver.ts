/**
 * Posting a run's alerts to the pipeline's webhooks: one message per webhook per run, naming every alert it takes.
 * A delivery that fails (network error, timeout, non-2xx) is retried briefly, then logged and recorded in the
 * report; it never fails the run. Webhooks are named by their position (`webhook 1`), never by URL: a Slack
 * webhook URL is a credential.
 */
import { request } from 'undici';
import type { AlertKind, AlertsConfig } from '../config/operations.js';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RunReport } from '../runner/report.js';
import type { Alert } from './evaluate.js';
import { jsonPayload, slackPayload } from './payload.js';

/** What became of one webhook's message (in the report's `alerts`). */
export interface AlertDelivery {
  /** The webhook's position in `alerts.webhooks`, from 1. */
  webhook: number;
  format: 'slack' | 'json';
  kinds: AlertKind[];
  delivered: boolean;
  attempts: number;
  /** Why the last attempt failed (`HTTP 500`, `timeout`, a network error code). */
  error?: string;
}

/** How deliveries are tried. */
export interface DeliveryOptions {
  logger: Logger;
  /** Waits before the 2nd, 3rd… attempt. @default [500, 2000] */
  retryDelaysMs?: readonly number[];
  /** Per attempt. @default 5000 */
  timeoutMs?: number;
  clock?: Clock;
}

async function post(url: string, body: unknown, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'klaviyo-etl' },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump();
    return res.statusCode >= 200 && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`;
  } catch (error) {
    const e = error as { code?: string; name?: string };
    return e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : (e.code ?? e.name ?? 'network error');
  }
}

async function deliverOne(url: string, body: unknown, options: DeliveryOptions): Promise<{ attempts: number; error?: string }> {
  const delays = options.retryDelaysMs ?? [500, 2000];
  let error: string | undefined;
  for (let attempt = 0; attempt <= delays.length; attempt++) {
    if (attempt > 0) await sleep(options.clock ?? systemClock, delays[attempt - 1]!);
    error = await post(url, body, options.timeoutMs ?? 5000);
    if (error === undefined) return { attempts: attempt + 1 };
  }
  return { attempts: delays.length + 1, error };
}

/** Post `alerts` to every webhook that takes one of them; what became of each message. */
export async function deliverAlerts(report: RunReport, alerts: readonly Alert[], config: AlertsConfig, options: DeliveryOptions): Promise<AlertDelivery[]> {
  if (alerts.length === 0) return [];
  const sends = config.webhooks.map(async (hook, i): Promise<AlertDelivery | undefined> => {
    const taken = alerts.filter((a) => !hook.on || hook.on.includes(a.kind));
    if (hook.url === '' || taken.length === 0) return undefined;
    const body = hook.format === 'slack' ? slackPayload(report, taken) : jsonPayload(report, taken);
    const { attempts, error } = await deliverOne(hook.url, body, options);
    const delivery: AlertDelivery = { webhook: i + 1, format: hook.format, kinds: taken.map((a) => a.kind), delivered: error === undefined, attempts, ...(error ? { error } : {}) };
    if (error) options.logger.warn('alert not delivered', { webhook: delivery.webhook, format: hook.format, kinds: delivery.kinds, attempts, error });
    else options.logger.info('alert delivered', { webhook: delivery.webhook, format: hook.format, kinds: delivery.kinds });
    return delivery;
  });
  return (await Promise.all(sends)).filter((d): d is AlertDelivery => d !== undefined);
}
