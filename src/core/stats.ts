/** Counters shared by every component of one run; the run report is made from them. */
export interface RunStats {
  rows: { read: number; loaded: number; rejected: number; skipped: number };
  items: { profiles: number; events: number; subscriptions: number };
  requests: { total: number; throttled: number; retried: number; failed: number; byEndpoint: Record<string, number> };
  /** Requests a real run would make (dry runs). */
  plannedRequests: number;
  jobs: { submitted: number; completed: number; importErrors: number };
}

export function newStats(): RunStats {
  return {
    rows: { read: 0, loaded: 0, rejected: 0, skipped: 0 },
    items: { profiles: 0, events: 0, subscriptions: 0 },
    requests: { total: 0, throttled: 0, retried: 0, failed: 0, byEndpoint: {} },
    plannedRequests: 0,
    jobs: { submitted: 0, completed: 0, importErrors: 0 },
  };
}
