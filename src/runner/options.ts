import type { Components } from '../components/types.js';
import type { Logger } from '../core/logger.js';
import type { Shard } from '../core/shard.js';
import type { RunStats } from '../core/stats.js';
import type { RequestPreview } from '../destinations/types.js';
import type { EmulatorOptions } from '../emulator/index.js';
import type { SourceProgress } from '../extract/types.js';

/** Options of one run (the `klaviyo-etl run` command is a thin wrapper around `run`). */
export interface RunOptions {
  /** Path of the pipeline file. */
  pipelineFile: string;
  /** Environment for `${VAR}` interpolation, the API key and KLAVIYO_BASE_URL. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Start an embedded Klaviyo emulator and run against it (`true`, or emulator options). */
  emulator?: boolean | EmulatorOptions;
  /** Read, transform, batch and validate everything; send nothing to Klaviyo and touch no checkpoint. */
  dryRun?: boolean;
  /**
   * Dry runs: the time (ms) the run must fit in. The report's `plan.window.fits` says whether the least wall time
   * the account's tiers allow fits (the CLI exits 1 when it does not).
   */
  window?: number;
  /** Ignore an unfinished run's checkpoint (even one whose pipeline changed) and start over. */
  restart?: boolean;
  /**
   * Read every source in full, ignoring the watermark (files already read are read again), as a new run (an
   * unfinished one is discarded, as with `restart`); the watermark this run leaves replaces the stored one once it
   * succeeds. A resume of such a run reads in full too.
   */
  fullRefresh?: boolean;
  /**
   * Send the rows of this rejects file (NDJSON or CSV, as written by a run or edited in a spreadsheet) through the
   * pipeline's mapping instead of reading its source. Holds the pipeline's lock; touches no checkpoint or watermark;
   * writes its own rejects file.
   */
  fromRejects?: string;
  /** Write the JSON run report here. */
  reportFile?: string;
  /**
   * Directory for the default checkpoint and rejects locations (`<stateDir>/<pipeline name>/`), instead of
   * `.klaviyo-etl/` beside the pipeline file. @default $KLAVIYO_ETL_STATE_DIR
   */
  stateDir?: string;
  /** Backfill bounds for one run (cursor sources), without moving the stored watermark. */
  since?: string;
  until?: string;
  /**
   * `--shard i/n`: read only this shard's part of the source (files/objects by name hash, PostgreSQL rows by key
   * hash), with a checkpoint, lock and rejects file of its own. Run the n shards with a shared `redisUrl`.
   */
  shard?: Shard;
  /** Read at most this many records (sample runs; the watermark is not moved). */
  limit?: number;
  /** Share rate limits with other processes through this Redis URL. @default $KLAVIYO_ETL_REDIS_URL */
  redisUrl?: string;
  /** After an interrupt, how long in-flight requests may take to finish before they are cut off. @default 30000 */
  drainTimeoutMs?: number;
  logger?: Logger;
  /** Abort to stop reading, drain in-flight requests, checkpoint and report `interrupted`. */
  signal?: AbortSignal;
  /**
   * Called about once a second with the live counters, and how far the source got through its input when it can
   * tell (local CSV files: bytes read / total bytes, for an ETA).
   */
  onProgress?: (stats: RunStats, source?: SourceProgress) => void;
  /**
   * Dry runs: called with each request a real run would send, exactly as it would be sent (the API key redacted), in
   * the order they would be sent (`klaviyo-etl run --dry-run --show N`).
   */
  onPlannedRequest?: (request: RequestPreview) => void;
  /** Log a `progress` line at info level this often (nightly job logs). 0 disables. @default 10000 */
  progressLogIntervalMs?: number;
  /**
   * Serve the run's Prometheus metrics at `http://<metricsHost>:<port>/metrics` while it runs (0: a free port).
   * @default not served
   */
  metricsPort?: number;
  /** Address the metrics are served on. @default 0.0.0.0 */
  metricsHost?: string;
  /** Called with the metrics URL once they are served (`metricsPort`). */
  onMetricsServed?: (url: string | undefined) => void;
  /** The components a pipeline may name (e.g. `withComponents({ destinations: [mine] })`). @default BUILTIN_COMPONENTS */
  components?: Components;
}
