import { Agent, type Dispatcher } from 'undici';
import { DEFAULT_REVISION } from './endpoints.js';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { EtlError, redact } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { RunStats } from '../core/stats.js';
import type { RateLimiter } from './rate-limiter.js';
import { checkApiKey } from './api-key.js';
import { authCause, isAuthRefusal } from './auth.js';
import { DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter, retryDelay, type RetryPolicy } from './retry.js';

/** One JSON:API error object as Klaviyo returns it. */
export interface JsonApiError {
  id?: string;
  status?: number | string;
  code?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string };
  meta?: Record<string, unknown>;
}

/** A response the caller gets back: every 2xx, and every 4xx other than 401/403/429 and auth 400s (callers decide). */
export interface KlaviyoResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON body, undefined when empty. */
  body: unknown;
  /** `body.errors` of a non-2xx response. */
  errors: JsonApiError[];
  ok: boolean;
}

export interface KlaviyoRequest {
  /** Ignored when it disagrees with the endpoint key: the key's method is used. */
  method?: string;
  /** Concrete path (`/api/profile-bulk-import-jobs/abc`) or a full `links.next` URL. @default the key's path */
  path?: string;
  query?: Record<string, string | number | undefined>;
  /** JSON body; a string or bytes (UTF-8 JSON) are sent as they are. */
  body?: unknown;
  /**
   * Whether sending the request twice does no harm (a bulk event create whose events all carry `unique_id`, a profile
   * upsert). Only then are 500, 502 and the like retried; 429, 503, 504 and 524 are retried on any request.
   * @default true for GET and DELETE, false otherwise
   */
  idempotent?: boolean;
}

export interface KlaviyoClientOptions {
  /** API origin. @default https://a.klaviyo.com */
  baseUrl?: string;
  /** Private API key (`pk_…`). Never logged, never in errors. */
  apiKey: string;
  /** `revision` header. @default DEFAULT_REVISION */
  revision?: string;
  limiter: RateLimiter;
  stats: RunStats;
  logger?: Logger;
  /** Per-attempt timeout in ms. @default 60000 */
  timeoutMs?: number;
  /** Retries of 5xx / network failures before giving up. @default 8 */
  retries?: number;
  /**
   * How long one request may keep being retried, in ms from its first attempt: a 429 is retried (at the end of the
   * window that refused it) until the next attempt would start later than this; 5xx and network failures stop at
   * `retries` or this, whichever comes first. @default 300000 (5 minutes)
   */
  retryBudgetMs?: number;
  /** Aborts waits and requests; an abort surfaces as EtlError('INTERRUPTED'). */
  signal?: AbortSignal;
  /** Backoff parameters. @default DEFAULT_RETRY_POLICY */
  retryPolicy?: RetryPolicy;
  /** undici dispatcher (tests); by default a keep-alive Agent owned (and closed) by the client. */
  dispatcher?: Dispatcher;
  /** Time and timers of the retry waits (tests pass a fake one). @default systemClock */
  clock?: Clock;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** One request as every attempt sends it. */
interface Call {
  key: string;
  method: string;
  path: string;
  body: string | Uint8Array | undefined;
  idempotent: boolean;
  /** Method and URL for errors' `http` details. */
  info: { method: string; url: string };
  /** When the first attempt was made (clock ms): the retry budget counts from it. */
  firstAt: number;
  /** When the last attempt was sent (clock ms). */
  sentAt: number;
  /** When the last attempt was sent, if it was answered 429 (clock ms). */
  refusedAt: number | undefined;
  /** What the limiter said of the last attempt's 429: ms until the window that refused it ends. */
  untilWindowMs: number | undefined;
  /** 5xx answers and network failures so far (`retries` bounds them). */
  failures: number;
}

/** After an attempt: the response for the caller, or a retry after `delay` ms (`why` goes to the log). */
type Next = { response: KlaviyoResponse } | { delay: number; why: { status?: number; errorCode?: string } };

/** HTTP client for Klaviyo's JSON:API: auth, revision, pacing, retries, redaction. */
export class KlaviyoClient {
  readonly #baseUrl: URL;
  readonly #apiKey: string;
  readonly #revision: string;
  readonly #limiter: RateLimiter;
  readonly #stats: RunStats;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #retryBudgetMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #policy: RetryPolicy;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #clock: Clock;

