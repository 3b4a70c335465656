/**
 * A run's Prometheus metrics (prom-client), read from a snapshot of its numbers when they are collected: live
 * counters while the run goes on (`--metrics-port`), the report when it ends (Pushgateway).
 */
import type { Registry } from 'prom-client';
import type { RunStatus } from '../runner/report.js';

/** The numbers the metrics show. */
export interface MetricsSnapshot {
  pipeline: string;
  /** `running` while the run goes on. */
  status: RunStatus | 'running';
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  rejectsByCode: Record<string, number>;
  requestsByEndpoint: Record<string, number>;
  throttledByEndpoint: Record<string, number>;
  durationMs: number;
  /** When the pipeline last ran successfully (ISO), if it ever did. */
  lastSuccessAt?: string;
}

const STATUSES = ['running', 'succeeded', 'completed_with_rejects', 'failed', 'interrupted'] as const;

/** A registry whose metrics are read from `snapshot()` at each collection. */
export async function metricsRegistry(snapshot: () => MetricsSnapshot): Promise<Registry> {
  const { Registry, Gauge } = await import('prom-client');
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: InstanceType<typeof Gauge>, s: MetricsSnapshot) => void): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pipeline', ...labelNames],
      registers: [registry],
      collect() {
        this.reset();
        fill(this, snapshot());
      },
    });
  };
  gauge('klaviyo_etl_rows', 'Rows of the run by state (read, loaded, rejected, skipped).', ['state'], (g, s) => {
    for (const [state, n] of Object.entries(s.rows)) g.set({ pipeline: s.pipeline, state }, n);
  });
  gauge('klaviyo_etl_rejects', 'Rejected rows of the run by error code.', ['code'], (g, s) => {
    for (const [code, n] of Object.entries(s.rejectsByCode)) g.set({ pipeline: s.pipeline, code }, n);
  });
  gauge('klaviyo_etl_requests', 'Requests the run sent to Klaviyo, by endpoint.', ['endpoint'], (g, s) => {
    for (const [endpoint, n] of Object.entries(s.requestsByEndpoint)) g.set({ pipeline: s.pipeline, endpoint }, n);
  });
  gauge('klaviyo_etl_throttled_requests', 'Requests Klaviyo answered 429 (throttled), by endpoint.', ['endpoint'], (g, s) => {
    for (const [endpoint, n] of Object.entries(s.throttledByEndpoint)) g.set({ pipeline: s.pipeline, endpoint }, n);
  });
  gauge('klaviyo_etl_run_duration_seconds', 'How long the run took (so far, while it runs).', [], (g, s) => {
    g.set({ pipeline: s.pipeline }, s.durationMs / 1000);
  });
  gauge('klaviyo_etl_run_status', 'The run status: 1 for the current one.', ['status'], (g, s) => {
    for (const status of STATUSES) g.set({ pipeline: s.pipeline, status }, status === s.status ? 1 : 0);
  });
  gauge('klaviyo_etl_last_success_timestamp_seconds', 'When the pipeline last ran successfully (exit 0), in Unix seconds.', [], (g, s) => {
    if (s.lastSuccessAt) g.set({ pipeline: s.pipeline }, Date.parse(s.lastSuccessAt) / 1000);
  });
  return registry;
}
