/** Counters shared by every component of one run; the run report is made from them. */
export interface RunStats {
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  /**
   * Items produced. `duplicates`: events sent with the profile, metric and unique_id of an earlier event of this
   * run (seen within one request window), which Klaviyo ignores: loaded rows that added nothing. `exportRows`: rows
   * of an export file (exported profiles are rows here, not profiles loaded into Klaviyo).
   */
  items: { profiles: number; events: number; subscriptions: number; exportRows: number; duplicates: number };
  requests: { total: number; throttled: number; retried: number; failed: number; byEndpoint: Record<string, number> };
  /** Requests a real run would make (dry runs). */
  plannedRequests: number;
  /**
   * Bulk import jobs. `forgotten`: jobs of an interrupted run that Klaviyo no longer knew when the run resumed
   * (404: Klaviyo forgets jobs 7 days after they end); their rows were sent again.
   */
  jobs: { submitted: number; completed: number; importErrors: number; forgotten: number };
}

export function newStats(): RunStats {
  return {
    rows: { read: 0, loaded: 0, rejected: 0, skipped: 0 },
    items: { profiles: 0, events: 0, subscriptions: 0, exportRows: 0, duplicates: 0 },
    requests: { total: 0, throttled: 0, retried: 0, failed: 0, byEndpoint: {} },
    plannedRequests: 0,
    jobs: { submitted: 0, completed: 0, importErrors: 0, forgotten: 0 },
  };
}