  constructor(options: KlaviyoClientOptions) {
    checkApiKey(options.apiKey);
    this.#baseUrl = new URL(options.baseUrl ?? 'https://a.klaviyo.com');
    this.#apiKey = options.apiKey;
    this.#revision = options.revision ?? DEFAULT_REVISION;
    this.#limiter = options.limiter;
    this.#stats = options.stats;
    this.#logger = options.logger ?? silentLogger;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#retries = options.retries ?? 8;
    this.#retryBudgetMs = options.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
    this.#signal = options.signal;
    this.#policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: null });
    this.#clock = options.clock ?? systemClock;
  }

  /** Send one request through the limiter, retrying 429 / 5xx / network failures. */
  async request(endpointKey: string, request: KlaviyoRequest = {}): Promise<KlaviyoResponse> {
    const [method, template] = splitKey(endpointKey);
    const path = this.#resolvePath(request.path ?? template, request.query);
    const body =
      request.body === undefined
        ? undefined
        : typeof request.body === 'string' || request.body instanceof Uint8Array
          ? request.body
          : JSON.stringify(request.body);
    const now = this.#clock.now();
    const info = { method, url: new URL(path, this.#baseUrl).toString() };
    const idempotent = request.idempotent ?? (method === 'GET' || method === 'DELETE');
    const call: Call = { key: endpointKey, method, path, body, idempotent, info, firstAt: now, sentAt: now, refusedAt: undefined, untilWindowMs: undefined, failures: 0 };

    for (let attempt = 0; ; attempt++) {
      this.#throwIfAborted();
      const outcome = await this.#attempt(call);
      const next = outcome.raw ? this.#afterResponse(call, outcome.raw, attempt) : this.#afterFailure(call, outcome, attempt);
      if ('response' in next) return next.response;
      this.#stats.requests.retried++;
      this.#logger.warn('retrying Klaviyo request', { endpoint: endpointKey, ...next.why, attempt: attempt + 1, delayMs: next.delay });
      await this.#sleep(next.delay);
    }
  }

  /** One attempt through the limiter: the response, or the network failure (EtlErrors, aborts included, throw). */
  async #attempt(call: Call): Promise<{ raw?: RawResponse; errorCode?: string; errorMessage?: string }> {
    try {
      const raw = await this.#limiter.schedule(call.key, async () => {
        call.sentAt = this.#clock.now();
        this.#stats.requests.total++;
        this.#stats.requests.byEndpoint[call.key] = (this.#stats.requests.byEndpoint[call.key] ?? 0) + 1;
        const answer = await this.#send(call.method, call.path, call.body);
        // before the limiter sees the request end: what the answer tells decides when its tokens come back, and a
        // 429's pause holds back the requests waiting for this one's answer
        this.#observe(call.key, answer, call.sentAt);
        if (answer.status === 429) this.#throttled(call, answer);
        else this.#limiter.admitted(call.key, call.sentAt);
        return answer;
      });
      return { raw };
    } catch (error) {
      if (error instanceof EtlError) throw error;
      this.#throwIfAborted();
      return { errorCode: networkCode(error), errorMessage: this.#scrub(error instanceof Error ? error.message : String(error)) };
    }
  }

