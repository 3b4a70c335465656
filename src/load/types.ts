import type { ItemSpan, LoadItem, Reject } from '../core/record.js';
import type { Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';

/** What a loader tells the runner as Klaviyo confirms or refuses items. */
export interface LoadEvents {
  /**
   * Klaviyo accepted these items (events: 202; profiles: the bulk job holding them was created). Their payloads may be
   * gone (a loader keeps only what it needs once an item is serialized): the span says which records are done.
   */
  onAck(items: ItemSpan[], info?: { jobId?: string }): void;
  /** Items Klaviyo refused (400 pointers, import-errors); already joined to their source positions. */
  onReject(rejects: Reject[]): void;
  /**
   * Items deliberately not sent (a subscription whose profile opted out after the row's consent: code
   * CONSENT_OPTED_OUT), with their source positions, code and reason: the runner writes them to the skipped file,
   * counts them in `rows.skipped` and settles them. Without it, they are rejected (never dropped silently).
   */
  onSkip?(skips: Reject[]): void;
  /** A bulk import job reached a final state (its import-errors, if any, were reported through onReject). */
  onJobDone?(jobId: string): void;
}

export interface LoadContext extends LoadEvents {
  logger: Logger;
  stats: RunStats;
  signal?: AbortSignal;
  /** Read, batch and count, but send nothing. */
  dryRun: boolean;
  /** Bulk-import jobs submitted by an interrupted earlier run, to poll instead of resubmitting. */
  resumeJobs?: string[];
  /** Dry runs: each request a real run would send (`endpoint`: `POST /api/…`; `body`: exactly as it would be sent). */
  onPlanned?(request: PlannedRequest): void;
}

/** A request a dry run would have sent. */
export interface PlannedRequest {
  endpoint: string;
  body: string;
}

export interface CloseOptions {
  /**
   * Stop waiting for submitted bulk jobs to finish when this signal aborts (at once if it already has): the
   * unfinished jobs stay in `pendingJobs()` for the checkpoint, and the next run polls them (and collects their
   * import errors). Without it, `close` waits for every job.
   */
  stopWaitingForJobs?: AbortSignal;
}

/**
 * A batch writer. `write` applies back-pressure: it resolves when the items are accepted into the bounded
 * in-flight window, not when Klaviyo confirmed them (that is `onAck`). `close` flushes, waits for everything in
 * flight (and for bulk jobs to finish) and throws an EtlError if the run must fail.
 */
export interface Loader {
  write(items: LoadItem[]): Promise<void>;
  close(options?: CloseOptions): Promise<void>;
  /** Bulk jobs submitted and not yet finished (for the checkpoint). */
  pendingJobs?(): string[];
  /**
   * Of the `resumeJobs`, those Klaviyo no longer knows (404); they are no longer followed, and the runner sends
   * their rows again. Called once, before the first write.
   */
  forgottenJobs?(): Promise<string[]>;
  /** Stop following these (resumed) jobs: the runner sends their rows again. */
  dropJobs?(ids: readonly string[]): void;
}
