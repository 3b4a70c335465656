/**
 * Where a run's metrics go: served over HTTP while it runs (`run --metrics-port`, for a Prometheus that scrapes
 * long runs), and pushed to a Pushgateway when it ends (`metrics.pushgateway`: the Prometheus way for batch jobs).
 * A push that fails is logged and said in the report's warnings; it never fails the run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { redactCredentials } from '../checkpoint/format.js';
import { EtlError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { metricsRegistry, type MetricsSnapshot } from './registry.js';

/** A metrics endpoint being served. */
export interface MetricsServer {
  /** `http://host:port/metrics` */
  url: string;
  close(): Promise<void>;
}

/** Serve the metrics of `snapshot()` at `/metrics` on `port` (0: a free one). Throws USAGE when the port is taken. */
export async function serveMetrics(port: number, host: string, snapshot: () => MetricsSnapshot): Promise<MetricsServer> {
  const registry = await metricsRegistry(snapshot);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/metrics')) {
      res.writeHead(404).end('klaviyo-etl serves /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new EtlError('USAGE', `--metrics-port: cannot listen on ${host}:${port} (${error.code ?? error.message})`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

/**
 * Push a finished run's metrics to a Pushgateway, replacing the group `job`/`pipeline` (PUT). Returns why it
 * failed, or undefined.
 */
export async function pushMetrics(url: string, job: string, snapshot: MetricsSnapshot, logger: Logger): Promise<string | undefined> {
  const { Pushgateway } = await import('prom-client');
  const registry = await metricsRegistry(() => snapshot);
  const gateway = new Pushgateway(url, { timeout: 10_000 }, registry);
  try {
    const { resp } = await gateway.push({ jobName: job, groupings: { pipeline: snapshot.pipeline } });
    const status = (resp as { statusCode?: number } | undefined)?.statusCode;
    if (status !== undefined && (status < 200 || status >= 300)) throw new Error(`HTTP ${status}`);
    logger.info('metrics pushed', { job, pipeline: snapshot.pipeline });
    return undefined;
  } catch (error) {
    const why = redactCredentials((error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error)));
    logger.warn('metrics not pushed to the Pushgateway', { job, error: why });
    return why;
  }
}
