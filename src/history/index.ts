/**
 * `klaviyo-etl history <pipeline>`: a pipeline's last runs from its run history (written by every run, see
 * store.ts), as reports (newest last), a table (table.ts) or a self-contained HTML page (html.ts).
 */
import path from 'node:path';
import { loadPipelineFileOrThrow } from '../config/load.js';
import type { RunReport } from '../runner/report.js';
import { openHistoryStore } from './store.js';

export { formatHistory } from './table.js';
export { historyHtml } from './html.js';

/** Options of {@link pipelineHistory}. */
export interface HistoryOptions {
  /** Environment for `${VAR}` and the AWS credentials of an S3 store. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** As for `run`: where local checkpoints are. @default $KLAVIYO_ETL_STATE_DIR */
  stateDir?: string;
  /** The last this many runs. @default all kept (up to 1000) */
  limit?: number;
}

/** The run history of a pipeline: its last runs' reports, oldest first (failed and interrupted runs included). */
export async function pipelineHistory(pipelineFile: string, options: HistoryOptions = {}): Promise<{ pipeline: string; location: string; runs: RunReport[] }> {
  const env = options.env ?? process.env;
  const { config, source } = await loadPipelineFileOrThrow(path.resolve(pipelineFile), { env });
  const store = openHistoryStore(config, { baseDir: source.dir, env, stateDir: options.stateDir ?? env.KLAVIYO_ETL_STATE_DIR });
  try {
    return { pipeline: config.name, location: store.location, runs: await store.list(options.limit) };
  } finally {
    await store.close();
  }
}
