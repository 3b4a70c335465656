/**
 * `klaviyo-etl reset <pipeline>`: forget a pipeline's state, so that its next run starts from nothing: the watermark
 * (the next run reads every source in full) and an unfinished run (not resumed; its pending bulk jobs are not
 * polled). Rejects files are kept. The reset takes the pipeline's lock, so it never pulls the state from under a
 * running run (LOCKED); an unreadable checkpoint (CHECKPOINT_CORRUPT) is cleared like any other.
 */
import path from 'node:path';
import { createCheckpointStore, type Checkpoint } from './checkpoint/index.js';
import type { CheckpointStore } from './checkpoint/store.js';
import { loadPipelineFileOrThrow } from './config/load.js';
import { isEtlError } from './core/errors.js';

/** Options of {@link resetPipeline} and {@link pipelineResetPlan}. */
export interface ResetOptions {
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** As for `run`: the directory of checkpoints. @default $KLAVIYO_ETL_STATE_DIR */
  stateDir?: string;
}

/** What a reset forgets. */
export interface ResetPlan {
  pipeline: string;
  /** Where the checkpoint is. */
  checkpoint: string;
  /** `never-run`: nothing to reset; `corrupt`: an unreadable checkpoint. */
  state: Checkpoint['status'] | 'never-run' | 'corrupt';
  /** A successful run left a watermark (the next run would be incremental). */
  watermark: boolean;
  /** The unfinished run that would be resumed, and its pending bulk jobs. */
  unfinished?: { runId: string; status: Checkpoint['status']; pendingJobs: string[] };
  lastSuccess?: Checkpoint['lastSuccess'];
}

async function storeOf(pipelineFile: string, options: ResetOptions): Promise<{ name: string; store: CheckpointStore }> {
  const env = options.env ?? process.env;
  const { config, source } = await loadPipelineFileOrThrow(path.resolve(pipelineFile), { env });
  const stateDir = options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR;
  const checkpoint =
    config.checkpoint.store === 'local' && !config.checkpoint.dir && stateDir ? { ...config.checkpoint, dir: path.resolve(stateDir, config.name) } : config.checkpoint;
  return { name: config.name, store: createCheckpointStore(checkpoint, { pipelineName: config.name, baseDir: source.dir, env }) };
}

async function planOf(name: string, store: CheckpointStore): Promise<ResetPlan> {
  let cp: Checkpoint | undefined;
  try {
    cp = await store.read();
  } catch (error) {
    if (isEtlError(error) && error.code === 'CHECKPOINT_CORRUPT') return { pipeline: name, checkpoint: store.location, state: 'corrupt', watermark: false };
    throw error;
  }
  if (!cp) return { pipeline: name, checkpoint: store.location, state: 'never-run', watermark: false };
  return {
    pipeline: name,
    checkpoint: store.location,
    state: cp.status,
    watermark: cp.watermark !== undefined,
    ...(cp.status !== 'succeeded' ? { unfinished: { runId: cp.runId, status: cp.status, pendingJobs: [...cp.pendingJobs] } } : {}),
    ...(cp.lastSuccess ? { lastSuccess: cp.lastSuccess } : {}),
  };
}

/** What {@link resetPipeline} would forget (read without the lock). */
export async function pipelineResetPlan(pipelineFile: string, options: ResetOptions = {}): Promise<ResetPlan> {
  const { name, store } = await storeOf(pipelineFile, options);
  try {
    return await planOf(name, store);
  } finally {
    await store.close?.();
  }
}

/**
 * Forget a pipeline's state (its checkpoint: watermark and unfinished run), under its lock. Returns what was
 * forgotten. Throws LOCKED while a run holds the lock.
 */
export async function resetPipeline(pipelineFile: string, options: ResetOptions = {}): Promise<ResetPlan> {
  const { name, store } = await storeOf(pipelineFile, options);
  try {
    const lock = await store.lock();
    try {
      const plan = await planOf(name, store);
      if (plan.state !== 'never-run') await store.clear();
      return plan;
    } finally {
      await lock.release();
    }
  } finally {
    await store.close?.();
  }
}

/** A few lines for people: what a reset forgets and keeps. */
export function formatResetPlan(plan: ResetPlan): string {
  const lines = [`${plan.pipeline}: state in ${plan.checkpoint}`];
  if (plan.state === 'never-run') return `${lines[0]}: nothing to reset (no checkpoint)`;
  if (plan.state === 'corrupt') lines.push('  forgets  an unreadable checkpoint');
  if (plan.watermark) lines.push(`  forgets  the watermark of the last successful run${plan.lastSuccess ? ` (${plan.lastSuccess.finishedAt})` : ''}: the next run reads every source in full`);
  if (plan.unfinished) {
    const jobs = plan.unfinished.pendingJobs.length;
    lines.push(`  forgets  the unfinished run ${plan.unfinished.runId} (${plan.unfinished.status}): it is not resumed` + (jobs > 0 ? `; its ${jobs} pending bulk job(s) are not polled (${plan.unfinished.pendingJobs.join(', ')})` : ''));
  }
  lines.push('  keeps    the rejects files of earlier runs');
  return lines.join('\n');
}
