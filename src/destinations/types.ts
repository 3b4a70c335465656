import type { Logger } from '../core/logger.js';
import type { LoadItem, Reject, SourcePosition } from '../core/record.js';
import type { RunStats } from '../core/stats.js';
import type { CloseOptions, LoadEvents } from '../load/types.js';

/** The Klaviyo API a destination writes to instead of its configured one (the embedded emulator). */
export interface KlaviyoTarget {
  baseUrl: string;
  apiKey: string;
  /** Multiplies the rate-limit allowances (an emulator running with `--limits <factor>`). */
  rateScale?: number;
}

/** The run a destination writes for. */
export interface RunInfo {
  /** The run id (stable across resumes): `{runId}` in export paths. */
  id: string;
  /** When the run started: `{date}` (UTC `yyyy-mm-dd`) in export paths. */
  startedAt: Date;
  /** Continuing an interrupted run (an export keeps its partial file up to `startAfter` and appends). */
  resumed: boolean;
  startAfter?: SourcePosition;
  /** The pipeline's state directory (staging files). */
  stateDir: string;
  /** Whether the run was interrupted (an export's partial file is then kept, not published). */
  interrupted(): boolean;
  /**
   * Set for `--emulator` runs: a destination that would write to real remote storage (an S3 bucket) writes under
   * this local directory instead, so a demo or dry rehearsal never touches the real destination.
   */
  emulatorOutputDir?: string;
}

/** Everything a destination gets from the runner. */
export interface DestinationContext extends LoadEvents {
  baseDir: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  stats: RunStats;
  dryRun: boolean;
  signal?: AbortSignal;
  /** Write here instead of the configured Klaviyo API (destinations declaring `writesKlaviyo`). */
  klaviyo?: KlaviyoTarget;
  /** Share rate limits across processes through Redis. */
  redisUrl?: string;
  /** Bulk jobs an interrupted earlier run left pending (from its checkpoint). */
  resumeJobs?: string[];
  run: RunInfo;
  /** What the pipeline's transform produces: its declared item kind, and its columns when it produces rows. */
  items: { kind: string; columns?: string[]; also?: string[] };
  /** Dry runs: each request a real run would send, as it would be sent (the API key redacted). */
  onPlanned?(request: RequestPreview): void;
}

/** A request as a real run would send it, for `--dry-run --show N` (the API key never appears). */
export interface RequestPreview {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body exactly as it would be sent. */
  body: string;
}

/** Where items go: a loader plus whatever connection it owns. */
export interface Destination {
  write(items: LoadItem[]): Promise<void>;
  /**
   * Flush, wait for everything in flight, release connections. Throws EtlError if the run must fail.
   * `stopWaitingForJobs` (the run's interrupt signal) leaves unfinished bulk jobs pending for the next run.
   */
  close(options?: CloseOptions): Promise<void>;
  /** Release connections without flushing (after a failure). */
  abort(): Promise<void>;
  /** Bulk jobs submitted and not finished (for the checkpoint). */
  pendingJobs(): string[];
  /**
   * Of the `resumeJobs`, those the service no longer knows; the runner sends their rows again. Called once, before
   * the first write (destinations with bulk jobs).
   */
  forgottenJobs?(): Promise<string[]>;
  /** Stop following these (resumed) jobs: the runner sends their rows again. */
  dropJobs?(ids: readonly string[]): void;
  /** Where an export went once it is published (a file path, `s3://bucket/key`): the report's `output`. */
  output?(): string | undefined;
}

