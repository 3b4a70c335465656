import type { ItemKind } from './record.js';

/** Counters shared by every component of one run; the run report is made from them. */
export interface RunStats {
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  /** Skipped rows by reason (`where[0]: …`, `when: not true`): they add up to `rows.skipped`. */
  skippedBy: Record<string, number>;
  /**
   * Items produced. `duplicates`: events sent with the profile, metric and unique_id of an earlier event of this
   * run (seen within one request window), which Klaviyo ignores: loaded rows that added nothing. `exportRows`: rows
   * of an export file (exported profiles are rows here, not profiles loaded into Klaviyo).
   */
  items: ItemCounts;
  /** `byEndpoint`: requests sent, `throttledByEndpoint`: 429s, per endpoint (`METHOD /api/path`). */
  requests: {
    total: number;
    throttled: number;
    retried: number;
    failed: number;
    byEndpoint: Record<string, number>;
    throttledByEndpoint: Record<string, number>;
  };
  /**
   * Fields cleared (`clear: true`): `profiles` patched, `fields` cleared in them, `unchanged` rows with a field to clear
   * whose profile held no value there (or was not in Klaviyo yet).
   */
  clears: { profiles: number; fields: number; unchanged: number };
  /** Requests a real run would make (dry runs). */
  plannedRequests: number;
  /** The same, by endpoint key (dry runs; src/runner/plan.ts turns them into the least wall time). */
  plannedByEndpoint: Record<string, number>;
  /**
   * Bulk import jobs. `forgotten`: jobs of an interrupted run that Klaviyo no longer knew when the run resumed
   * (404: Klaviyo forgets jobs 7 days after they end); their rows were sent again.
   */
  jobs: { submitted: number; completed: number; importErrors: number; forgotten: number };
  /** The read-back of a subscription load (`destination.verify`), when one ran. */
  verify?: VerifyResult;
  /**
   * Rows skipped by a loader (not by the transform), by code: e.g. CONSENT_OPTED_OUT. Over the whole run, like
   * `skippedBy`: a checkpoint stores the ones up to its position, a resume skips the rows past it again.
   */
  skippedByCode?: Record<string, number>;
}

/** Items produced, per kind (see RunStats.items). */
export interface ItemCounts {
  profiles: number;
  events: number;
  subscriptions: number;
  unsubscribes: number;
  suppressions: number;
  listRemovals: number;
  exportRows: number;
  duplicates: number;
}

/** The counter of each kind of item. */
export const ITEM_COUNTERS = {
  profile: 'profiles',
  event: 'events',
  subscription: 'subscriptions',
  unsubscribe: 'unsubscribes',
  suppress: 'suppressions',
  'remove-from-list': 'listRemovals',
  'export-row': 'exportRows',
} as const satisfies Record<ItemKind, keyof ItemCounts>;

export function newStats(): RunStats {
  return {
    rows: { read: 0, loaded: 0, rejected: 0, skipped: 0 },
    skippedBy: {},
    items: { profiles: 0, events: 0, subscriptions: 0, unsubscribes: 0, suppressions: 0, listRemovals: 0, exportRows: 0, duplicates: 0 },
    requests: { total: 0, throttled: 0, retried: 0, failed: 0, byEndpoint: {}, throttledByEndpoint: {} },
    clears: { profiles: 0, fields: 0, unchanged: 0 },
    plannedRequests: 0,
    plannedByEndpoint: {},
    jobs: { submitted: 0, completed: 0, importErrors: 0, forgotten: 0 },
  };
}

/**
 * Carry the counters of the earlier attempts of a resumed run (as of the interrupted attempt's last checkpoint) into
 * this attempt's, so that its report and checkpoint describe the whole run. Requests, throttles, retries, jobs and
 * items add up: work done in every attempt (items a resume sends again are counted again, as are their requests).
 * `rows.skipped` (with `skippedBy` and `skippedByCode`) is taken as stored: the checkpoint stores the rows skipped up to its position (see
 * {@link CountUpTo}), and the resume reads on from there. The other row counters are the runner's to set: it counts
 * them from the checkpoint position and the rejects file.
 */
