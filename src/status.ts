import path from 'node:path';
import { loadPipelineIgnoringEnvOf } from './config/load-lenient.js';
import { createCheckpointStore, mappingVersion, pipelineHash, type Checkpoint } from './checkpoint/index.js';
import { BUILTIN_COMPONENTS } from './components/index.js';
import type { PipelineConfig } from './config/pipeline.js';
import { openHistoryStore } from './history/store.js';
import type { RunReport } from './runner/report.js';

/** Where a pipeline stands, from its checkpoint (read without taking the lock). */
export interface PipelineStatus {
  pipeline: string;
  checkpoint: string;
  /** `never-run` when there is no checkpoint yet. */
  state: Checkpoint['status'] | 'never-run';
  runId?: string;
  updatedAt?: string;
  /** Last record whose effect Klaviyo acknowledged (the next run resumes after it). */
  position?: Checkpoint['position'];
  pendingJobs: string[];
  counters?: { read: number; loaded: number; rejected: number };
  lastSuccess?: Checkpoint['lastSuccess'];
  /** Whether the pipeline file changed since the checkpoint was written in a way that changes output. */
  configChanged: boolean;
  /** What the next `run` will do. */
  next: 'start' | 'resume' | 'incremental' | 'read again (mapping changed)' | 'refuse (pipeline changed; use --restart)';
  watermark?: unknown;
  /**
   * Variables the source or destination names that are unset here (status reads neither): whether the pipeline
   * changed since the checkpoint was not checked (`configChanged` is then false).
   */
  unsetEnv?: string[];
  /** The last run in the run history: how it ended, and why when it failed. */
  lastRun?: Pick<RunReport, 'runId' | 'status' | 'finishedAt' | 'durationMs' | 'error'>;
}

/** The last run of the run history (undefined when there is none or it cannot be read: status must still answer). */
async function lastRunOf(config: PipelineConfig, baseDir: string, env: NodeJS.ProcessEnv, stateDir: string | undefined): Promise<PipelineStatus['lastRun']> {
  const history = openHistoryStore(config, { baseDir, env, stateDir });
  try {
    const last = (await history.list(1)).at(-1);
    return last && { runId: last.runId, status: last.status, finishedAt: last.finishedAt, durationMs: last.durationMs, ...(last.error ? { error: last.error } : {}) };
  } catch {
    return undefined;
  } finally {
    await history.close();
  }
}

export async function pipelineStatus(
  pipelineFile: string,
  options: { env?: NodeJS.ProcessEnv; stateDir?: string } = {},
): Promise<PipelineStatus> {
  const env = options.env ?? process.env;
  // the source's ${DATABASE_URL} is not needed to read a checkpoint (the checkpoint section's variables are)
  const { config, source, unset } = await loadPipelineIgnoringEnvOf(path.resolve(pipelineFile), ['source', 'destination'], { env });
  const unsetEnv = unset.length > 0 ? { unsetEnv: unset } : {};
  const stateDir = options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR;
  const checkpointConfig =
    config.checkpoint.store === 'local' && !config.checkpoint.dir && stateDir
      ? { ...config.checkpoint, dir: path.resolve(stateDir, config.name) }
      : config.checkpoint;
  const store = createCheckpointStore(checkpointConfig, { pipelineName: config.name, baseDir: source.dir, env });
  const lastRun = await lastRunOf(config, source.dir, env, stateDir);
  const last = lastRun ? { lastRun } : {};
  try {
    const cp = await store.read();
    if (!cp) return { pipeline: config.name, checkpoint: store.location, state: 'never-run', pendingJobs: [], configChanged: false, next: 'start', ...last, ...unsetEnv };
    const configChanged = unset.length === 0 && cp.configHash !== pipelineHash(config);
    const unfinished = cp.status !== 'succeeded';
    return {
      pipeline: config.name,
      checkpoint: store.location,
      state: cp.status,
      runId: cp.runId,
      updatedAt: cp.updatedAt,
      position: cp.position,
      pendingJobs: cp.pendingJobs,
      counters: cp.counters ? { read: cp.counters.rows.read, loaded: cp.counters.rows.loaded, rejected: cp.counters.rows.rejected } : undefined,
      lastSuccess: cp.lastSuccess,
      configChanged,
      next: unfinished ? (configChanged ? 'refuse (pipeline changed; use --restart)' : 'resume') : rereads(cp, config) ? 'read again (mapping changed)' : 'incremental',
      watermark: cp.watermark,
      ...last,
      ...unsetEnv,
    };
  } finally {
    await store.close?.();
  }
}

/** A file or S3 source whose watermark another mapping version stored reads its inputs again (docs/delivery.md). */
function rereads(cp: Checkpoint, config: PipelineConfig): boolean {
  const source = BUILTIN_COMPONENTS.sources.find((d) => d.type === config.source.type);
  return Boolean(source?.capabilities.rereadOnNewMapping && cp.watermarkVersion !== undefined && cp.watermarkVersion !== mappingVersion(config));
}

/** A few lines for people. */
export function formatStatus(s: PipelineStatus): string {
  const lines = [`${s.pipeline}: ${s.state}`, `  checkpoint  ${s.checkpoint}`];
  if (s.runId) lines.push(`  run         ${s.runId} (updated ${s.updatedAt})`);
  if (s.position) {
    const p = s.position;
    const where = p.line !== undefined ? `${p.source}:${p.line}` : p.cursor ? `${p.source} ${JSON.stringify(p.cursor)}` : p.source;
    lines.push(`  position    record ${p.seq + 1} (${where})`);
  }
  if (s.counters) lines.push(`  rows        read ${s.counters.read}, loaded ${s.counters.loaded}, rejected ${s.counters.rejected}`);
  if (s.pendingJobs.length > 0) lines.push(`  pending     ${s.pendingJobs.length} bulk import job(s): ${s.pendingJobs.join(', ')}`);
  if (s.lastSuccess) lines.push(`  last success ${s.lastSuccess.finishedAt} (${s.lastSuccess.runId})`);
  if (s.lastRun) {
    const why = s.lastRun.error ? `: [${s.lastRun.error.code}] ${s.lastRun.error.message}` : '';
    lines.push(`  last run    ${s.lastRun.status} at ${s.lastRun.finishedAt} (${s.lastRun.runId})${why}`);
  }
  lines.push(`  next run    ${s.next}`);
  if (s.unsetEnv) lines.push(`  note        ${s.unsetEnv.join(', ')} not set here: whether the pipeline changed since the checkpoint was not checked`);
  return lines.join('\n');
}
