import type { SourcePosition, SourceRecord } from '../core/record.js';
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';

export interface ExtractContext {
  /** Directory relative paths in the pipeline file resolve against (the pipeline file's directory). */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  signal?: AbortSignal;
  /** The run's counters, for sources that make API requests (the Klaviyo export counts them in `requests`). */
  stats?: RunStats;
  /**
   * Resume point: the position of the last record whose effect is acknowledged. The reader must yield only
   * records after it, with the same `seq` numbering as a fresh run would give.
   */
  startAfter?: SourcePosition;
  /** Source-specific incremental state from the previous successful run (watermarks, files done). */
  watermark?: unknown;
  /**
   * Resume: the state this source saved with `savePlan` during the interrupted attempt of this run (the file sources:
   * the files the run covers, fixed at its start, which were read completely, what the parser learned from the start
   * of the file being read).
   */
  plan?: unknown;
  /**
   * Save the source's run state into the checkpoint (JSON). It is merged into the checkpoint state at once, so every
   * position of a record yielded after the call is written with it.
   */
  savePlan?: (plan: unknown) => void;
  /** Bounds for one run (backfills), from the command line. */
  since?: string;
  until?: string;
  limit?: number;
}

/** A running source. */
export interface SourceReader {
  records(): AsyncIterable<SourceRecord>;
  /**
   * The same records as `records()`, in the arrays the source produces them in (a parsed chunk of a file). Optional: the
   * runner uses it when present, which saves a promise and an iterator result per record.
   */
  batches?(): AsyncIterable<SourceRecord[]>;
  /** Incremental state to store after a successful run (e.g. files done, high-water cursor). */
  watermark?(): unknown;
  close?(): Promise<void>;
  /**
   * This run reads a bounded part of the input (`--since/--until`): its watermark must not be stored, or the next
   * incremental run would skip what lies outside the bounds.
   */
  readonly boundedRun?: boolean;
  /** How far the reader got through its input, for progress and ETAs (sources that can tell). */
  progress?(): SourceProgress;
}

/** Input consumed so far, and the total when it is known up front (e.g. the sizes of local uncompressed files). */
export interface SourceProgress {
  bytes: number;
  totalBytes?: number;
}
