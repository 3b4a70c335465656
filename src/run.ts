import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EtlError, isEtlError, redact } from './core/errors.js';
import { silentLogger, type Logger } from './core/logger.js';
import type { LoadItem, Reject, TransformOutput } from './core/record.js';
import { newStats, type RunStats } from './core/stats.js';
import { loadPipelineFile } from './config/load.js';
import type { PipelineConfig } from './config/schema.js';
import { getExtractor } from './extract/registry.js';
import { createTransformer } from './transform/registry.js';
import { openRejects } from './core/rejects.js';
import { createDestination, type Destination } from './destination.js';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from './emulator/index.js';
import { formatSummary, statusFor, type RunReport } from './report.js';

/** Options of one run (the `klaviyo-etl run` command is a thin wrapper around `run`). */
export interface RunOptions {
  /** Path of the pipeline file. */
  pipelineFile: string;
  /** Environment for `${VAR}` interpolation, the API key and KLAVIYO_BASE_URL. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Start an embedded Klaviyo emulator and run against it (`true`, or emulator options). */
  emulator?: boolean | EmulatorOptions;
  /** Read, transform, batch and validate everything; send nothing to Klaviyo. */
  dryRun?: boolean;
  /** Ignore an unfinished run's checkpoint and start over. */
  restart?: boolean;
  /** Write the JSON run report here. */
  reportFile?: string;
  /** Backfill bounds for one run (cursor sources), without moving the stored watermark. */
  since?: string;
  until?: string;
  /** Read at most this many records (sample runs). */
  limit?: number;
  logger?: Logger;
  /** Abort to stop reading, drain in-flight requests, checkpoint and report `interrupted`. */
  signal?: AbortSignal;
  /** Called about once a second with the live counters. */
  onProgress?: (stats: RunStats) => void;
}

/**
 * Run one pipeline: source → transform → destination, routing bad rows to the rejects file.
 * Never throws for record problems; throws EtlError only for an invalid pipeline file (code CONFIG_*).
 * Every other failure is reported in the returned report with status `failed`.
 */
export async function run(options: RunOptions): Promise<RunReport> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const startedAt = new Date();
  const pipelineFile = path.resolve(options.pipelineFile);
  const { config, problems } = await loadPipelineFile(pipelineFile, { env });
  if (!config || problems.length > 0) {
    throw new EtlError('CONFIG_INVALID', `${problems.length} problem(s) in ${options.pipelineFile}`, {
      context: { file: options.pipelineFile, problems },
    });
  }
  const baseDir = path.dirname(pipelineFile);
  const stats = newStats();
  const runId = randomUUID();
  let emulator: EmulatorHandle | undefined;
  let outcome: 'completed' | 'failed' | 'interrupted' = 'completed';
  let error: { code: string; message: string } | undefined;
  const rejectedSeqs = new Set<number>();
  const rejectsPath = path.resolve(baseDir, config.rejects.path ?? path.join('.klaviyo-etl', config.name, 'rejects.ndjson'));
  const rejects = openRejects({ path: rejectsPath, format: config.rejects.format ?? formatFromPath(rejectsPath), append: false });
  let progressTimer: NodeJS.Timeout | undefined;

  const onReject = (list: Reject[]): void => {
    if (list.length === 0) return;
    void rejects.write(list);
    for (const r of list) rejectedSeqs.add(r.seq);
    stats.rows.rejected = rejectedSeqs.size;
    const max = config.rejects.maxRejects;
    if (max !== undefined && rejectedSeqs.size > max) {
      throw new EtlError('KLAVIYO_REJECTED', `more than ${max} rows rejected (rejects.maxRejects); stopping`);
    }
  };

  try {
    if (options.emulator && config.destination.type === 'klaviyo' && !options.dryRun) {
      emulator = await startEmulator({ port: 0, host: '127.0.0.1', ...(typeof options.emulator === 'object' ? options.emulator : {}) });
      logger.info('embedded emulator started', { url: emulator.url });
    }
    if (options.onProgress) {
      const onProgress = options.onProgress;
      progressTimer = setInterval(() => onProgress(stats), 1000);
      progressTimer.unref();
    }
    const destination: Destination = createDestination(config, {
      baseDir,
      env,
      logger,
      stats,
      dryRun: options.dryRun ?? false,
      signal: options.signal,
      baseUrl: emulator?.url,
      apiKey: emulator ? (env.KLAVIYO_API_KEY ?? 'pk_emulator_demo_key_0000000000') : undefined,
      onAck: () => {},
      onReject,
    });
    const reader = getExtractor(config.source.type).create(config.source, {
      baseDir,
      env,
      logger,
      signal: options.signal,
      since: options.since,
      until: options.until,
      limit: options.limit,
    });
    const transformer = createTransformer(config.transform);
    const handle = async (out: TransformOutput): Promise<void> => {
      if (out.rejects.length > 0) onReject(out.rejects);
      if (out.skipped) stats.rows.skipped += out.skipped;
      if (out.items.length > 0) {
        countItems(stats, out.items);
        await destination.write(out.items);
      }
    };
    try {
      for await (const record of reader.records()) {
        stats.rows.read++;
        await handle(transformer.push(record));
        if (options.signal?.aborted) {
          outcome = 'interrupted';
          break;
        }
      }
      if (outcome !== 'interrupted') await handle(transformer.flush());
    } finally {
      await reader.close?.();
    }
    await destination.close();
  } catch (err) {
    outcome = options.signal?.aborted ? 'interrupted' : 'failed';
    if (isEtlError(err) && err.code.startsWith('CONFIG_')) throw err;
    error = isEtlError(err)
      ? { code: err.code, message: redact(err.message) }
      : { code: 'INTERNAL', message: redact(err instanceof Error ? err.message : String(err)) };
    logger.error('run failed', { error });
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    await rejects.close();
  }

  stats.rows.rejected = rejectedSeqs.size;
  stats.rows.loaded = outcome === 'completed' ? Math.max(0, stats.rows.read - stats.rows.rejected - stats.rows.skipped) : 0;
  const finishedAt = new Date();
  const report: RunReport = {
    status: statusFor(stats, outcome),
    pipeline: { name: config.name, file: options.pipelineFile },
    runId,
    resumed: false,
    dryRun: options.dryRun ?? false,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    rows: { ...stats.rows },
    items: { ...stats.items },
    requests: {
      total: stats.requests.total,
      throttled: stats.requests.throttled,
      retried: stats.requests.retried,
      failed: stats.requests.failed,
      planned: stats.plannedRequests,
      byEndpoint: { ...stats.requests.byEndpoint },
    },
    jobs: { ...stats.jobs },
    rejects: { file: path.relative(process.cwd(), rejectsPath) || rejectsPath, count: rejects.count },
    ...(error ? { error } : {}),
  };
  if (emulator) {
    report.emulator = { url: emulator.url, state: emulator.snapshot() };
    await emulator.close();
  }
  if (options.reportFile) {
    await mkdir(path.dirname(path.resolve(options.reportFile)), { recursive: true });
    await writeFile(options.reportFile, JSON.stringify(report, null, 2) + '\n');
  }
  logger.info('run finished', { summary: formatSummary(report) });
  return report;
}

function countItems(stats: RunStats, items: LoadItem[]): void {
  for (const item of items) {
    if (item.kind === 'profile') stats.items.profiles++;
    else if (item.kind === 'event') stats.items.events++;
    else stats.items.subscriptions++;
  }
}

function formatFromPath(file: string): 'csv' | 'ndjson' {
  return file.endsWith('.csv') ? 'csv' : 'ndjson';
}

export type { PipelineConfig };