  /** What a response means: returned to the caller, retried after a delay, or thrown (auth, retries exhausted). */
  #afterResponse(call: Call, raw: RawResponse, attempt: number): Next {
    const status = raw.status;
    if (status >= 200 && status < 300) return { response: this.#response(raw) };
    if (status === 429) return this.#afterThrottled(call, raw, attempt);
    call.refusedAt = undefined;
    if (status >= 400 && status < 500 && isAuthRefusal(status, this.#response(raw).errors)) {
      this.#stats.requests.failed++;
      const response = this.#response(raw);
      throw new EtlError(
        'KLAVIYO_AUTH',
        `Klaviyo refused the API key (${status}) for ${call.key}: ${this.#describe(response.errors)}. ${authCause(status, response.errors, call.key)}`,
        { context: { component: 'klaviyo-client', endpoint: call.key, status } },
      ).withHttp({ ...call.info, status, body: response.body });
    }
    const delay = retryDelay({ attempt: call.failures, status, retryAfter: raw.headers['retry-after'], now: this.#clock.now(), idempotent: call.idempotent }, this.#policy);
    if (delay === undefined && !call.idempotent && isRetryableStatus(status, true)) {
      // a 500/502 to a write: Klaviyo may have applied it, and sending it again could apply it twice
      this.#stats.requests.failed++;
      const response = this.#response(raw);
      throw new EtlError(
        'KLAVIYO_UNAVAILABLE',
        `Klaviyo answered ${status} to ${call.key}: ${this.#describe(response.errors)}; not retried, as the request is a write Klaviyo may have applied and sending it again could apply it twice`,
        { context: { component: 'klaviyo-client', endpoint: call.key, status, attempts: attempt + 1 } },
      ).withHttp({ ...call.info, status, body: response.body });
    }
    if (delay === undefined) {
      this.#stats.requests.failed++;
      return { response: this.#response(raw) };
    }
    call.failures++;
    if (call.failures > this.#retries || this.#pastBudget(call, delay)) {
      this.#stats.requests.failed++;
      const response = this.#response(raw);
      throw new EtlError(
        'KLAVIYO_UNAVAILABLE',
        `Klaviyo answered ${status} to ${call.key} ${attempt + 1} times: ${this.#describe(response.errors)}`,
        { context: { component: 'klaviyo-client', endpoint: call.key, status, attempts: attempt + 1 } },
      ).withHttp({ ...call.info, status, body: response.body });
    }
    return { delay, why: { status } };
  }

  /** Tell the limiter of a 429 (it pauses the endpoint until the window that refused the request ends). */
  #throttled(call: Call, raw: RawResponse): void {
    call.untilWindowMs = this.#limiter.throttled(call.key, {
      sentAt: call.sentAt,
      retryAfterMs: parseRetryAfter(raw.headers['retry-after'], this.#clock.now()),
      hintMs: availableInMs(raw.text),
      refusedBeforeAt: call.refusedAt,
    });
    call.refusedAt = call.sentAt;
  }

  /**
   * A 429: wait for the end of the window that refused the request (`Retry-After`, else what the limiter knows of
   * the windows: see RateLimiter.throttled) and try again, for as long as the retry budget lasts.
   */
  #afterThrottled(call: Call, raw: RawResponse, attempt: number): Next {
    this.#stats.requests.throttled++;
    this.#stats.requests.throttledByEndpoint[call.key] = (this.#stats.requests.throttledByEndpoint[call.key] ?? 0) + 1;
    const now = this.#clock.now();
    const retryAfter = raw.headers['retry-after'];
    const delay = retryDelay({ attempt, status: 429, retryAfter, untilWindowMs: call.untilWindowMs, now }, this.#policy)!;
    if (this.#pastBudget(call, delay)) {
      this.#stats.requests.failed++;
      const response = this.#response(raw);
      const seconds = Math.round((now - call.firstAt) / 1000);
      throw new EtlError(
        'KLAVIYO_UNAVAILABLE',
        `Klaviyo kept answering 429 (throttled) to ${call.key} for ${seconds} s, ${attempt + 1} attempts; the retry budget (destination.retryBudgetMs: ${this.#retryBudgetMs} ms) is used up: ${this.#describe(response.errors)}`,
        { context: { component: 'klaviyo-client', endpoint: call.key, status: 429, attempts: attempt + 1 } },
      ).withHttp({ ...call.info, status: 429, body: response.body });
    }
    return { delay, why: { status: 429 } };
  }

  /** Whether an attempt `delay` ms from now would start past the request's retry budget. */
  #pastBudget(call: Call, delay: number): boolean {
    return this.#clock.now() + delay - call.firstAt > this.#retryBudgetMs;
  }

  /** A network failure is retried after a delay, or thrown when it is not retryable or the retries are used up. */
  #afterFailure(call: Call, failure: { errorCode?: string; errorMessage?: string }, attempt: number): Next {
    const { errorCode, errorMessage = '' } = failure;
    call.refusedAt = undefined;
    const delay = retryDelay({ attempt: call.failures, errorCode }, this.#policy);
    call.failures++;
    if (delay === undefined || call.failures > this.#retries || this.#pastBudget(call, delay)) {
      this.#stats.requests.failed++;
      throw new EtlError(
        'KLAVIYO_UNAVAILABLE',
        `Request ${call.key} failed after ${attempt + 1} attempt(s): ${errorCode ?? 'error'} ${errorMessage}`.trim(),
        { context: { component: 'klaviyo-client', endpoint: call.key, errorCode, attempts: attempt + 1 } },
      ).withHttp(call.info);
    }
    return { delay, why: { errorCode } };
  }

  /** Close the connection pool (when the client created it). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  async #send(method: string, path: string, body: string | Uint8Array | undefined): Promise<RawResponse> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = this.#signal ? AbortSignal.any([this.#signal, timeout]) : timeout;
    const url = new URL(path, this.#baseUrl);
    try {
      const response = await this.#dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: method as Dispatcher.HttpMethod,
        headers: {
          authorization: `Klaviyo-API-Key ${this.#apiKey}`,
          revision: this.#revision,
          accept: 'application/vnd.api+json',
          ...(body === undefined ? {} : { 'content-type': 'application/vnd.api+json' }),
        },
        body,
        signal,
      });
      // Scrubbed at once: a server echoing the key must not carry it into responses, errors or logs.
      const text = this.#scrub(await response.body.text());
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { status: response.statusCode, headers, text };
    } catch (error) {
      if (timeout.aborted && !this.#signal?.aborted) throw Object.assign(new Error(`timed out after ${this.#timeoutMs} ms`), { code: 'TimeoutError' });
      throw error;
    }
  }

  #response(raw: RawResponse): KlaviyoResponse {
    let body: unknown;
    if (raw.text.length > 0) {
      try {
        body = JSON.parse(raw.text);
      } catch {
        body = raw.text.slice(0, 2000);
      }
    }
    const ok = raw.status >= 200 && raw.status < 300;
    const errors = !ok && isRecord(body) && Array.isArray(body.errors) ? (body.errors as JsonApiError[]) : [];
    return { status: raw.status, headers: raw.headers, body, errors, ok };
  }

  #observe(key: string, raw: RawResponse, sentAt: number): void {
    const remaining = raw.headers['ratelimit-remaining'];
    if (remaining === undefined) return;
    const number = (name: string) => (raw.headers[name] === undefined ? undefined : Number(raw.headers[name]));
    void this.#limiter
      .observe(key, { limit: number('ratelimit-limit'), remaining: Number(remaining), resetSeconds: number('ratelimit-reset'), sentAt })
      .catch(() => undefined);
  }

  #resolvePath(path: string, query: KlaviyoRequest['query']): string {
    const url = new URL(path, this.#baseUrl);
    if (url.origin !== this.#baseUrl.origin) {
      throw new EtlError('INTERNAL', `refusing to send the API key to another origin: ${redact(url.origin)}`);
    }
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const base = this.#baseUrl.pathname.replace(/\/$/, '');
    const rel = url.pathname.startsWith(base + '/') || base === '' ? url.pathname : base + url.pathname;
    return rel + url.search;
  }

  #describe(errors: JsonApiError[]): string {
    if (errors.length === 0) return 'no error details';
    return this.#scrub(errors.map((e) => [e.code, e.detail ?? e.title].filter(Boolean).join(': ')).join('; '));
  }

  #scrub(text: string): string {
    return redact(text.split(this.#apiKey).join('***'));
  }

  #throwIfAborted(): void {
    if (this.#signal?.aborted) throw new EtlError('INTERRUPTED', 'Klaviyo request interrupted');
  }

  #sleep(ms: number): Promise<void> {
    return sleep(this.#clock, ms, this.#signal, () => new EtlError('INTERRUPTED', 'Klaviyo request interrupted'));
  }
}

/** Default of {@link KlaviyoClientOptions.retryBudgetMs}: 5 minutes. */
export const DEFAULT_RETRY_BUDGET_MS = 300_000;

/** "Expected available in N seconds" of a 429's body (Klaviyo's throttled detail), in ms; undefined when absent. */
export function availableInMs(text: string): number | undefined {
  const m = /available in (\d+(?:\.\d+)?) seconds?/i.exec(text);
  return m ? Number(m[1]) * 1000 : undefined;
}

function splitKey(key: string): [string, string] {
  const space = key.indexOf(' ');
  if (space <= 0) throw new EtlError('INTERNAL', `Expected an endpoint key like 'POST /api/x', got \`${key}\``);
  return [key.slice(0, space).toUpperCase(), key.slice(space + 1)];
}

function networkCode(error: unknown): string {
  if (isRecord(error)) {
    if (typeof error.code === 'string') return error.code;
    if (isRecord(error.cause) && typeof error.cause.code === 'string') return error.cause.code;
    if (typeof error.name === 'string' && error.name !== 'Error') return error.name;
  }
  return 'UNKNOWN';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