export function carryOver(stats: RunStats, previous: RunStats): void {
  stats.rows.skipped = previous.rows.skipped;
  stats.skippedBy = { ...(previous.skippedBy ?? {}) };
  // checkpoints written before loader skips were carried over have none
  if (previous.skippedByCode && Object.keys(previous.skippedByCode).length > 0) stats.skippedByCode = { ...previous.skippedByCode };
  for (const k of ['profiles', 'events', 'subscriptions', 'unsubscribes', 'suppressions', 'listRemovals', 'duplicates'] as const) {
    stats.items[k] += previous.items[k] ?? 0;
  }
  const requests = stats.requests;
  for (const k of ['total', 'throttled', 'retried', 'failed'] as const) requests[k] += previous.requests[k];
  for (const [k, v] of Object.entries(previous.requests.byEndpoint)) requests.byEndpoint[k] = (requests.byEndpoint[k] ?? 0) + v;
  // checkpoints written before 429s were counted per endpoint have none
  for (const [k, v] of Object.entries(previous.requests.throttledByEndpoint ?? {})) requests.throttledByEndpoint[k] = (requests.throttledByEndpoint[k] ?? 0) + v;
  for (const k of ['profiles', 'fields', 'unchanged'] as const) stats.clears[k] += previous.clears?.[k] ?? 0;
  stats.plannedRequests += previous.plannedRequests;
  for (const k of ['submitted', 'completed', 'importErrors', 'forgotten'] as const) stats.jobs[k] += previous.jobs[k] ?? 0;
}

/**
 * A count of events tied to records (skipped rows), which can tell how many fall at or before a position: what a
 * checkpoint at that position may claim. Seqs behind the position are folded into the count, so only the records
 * past it are held.
 */
export class CountUpTo {
  #settled: number;
  readonly #settledBy: Record<string, number>;
  readonly #ahead: number[] = [];
  readonly #aheadReasons: string[] = [];
  #from = 0;

  /** `settled`: the count at or before the position this run starts after (`by`: the same by reason). */
  constructor(settled = 0, by: Record<string, number> = {}) {
    this.#settled = settled;
    this.#settledBy = { ...by };
  }

  /** Seqs may come out of order (a loader skips items of batches that finish in any order): kept sorted. */
  add(seq: number, count = 1, reason = 'skipped'): void {
    let at = this.#ahead.length;
    while (at > this.#from && this.#ahead[at - 1]! > seq) at--;
    for (let i = 0; i < count; i++) {
      if (at === this.#ahead.length) {
        this.#ahead.push(seq);
        this.#aheadReasons.push(reason);
      } else {
        this.#ahead.splice(at, 0, seq);
        this.#aheadReasons.splice(at, 0, reason);
      }
    }
  }

  /** The count of events at or before record `seq`. */
  upTo(seq: number): number {
    while (this.#from < this.#ahead.length && this.#ahead[this.#from]! <= seq) {
      const reason = this.#aheadReasons[this.#from]!;
      this.#settledBy[reason] = (this.#settledBy[reason] ?? 0) + 1;
      this.#from++;
      this.#settled++;
    }
    if (this.#from >= 1024 && this.#from * 2 >= this.#ahead.length) {
      this.#ahead.splice(0, this.#from);
      this.#aheadReasons.splice(0, this.#from);
      this.#from = 0;
    }
    return this.#settled;
  }

  /** The count by reason of events at or before record `seq`. */
  byUpTo(seq: number): Record<string, number> {
    this.upTo(seq);
    return { ...this.#settledBy };
  }
}

/** What the read-back of a subscription load found (`destination.verify`; the report's `verify`). */
export interface VerifyResult {
  /** Accepted profiles sampled. */
  sampled: number;
  /** Of those, how many hold every consent they were sent when the read-back ended. */
  holding: number;
  /** Sampled profiles not (yet) holding it: not found, or another consent. */
  notHolding: number;
  /** Read-back requests made (GET /api/profiles). */
  requests: number;
  /** How long the read-back waited and polled, ms. */
  waitedMs: number;
  /** False when it stopped at `timeoutMs` (or an interrupt) with profiles not holding the consent. */
  complete: boolean;
}

