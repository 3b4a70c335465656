/**
 * The retry policy of the Klaviyo client as one pure function: given what went wrong on an attempt, how long to
 * wait before the next one, or `undefined` when the failure must not be retried.
 */

/** What happened on one attempt. */
export interface RetryInput {
  /** 0-based number of the attempt that just failed (0 = the first request). */
  attempt: number;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Error code of a network failure (`ECONNRESET`, `UND_ERR_SOCKET`, `TimeoutError`…), when no response arrived. */
  errorCode?: string;
  /** `Retry-After` header of the response, in seconds (number or the raw header string). */
  retryAfter?: number | string;
  /** Epoch ms an HTTP-date `Retry-After` is counted from. @default Date.now() */
  now?: number;
  /**
   * 429 without a usable `Retry-After` (absent or 0, as Klaviyo sometimes answers): ms until the window that refused
   * the request ends, as the rate limiter knows it ({@link RateLimiter.throttled}). @default 1000
   */
  untilWindowMs?: number;
  /**
   * Whether sending the request twice does no harm (reads; writes that Klaviyo dedups or upserts). A write that is
   * not is retried only on the statuses Klaviyo's own SDKs treat as transient ({@link TRANSIENT_STATUSES}).
   * @default false
   */
  idempotent?: boolean;
}

export interface RetryPolicy {
  /** First backoff step in milliseconds. @default 500 */
  baseMs: number;
  /** Upper bound of one backoff in milliseconds. @default 30000 */
  capMs: number;
  /** Random source in [0, 1): injected so tests are deterministic. @default Math.random */
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 500, capMs: 30_000, random: Math.random };

/**
 * The statuses Klaviyo's own SDKs retry on every request (`RetryWithExponentialBackoff.retryCodes` of klaviyo-api-node
 * and klaviyo-api-python: 429, 503, 504, 524): the request was not processed, so sending it again is safe.
 */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 503, 504, 524]);

/**
 * 5xx statuses that are NOT retried even on an idempotent request (the request can never succeed); every other 5xx
 * (500, 502, the CDN's 520-523 and 529…) is retried on an idempotent request only: Klaviyo may have applied a write
 * it answered 500 or 502 to.
 */
export const NON_RETRYABLE_5XX: ReadonlySet<number> = new Set([501, 505]);

/**
 * Whether a status is retried with backoff: 429, 503, 504 and 524 always; any other 5xx but 501 and 505 only when the
 * request is idempotent.
 */
export function isRetryableStatus(status: number, idempotent = false): boolean {
  if (TRANSIENT_STATUSES.has(status)) return true;
  return idempotent && status >= 500 && status <= 599 && !NON_RETRYABLE_5XX.has(status);
}

/** Network failures (no response) that are retried. */
export const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'TimeoutError',
  'REQUEST_TIMEOUT',
]);

/** Most jitter added on top of a 429's Retry-After, in milliseconds. */
const RETRY_AFTER_JITTER_MS = 250;

/** Parse a Retry-After value (delta seconds or an HTTP date) into milliseconds; undefined when absent/garbage. */
export function parseRetryAfter(value: number | string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Delay in milliseconds before retrying, or `undefined` if the failure is not retryable.
 * - 429: `Retry-After` seconds when it is > 0, else `untilWindowMs` (the end of the window, 1 s when unknown), plus up
 *   to 250 ms of jitter.
 * - 503, 504, 524 (any request), any other 5xx but 501/505 (idempotent requests only), and network errors: capped
 *   exponential backoff with full jitter,
 *   `random() * min(capMs, baseMs * 2^attempt)`; a 5xx that sends `Retry-After` waits at least that long (plus
 *   up to 250 ms of jitter).
 * - any other status (every other 4xx, and 2xx/3xx): undefined.
 * The caller decides how many attempts it allows.
 */
export function retryDelay(input: RetryInput, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number | undefined {
  const { attempt } = input;
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt));
  if (input.status === 429) {
    const after = parseRetryAfter(input.retryAfter, input.now);
    const wait = after !== undefined && after > 0 ? after : (input.untilWindowMs ?? 1000);
    return Math.ceil(wait + policy.random() * RETRY_AFTER_JITTER_MS);
  }
  if (input.status !== undefined) {
    if (!isRetryableStatus(input.status, input.idempotent ?? false)) return undefined;
    const backoff = Math.floor(policy.random() * ceiling);
    const after = parseRetryAfter(input.retryAfter, input.now);
    return after === undefined || after <= backoff ? backoff : Math.ceil(after + policy.random() * RETRY_AFTER_JITTER_MS);
  }
  if (input.errorCode !== undefined && RETRYABLE_ERROR_CODES.has(input.errorCode)) {
    return Math.floor(policy.random() * ceiling);
  }
  return undefined;
}
