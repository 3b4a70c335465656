import type { ErrorCode, RunWarning } from '../core/errors.js';
import type { SourcePosition, SourceRecord } from '../core/record.js';
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';
import type { Shard } from '../core/shard.js';

export interface ExtractContext {
  /** Directory relative paths in the pipeline file resolve against (the pipeline file's directory). */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  signal?: AbortSignal;
  /** Redis URL the run shares Klaviyo rate limits through (`--redis-url`), for sources reading Klaviyo. */
  redisUrl?: string;
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
  /**
   * Tell the run something it reports in `warnings` without failing (e.g. a source file that is empty or holds no
   * row: {@link warnEmpty}). Absent outside a run.
   */
  warn?(warning: RunWarning): void;
  /** `--shard i/n`: read only this shard's part (sources declaring `shards`). */
  shard?: Shard;
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

/** What a source's `inspect` gets: where relative paths resolve, and the environment. */
export interface InspectContext {
  baseDir: string;
  env: NodeJS.ProcessEnv;
  /** The watermark the run reads with (inputs it lists as loaded are not read, so not checked); absent for `validate`. */
  watermark?: unknown;
}

/** An input the pre-flight check reads the start of: its name, size and (decompressed) bytes. */
export interface InspectInput {
  /** The input as records name it (`pos.source`). */
  source: string;
  bytes: number;
  /** Its bytes from the start, decompressed; the check stops pulling once it has what it needs. */
  chunks: AsyncIterable<Buffer>;
}

/**
 * The start of one input of a source (a file), as the pre-flight check sees it (src/runner/preflight.ts): its
 * columns and what is wrong with it, read without reading the whole input.
 */
export interface SourceSample {
  /** The input as records name it (`pos.source`). */
  source: string;
  /** Its size in bytes (0: an empty file); absent for an input that is not a file (a query). */
  bytes?: number;
  /** The source setting that names the input, where a problem with the input as a whole is shown. @default path */
  setting?: string;
  /** Rows hold typed values: a dotted column (`data.tier`) may be a path into a json column (its first name counts). */
  paths?: boolean;
  /**
   * Its columns: a CSV header (or the configured `header` list), or the keys of the first rows. Absent when the
   * input has none (an empty file) or could not be read (`error`).
   */
  columns?: string[];
  /** `header`: every row has exactly these columns; `sampled`: keys seen in the first rows (others may come later). */
  certainty: 'header' | 'sampled';
  /** Whether at least one row follows the header (false: a header-only file). */
  rows: boolean;
  /** CSV: the header's text, when it parsed as one column (to tell which delimiter the file uses). */
  headerText?: string;
  /** The first line of the first rows that holds bytes that are not UTF-8 (a file read as UTF-8 that is not). */
  notUtf8Line?: number;
  /** The delimiter the file was parsed with (CSV). */
  delimiter?: string;
  /** Why the start of the input cannot be read (a header that cannot be parsed, bytes that are not UTF-8). */
  error?: { code: ErrorCode; message: string; key?: string };
}

/**
 * Warn that a file (or object) read from its start gave no record: SOURCE_FILE_EMPTY when it has no byte,
 * SOURCE_FILE_NO_ROWS otherwise (a CSV header alone, blank lines).
 */
export function warnEmpty(ctx: Pick<ExtractContext, 'warn'>, file: string, bytes: number): void {
  if (bytes === 0) {
    ctx.warn?.({ code: 'SOURCE_FILE_EMPTY', file, message: `${file} is empty (0 bytes): no rows were read from it` });
  } else {
    ctx.warn?.({ code: 'SOURCE_FILE_NO_ROWS', file, message: `${file} holds no rows (a header alone, or blank lines): nothing was read from it` });
  }
}

/** Input consumed so far, and the total when it is known up front (e.g. the sizes of local uncompressed files). */
export interface SourceProgress {
  bytes: number;
  totalBytes?: number;
}
