/**
 * The emulator's HTTP core: node:http server, request pipeline for `/api` routes (auth → revision → faults →
 * rate limit → content type / size → JSON body → handler), accounts, bulk-job processing and persistence.
 */
import { createHash } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { ENDPOINTS, type EndpointKey } from '../klaviyo/endpoints.js';
import { KLAVIYO_SMS_REGIONS } from '../klaviyo/sms-regions.js';
import { applyDueConsent } from './subscriptions.js';
import { scopesOf } from '../klaviyo/scopes.js';
import { FaultInjector, type FaultOptions } from './faults.js';
import { checkGenerate, generateData, type GenerateOptions } from './generate.js';
import { Latency, type LatencyOption } from './latency.js';
import { resolveRealism, type RealismOptions } from './realism.js';
import { ApiError, errorObject, invalid, type Reply } from './http.js';
import { IdGenerator } from './ids.js';
import { MAX_BODY_DEPTH, parseJson, pointerAt, tooDeepAt } from './json-body.js';
import { checkQuery, limitKeys, QUERY_RULES } from './params.js';
import { processJobs } from './jobs.js';
import { RateLimiter } from './rate-limit.js';
import { Router, type EmulatorContext, type HttpMethod, type RequestContext, type RouteMatch, type RouteModule } from './router.js';
import { ROUTE_MODULES } from './routes/index.js';
import { applySeed, loadSeedFile, type SeedFile } from './seed.js';
import { checkWritable, fileProblem, parseOptionFile, readOptionFile } from './option-files.js';
import { EtlError } from '../core/errors.js';
import { Catalog } from './catalog.js';
import { Account, type AccountSummary, type ImportJobRecord, type RequestCounters, type SavedAccount } from './state.js';

/** Options of `startEmulator`. */
export interface EmulatorOptions {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /**
   * Rate limits: `'klaviyo'` (Klaviyo's tiers), `'off'`, or a number that multiplies every allowance (burst,
   * steady and daily; window lengths stay 1 s / 60 s / 1 day). @default 'klaviyo'
   */
  limits?: 'klaviyo' | 'off' | number;
  /** When set, only these private keys are accepted (others → 401). Every distinct key is its own account. */
  apiKeys?: string[];
  /**
   * Scopes of some private keys (`{ pk_abc: ['profiles:read', 'lists:read'] }`): such a key gets Klaviyo's 403
   * `permission_denied` on an endpoint needing a scope it lacks (the spec's `x-klaviyo-scopes`), checked right after
   * authentication, before the body is read. Keys not named here have every scope. @default every key, every scope
   */
  keyScopes?: Record<string, readonly string[]>;
  /** Bulk-import profiles processed per second (all jobs, FIFO). @default 20000 */
  processingRate?: number;
  /**
   * How long (ms, on the emulator's clock) a bulk import job stays `queued` before it is processed: Klaviyo's job
   * queue can hold a job for minutes. Jobs are processed in order, so later jobs wait behind it. @default 0
   */
  jobDelayMs?: number;
  /**
   * A bulk event whose profile already holds an event of the same metric and `unique_id` (sent by an earlier
   * request): `'ignore'` (Klaviyo's documented answer: 202, the event is dropped) or `'reject'` (the stricter
   * answer: 400 naming the event's `unique_id`, nothing of the request stored, as for a repeat inside one request).
   * @default 'ignore'
   */
  duplicateEvents?: 'ignore' | 'reject';
  /**
   * How long (ms, on the emulator's clock) after its 202 a subscribe job is applied: Klaviyo processes subscriptions
   * asynchronously and has no status endpoint, so a client reading the profiles right after sees the old consent.
   * Klaviyo documents no processing time; the default is a few seconds. 0 applies a job before its 202. @default 3000
   */
  subscriptionDelayMs?: number;
  /**
   * The regions (ISO 3166 codes) the account has SMS sending numbers for. SMS consent for a phone number of another
   * region is answered 400 (revision 2024-05-15 and later) or dropped (earlier revisions).
   * @default every region Klaviyo SMS is available in (KLAVIYO_SMS_REGIONS)
   */
  smsRegions?: string[];
  /**
   * Delay every `/api` answer: milliseconds, or `{min, max}` drawn uniformly per request (seeded by
   * `latencySeed`), to measure clients under real-world latency. @default 0
   */
  latency?: LatencyOption;
  /** Seed of the `latency` draws. @default 1 */
  latencySeed?: number;
  /**
   * Generate data at volume in every new account (src/emulator/generate.ts); replaces the seed file's `generate`.
   * @default none
   */
  generate?: GenerateOptions;
  /** Seeded fault injection on `/api/*`. @default none */
  faults?: FaultOptions;
  /** Answers Klaviyo gives besides its spec's (src/emulator/realism.ts). @default DEFAULT_REALISM */
  realism?: RealismOptions;
  /** Load state from this JSON file on start (if it exists) and save it there on close. */
  stateFile?: string;
  /** JSON seed (lists, segments with member emails, profiles) applied to every new account. */
  seedFile?: string;
  /** Clock (epoch ms). @default Date.now */
  now?: () => number;
  /** Extra route modules (after the built-in ones). */
  routes?: RouteModule[];
}

/** The JSON of `GET /_emulator/state`. */
export interface EmulatorStateSummary extends AccountSummary {
  accounts: number;
  limits: 'klaviyo' | 'off' | number;
  requests: RequestCounters;
  faults: Record<string, number>;
}

export interface EmulatorHandle {
  /** Base URL, e.g. `http://127.0.0.1:4010`. */
  url: string;
  port: number;
  /** Stop listening, drop held connections, save `stateFile`. */
  close(): Promise<void>;
  /** Same JSON as `GET /_emulator/state` (all accounts). */
  snapshot(): EmulatorStateSummary;
}

const MAX_BODY = 5 * 1024 * 1024;
/** Default of {@link EmulatorOptions.subscriptionDelayMs}. */
const DEFAULT_SUBSCRIPTION_DELAY_MS = 3000;
const REVISION_RE = /^(\d{4})-(\d{2})-(\d{2})(?:\.[A-Za-z0-9]+)?$/;
const PRIVATE_KEY_RE = /^pk_[A-Za-z0-9_-]{4,}$/;
const PUBLIC_KEY_RE = /^[A-Za-z0-9]{6}$/;
const JSON_TYPES = new Set(['application/vnd.api+json', 'application/json']);

interface SavedState {
  version: 1;
  accounts: SavedAccount[];
}

export class EmulatorServer implements EmulatorContext {
  baseUrl = '';
  readonly accounts = new Map<string, Account>();
  readonly processingRate: number;
  readonly jobDelayMs: number;
  readonly duplicateEvents: 'ignore' | 'reject';
  readonly realism: Required<RealismOptions>;
  readonly subscriptionDelayMs: number;
  readonly smsRegions: ReadonlySet<string>;
  readonly #options: EmulatorOptions;
  readonly #router = new Router();
  readonly #ids = new IdGenerator();
  readonly #limiter: RateLimiter | null;
  readonly #faults: FaultInjector | null;
  readonly #latency: Latency | null;
  readonly #seed: SeedFile | null;
  readonly #apiKeys: Set<string> | null;
  readonly #requests: RequestCounters = { total: 0, throttled: 0, byEndpoint: {}, admitted: {} };
  readonly #keyScopes: Map<string, ReadonlySet<string>>;
  readonly #held = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();
  readonly #jobQueue: { account: Account; job: ImportJobRecord }[] = [];
  /** Reused buffer that request bodies arriving in several chunks are gathered in (no allocation per request). */
  #scratch = Buffer.alloc(0);
  #server: Server | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastTick = 0;
  #budget = 0;

  /** Throws a `USAGE` `EtlError` for a bad option, a seed file that is not one, or a state file it cannot use. */
  constructor(options: EmulatorOptions) {
    this.#options = options;
    checkListenOptions(options);
    const limits = options.limits ?? 'klaviyo';
    if (limits !== 'klaviyo' && limits !== 'off' && !(typeof limits === 'number' && limits > 0 && Number.isFinite(limits))) {
      throw usage(`Expected \`limits\` to be 'klaviyo', 'off' or a positive number, got \`${String(limits)}\``);
    }
    this.#limiter = limits === 'off' ? null : new RateLimiter(limits === 'klaviyo' ? 1 : limits);
    this.processingRate = options.processingRate ?? 20_000;
    if (!(this.processingRate > 0 && Number.isFinite(this.processingRate))) {
      throw usage(`Expected \`processingRate\` to be a positive number, got \`${String(options.processingRate)}\``);
    }
    this.jobDelayMs = options.jobDelayMs ?? 0;
    if (!(this.jobDelayMs >= 0)) throw usage(`Expected \`jobDelayMs\` to be a number ≥ 0, got \`${String(options.jobDelayMs)}\``);
    this.subscriptionDelayMs = options.subscriptionDelayMs ?? DEFAULT_SUBSCRIPTION_DELAY_MS;
    if (!(this.subscriptionDelayMs >= 0 && Number.isFinite(this.subscriptionDelayMs))) {
      throw usage(`Expected \`subscriptionDelayMs\` to be a number ≥ 0, got \`${String(options.subscriptionDelayMs)}\``);
    }
    const regions = options.smsRegions ?? KLAVIYO_SMS_REGIONS;
    const badRegion = regions.find((r) => !/^[A-Z]{2}$/.test(r));
    if (badRegion !== undefined) throw usage(`Expected \`smsRegions\` to hold upper-case ISO 3166 region codes (US, GB…), got \`${badRegion}\``);
    this.smsRegions = new Set(regions);
    this.duplicateEvents = options.duplicateEvents ?? 'ignore';
    if (this.duplicateEvents !== 'ignore' && this.duplicateEvents !== 'reject') {
      throw usage(`Expected \`duplicateEvents\` to be 'ignore' or 'reject', got \`${String(options.duplicateEvents)}\``);
    }
    try {
      this.#faults = options.faults ? new FaultInjector(options.faults) : null;
    } catch (e) {
      throw usage((e as Error).message);
    }
    try {
      this.realism = resolveRealism(options.realism);
    } catch (e) {
      throw usage((e as Error).message);
    }
    this.#apiKeys = options.apiKeys && options.apiKeys.length > 0 ? new Set(options.apiKeys) : null;
    this.#keyScopes = new Map(Object.entries(options.keyScopes ?? {}).map(([key, scopes]) => [key, new Set(scopes)]));
    try {
      this.#latency = options.latency === undefined || options.latency === 0 ? null : new Latency(options.latency, options.latencySeed);
      if (options.generate) checkGenerate(options.generate);
    } catch (e) {
      throw usage((e as Error).message);
    }
    const seed = options.seedFile ? loadSeedFile(options.seedFile) : null;
    this.#seed = options.generate ? { ...seed, generate: options.generate } : seed;
    // generated events are shared by the accounts: made now, so an account's first request only adds its profiles
    if (this.#seed?.generate) generateData(this.#seed.generate, this.now());
    for (const m of ROUTE_MODULES) this.#router.addModule(m);
    for (const m of options.routes ?? []) this.#router.addModule(m);
    if (options.stateFile) this.#load(options.stateFile);
  }

  now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }

  /** Internal account key of an API key (the key itself is never stored). */
  static accountKey(apiKey: string): string {
    return createHash('sha256').update(apiKey).digest('hex').slice(0, 24);
  }

  accountFor(apiKey: string): Account {
    const key = EmulatorServer.accountKey(apiKey);
    let a = this.accounts.get(key);
    if (!a) {
      a = new Account(key, this.#ids);
      this.accounts.set(key, a);
      if (this.#seed) applySeed(a, this.#seed, this.now());
    }
    return a;
  }

  reset(account?: Account): void {
    const targets = account ? [account] : [...this.accounts.values()];
    for (const a of targets) {
      this.accounts.delete(a.key);
      this.#limiter?.clear(a.key);
    }
    for (let i = this.#jobQueue.length - 1; i >= 0; i--) if (targets.includes(this.#jobQueue[i]!.account)) this.#jobQueue.splice(i, 1);
    if (!account) {
      this.#requests.total = 0;
      this.#requests.throttled = 0;
      this.#requests.byEndpoint = {};
      this.#requests.admitted = {};
      this.#limiter?.clear();
    }
  }

  summary(account?: Account): EmulatorStateSummary {
    for (const a of account ? [account] : this.accounts.values()) applyDueConsent(a, this.now());
    const limits = this.#options.limits ?? 'klaviyo';
    const faults = this.#faults ? { ...this.#faults.injected } : {};
    if (account) {
      return { ...account.summary(), accounts: 1, limits, requests: cloneRequests(account.requests), faults };
    }
    const total: AccountSummary = {
      profiles: 0,
      events: 0,
      eventsByMetric: {},
      duplicateEventsIgnored: 0,
      metrics: 0,
      lists: [],
      segments: [],
      jobs: { total: 0, queued: 0, processing: 0, complete: 0, importErrors: 0 },
      subscriptionsPending: 0,
      catalog: new Catalog().counts(),
    };
    for (const a of this.accounts.values()) {
      const s = a.summary();
      total.profiles += s.profiles;
      total.events += s.events;
      total.duplicateEventsIgnored += s.duplicateEventsIgnored;
      total.metrics += s.metrics;
      for (const [k, v] of Object.entries(s.eventsByMetric)) total.eventsByMetric[k] = (total.eventsByMetric[k] ?? 0) + v;
      total.lists.push(...s.lists);
      total.segments.push(...s.segments);
      for (const k of Object.keys(total.jobs) as (keyof AccountSummary['jobs'])[]) total.jobs[k] += s.jobs[k];
      total.subscriptionsPending += s.subscriptionsPending;
      for (const k of Object.keys(total.catalog) as (keyof AccountSummary['catalog'])[]) total.catalog[k] += s.catalog[k];
    }
    return { ...total, accounts: this.accounts.size, limits, requests: cloneRequests(this.#requests), faults };
  }

  forgetJob(id: string, account?: Account): boolean {
    const targets = account ? [account] : [...this.accounts.values()];
    const found = targets.some((a) => a.jobs.delete(id));
    for (let i = this.#jobQueue.length - 1; i >= 0; i--) if (this.#jobQueue[i]!.job.id === id) this.#jobQueue.splice(i, 1);
    return found;
  }

  enqueueJob(account: Account, job: ImportJobRecord): void {
    this.#jobQueue.push({ account, job });
    this.kickJobs();
  }

  kickJobs(): void {
    if (this.#timer || this.#jobQueue.length === 0) return;
    this.#lastTick = performance.now();
    this.#budget = 0;
    this.#timer = setInterval(() => this.#tick(), 25);
  }

  #tick(): void {
    const t = performance.now();
    this.#budget = Math.min(this.#budget + ((t - this.#lastTick) / 1000) * this.processingRate, Math.max(1, this.processingRate / 5));
    this.#lastTick = t;
    this.#budget = processJobs(this.#jobQueue, this.#budget, this.now(), this.jobDelayMs);
    if (this.#jobQueue.length === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  async listen(): Promise<EmulatorHandle> {
    const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#internalError(res, err));
    });
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(listenError(err, this.#options.host ?? '127.0.0.1', this.#options.port ?? 0)));
      server.listen(this.#options.port ?? 0, this.#options.host ?? '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const host = this.#options.host ?? '127.0.0.1';
    this.baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    for (const q of this.#pendingJobs()) this.#jobQueue.push(q);
    this.kickJobs();
    return { url: this.baseUrl, port, close: () => this.close(), snapshot: () => this.summary() };
  }

  #pendingJobs(): { account: Account; job: ImportJobRecord }[] {
    const out: { account: Account; job: ImportJobRecord }[] = [];
    for (const account of this.accounts.values()) {
      for (const job of account.jobs.values()) if (job.status === 'queued' || job.status === 'processing') out.push({ account, job });
    }
    return out.sort((a, b) => a.job.createdAt - b.job.createdAt);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const server = this.#server;
    this.#server = null;
    if (server) {
      for (const res of this.#held) res.destroy();
      this.#held.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, 200).unref();
      await closed;
    }
    if (this.#options.stateFile) this.#save(this.#options.stateFile);
  }

  /** Load `file` when it exists; either way it must be writable on close (checked now, not after the session). */
  #load(file: string): void {
    const text = readOptionFile('state file', file, true);
    if (text !== undefined) {
      const saved = parseOptionFile('state file', file, text) as Partial<SavedState> | null;
      if (typeof saved !== 'object' || saved === null || saved.version !== 1 || !Array.isArray(saved.accounts)) {
        throw fileProblem('state file', file, 'is not an emulator state file (expected {"version":1,"accounts":[…]}).');
      }
      saved.accounts.forEach((a, i) => {
        try {
          const account = Account.fromJSON(a, this.#ids);
          if (a.generated) account.generated = generateData(checkGenerate(a.generated), 0).events;
          this.accounts.set(a.key, account);
        } catch {
          throw fileProblem('state file', file, `is not an emulator state file (account ${i} is malformed).`);
        }
      });
    }
    checkWritable('state file', file);
  }

  #save(file: string): void {
    for (const a of this.accounts.values()) applyDueConsent(a, this.now(), true); // pending jobs cannot be saved
    const state: SavedState = { version: 1, accounts: [...this.accounts.values()].map((a) => a.toJSON()) };
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, file);
  }

  // ---- request pipeline ----------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    let path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    const method = (req.method ?? 'GET').toUpperCase();
    const isApi = path.startsWith('/api/') || path === '/api';
    if (isApi) this.#requests.total++;
    if (isApi && this.#latency) await delay(this.#latency.next());
    const m = this.#route(req, res, method, path);
    if (!m) return;
    const ctx: RequestContext = {
      req,
      res,
      method: method as HttpMethod,
      path,
      params: m.params,
      query,
      body: undefined,
      account: undefined as unknown as Account,
      accountOrNull: undefined,
      emulator: this,
      now: () => this.now(),
    };
    if (!isApi) {
      await this.#handleControl(ctx, m);
      return;
    }
    let rlHeaders: Record<string, string> = {};
    try {
      // 1. auth
      ctx.account = ctx.accountOrNull = this.#authenticate(req);
      const endpoint = m.def.endpoint === undefined ? (`${method} ${m.template}` as EndpointKey) : m.def.endpoint;
      const account = ctx.account;
      applyDueConsent(account, this.now());
      this.#count(account, endpoint);
      if (endpoint) this.#checkScopes(req, endpoint);
      // 2. revision
      this.#checkRevision(req);
      // 3. faults (decided before anything changes state)
      if (!(await this.#applyFault(req, res, account))) return;
      // 4. rate limit
      if (this.#limiter && endpoint) rlHeaders = this.#rateLimit(this.#limiter, req, account, endpoint, m.template, query);
      // 5. query parameters (fields, additional-fields, include, sort, page[size]) as the spec allows them
      if (endpoint) checkEndpointQuery(req, endpoint, query);
      // 6. body
      ctx.body = await this.#readBody(req, true, m.def.parseBody);
      const reply = await m.def.handler(ctx);
      if (reply) this.#reply(res, { ...reply, headers: { ...rlHeaders, ...reply.headers } });
    } catch (err) {
      this.#sendError(res, err, rlHeaders);
    }
  }

  /** A request outside `/api` (the emulator's control routes): no revision, faults nor rate limits. */
  async #handleControl(ctx: RequestContext, m: RouteMatch): Promise<void> {
    const { req, res } = ctx;
    const key = ctx.query.get('key') ?? parseAuthKey(req.headers.authorization);
    if (key) {
      // look up without registering: asking for an unknown key's state must not create an account
      const id = EmulatorServer.accountKey(key);
      ctx.account = ctx.accountOrNull = this.accounts.get(id) ?? new Account(id, this.#ids);
    }
    for (const a of ctx.accountOrNull ? [ctx.accountOrNull] : this.accounts.values()) applyDueConsent(a, this.now());
    try {
      ctx.body = await this.#readBody(req, false, m.def.parseBody);
      const reply = await m.def.handler(ctx);
      if (reply) this.#reply(res, reply);
    } catch (err) {
      this.#sendError(res, err, {});
    }
  }

  /** Count an authenticated API request, per account and per endpoint. */
  #count(account: Account, endpoint: EndpointKey | null): void {
    account.requests.total++;
    if (endpoint) {
      account.requests.byEndpoint[endpoint] = (account.requests.byEndpoint[endpoint] ?? 0) + 1;
      this.#requests.byEndpoint[endpoint] = (this.#requests.byEndpoint[endpoint] ?? 0) + 1;
    }
  }

  /** Take the request from the account's rate limits: its RateLimit-* headers, or a 429 thrown. */
  #rateLimit(limiter: RateLimiter, req: IncomingMessage, account: Account, endpoint: EndpointKey, template: string, query: URLSearchParams): Record<string, string> {
    const tier = ENDPOINTS[endpoint];
    if (!tier) throw new Error(`Route ${template} has rate-limit key ${endpoint} that is not in ENDPOINTS`);
    const d = limiter.checkAll(account.key, limitKeys(endpoint, tier, query), this.now());
    if (!d.allowed) {
      account.requests.throttled++;
      this.#requests.throttled++;
      req.resume();
      throw throttled(this.#faults ? this.#faults.retryAfter(d.retryAfter) : d.retryAfter);
    }
    const at = this.now();
    for (const counters of [account.requests, this.#requests]) {
      const seen = counters.admitted[endpoint];
      if (seen) {
        seen.last = at;
        seen.count++;
      } else counters.admitted[endpoint] = { first: at, last: at, count: 1 };
    }
    return { 'RateLimit-Limit': String(d.limit), 'RateLimit-Remaining': String(d.remaining), 'RateLimit-Reset': String(d.reset) };
  }

  /** The route of a request, or null when it was answered here: a malformed path (400), no route (404 / 405). */
  #route(req: IncomingMessage, res: ServerResponse, method: string, path: string): RouteMatch | null {
    let err: ApiError | null = null;
    let headers: Record<string, string> = {};
    const m = path.includes('%') && !decodable(path) ? null : this.#router.match(method, path);
    if (m === null) {
      err = new ApiError(400, { code: 'invalid', detail: 'The URL path has a malformed percent-encoding (a % not followed by two hex digits, or bytes that are not UTF-8).' });
    } else if (!('def' in m)) {
      if (m.allowed.length > 0) {
        err = new ApiError(405, { code: 'method_not_allowed', detail: `Method "${method}" not allowed.` });
        headers = { Allow: m.allowed.join(', ') };
      } else err = new ApiError(404, { code: 'not_found', detail: `The path ${path} could not be found.` });
    } else return m;
    req.resume();
    this.#send(res, { status: err.status, body: err.body(), headers });
    return null;
  }

  /**
   * Draw this request's fault and apply it: `slow` waits, then lets it through (true); `reset` and `timeout` answer
   * nothing (false: the request is done); 429/500/503 throw their error. No fault → true.
   */
  async #applyFault(req: IncomingMessage, res: ServerResponse, account: Account): Promise<boolean> {
    const fault = this.#faults?.next() ?? null;
    if (!fault) return true;
    if (fault.kind === 'slow') {
      await delay(this.#faults!.options.slowMs);
      return true;
    }
    req.resume();
    if (fault.kind === 'reset') {
      req.socket.destroy();
      return false;
    }
    if (fault.kind === 'timeout') {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return false;
    }
    if (fault.kind === '429') {
      account.requests.throttled++;
      this.#requests.throttled++;
      throw throttled(this.#faults!.retryAfter(fault.retryAfter ?? 1));
    }
    throw fault.kind === '500'
      ? new ApiError(500, { code: 'error', detail: 'A server error occurred (injected fault).' })
      : fault.kind === '502'
        ? new ApiError(502, { code: 'bad_gateway', detail: 'Bad gateway (injected fault).' })
        : new ApiError(503, { code: 'service_unavailable', detail: 'Service temporarily unavailable (injected fault).' });
  }

  #authenticate(req: IncomingMessage): Account {
    const header = req.headers.authorization;
    if (!header) {
      throw new ApiError(this.realism.authStatus, { code: 'not_authenticated', detail: 'Authentication credentials were not provided.' });
    }
    const m = /^Klaviyo-API-Key\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new ApiError(this.realism.authStatus, { code: 'not_authenticated', detail: 'Authentication credentials were not provided. Use the header `Authorization: Klaviyo-API-Key <private key>`.' });
    }
    const key = m[1]!;
    if (PUBLIC_KEY_RE.test(key)) {
      throw new ApiError(403, { code: 'permission_denied', detail: 'A public API key (site id) cannot be used with this endpoint; use a private API key.' });
    }
    if (!PRIVATE_KEY_RE.test(key) || (this.#apiKeys && !this.#apiKeys.has(key))) {
      throw new ApiError(this.realism.authStatus, { code: 'authentication_failed', detail: 'Incorrect authentication credentials.' });
    }
    return this.accountFor(key);
  }

  /** 403 `permission_denied` when the request's key was given scopes (`keyScopes`) without one the endpoint needs. */
  #checkScopes(req: IncomingMessage, endpoint: EndpointKey): void {
    if (this.#keyScopes.size === 0) return;
    const key = parseAuthKey(req.headers.authorization);
    const granted = key === null ? undefined : this.#keyScopes.get(key);
    if (!granted) return;
    const missing = scopesOf(endpoint).filter((s) => !granted.has(s));
    if (missing.length > 0) {
      req.resume();
      throw new ApiError(403, { code: 'permission_denied', detail: 'You do not have permission to perform this action.' });
    }
  }

  #checkRevision(req: IncomingMessage): void {
    const rev = req.headers.revision;
    const src = { parameter: 'revision' };
    if (rev === undefined || rev === '') {
      throw new ApiError(400, { code: 'invalid', detail: "Missing required header 'revision'. Use a revision like 2026-07-15.", source: src });
    }
    const m = typeof rev === 'string' ? REVISION_RE.exec(rev) : null;
    const ms = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
    if (!m || Number.isNaN(ms) || new Date(ms).getUTCDate() !== Number(m[3])) {
      throw new ApiError(400, { code: 'invalid', detail: `Invalid revision '${String(rev)}'; expected YYYY-MM-DD[.suffix].`, source: src });
    }
    // compared with the wall clock, not the injectable `now` (tests freeze `now` in the past)
    if (ms > Date.now() + 86_400_000) {
      throw new ApiError(400, { code: 'invalid', detail: `Revision '${rev}' does not exist yet.`, source: src });
    }
  }

  /** `chunks` copied one after the other into the scratch buffer (valid until the next call). */
  #gather(chunks: Buffer[], size: number): Buffer {
    if (this.#scratch.length < size) this.#scratch = Buffer.allocUnsafe(Math.max(size, Math.min(2 * this.#scratch.length, MAX_BODY)));
    let at = 0;
    for (const c of chunks) at += c.copy(this.#scratch, at);
    return this.#scratch.subarray(0, size);
  }

  async #readBody(req: IncomingMessage, strict: boolean, parse: (body: Buffer) => unknown = parseJson): Promise<unknown> {
    const len = req.headers['content-length'];
    const hasBody = (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      req.resume();
      return undefined;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (strict && (!JSON_TYPES.has(type) || (encoding !== 'identity' && encoding !== 'gzip'))) {
      req.resume();
      throw new ApiError(415, {
        code: 'unsupported_media_type',
        detail: `Unsupported media type "${type || '(none)'}"${encoding !== 'identity' ? ` with encoding "${encoding}"` : ''} in request; use application/vnd.api+json.`,
      });
    }
    if (len !== undefined && Number(len) > MAX_BODY && encoding === 'identity') {
      req.resume();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) over = true;
      else chunks.push(chunk);
    }
    if (over) throw tooLarge();
    // from here on synchronous: the chunks are gathered in the reused scratch buffer, which is free again on return
    let buf = chunks.length === 1 ? chunks[0]! : this.#gather(chunks, size);
    if (encoding === 'gzip') buf = gunzipBody(buf);
    if (buf.length === 0) return undefined;
    const deep = tooDeepAt(buf, MAX_BODY_DEPTH);
    if (deep >= 0) {
      throw new ApiError(400, invalid(`The request body nests objects and arrays more than ${MAX_BODY_DEPTH} levels deep.`, pointerAt(buf, deep)));
    }
    try {
      return parse(buf);
    } catch (e) {
      throw new ApiError(400, { code: 'parse_error', title: 'Parse error.', detail: `JSON parse error - ${(e as Error).message}` });
    }
  }

  /**
   * Send a handler's reply, then do its `after` work. The response is already written then, so a failure there (an
   * emulator bug: validation let through what cannot be applied) is printed to stderr rather than answered.
   */
  #reply(res: ServerResponse, reply: Reply): void {
    this.#send(res, reply);
    if (!reply.after) return;
    try {
      reply.after();
    } catch (err) {
      console.error(`emulator: applying an accepted ${res.req.method} ${res.req.url} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }

  #send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = { ...reply.headers };
    if (reply.body === undefined) {
      headers['Content-Length'] = 0;
      res.writeHead(reply.status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(reply.body);
    if (!('Content-Type' in headers)) headers['Content-Type'] = 'application/vnd.api+json';
    headers['Content-Length'] = Buffer.byteLength(text);
    res.writeHead(reply.status, headers);
    res.end(text);
  }

  #sendError(res: ServerResponse, err: unknown, headers: Record<string, string>): void {
    if (err instanceof ApiError) {
      this.#send(res, { status: err.status, body: err.body(), headers: err.status === 429 ? err.headers : { ...headers, ...err.headers } });
    } else this.#internalError(res, err);
  }

  #internalError(res: ServerResponse, err: unknown): void {
    const detail = `Internal emulator error: ${err instanceof Error ? err.message : String(err)}`;
    this.#send(res, { status: 500, body: { errors: [errorObject(500, { code: 'error', detail })] } });
  }
}

function usage(message: string): EtlError {
  return new EtlError('USAGE', message);
}

/** `port` an integer 0..65535, `host` a non-empty name or address without spaces, slashes or a scheme. */
function checkListenOptions(options: EmulatorOptions): void {
  const { port, host } = options;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw usage(`Expected \`port\` to be an integer from 0 to 65535, got \`${String(port)}\``);
  }
  if (host !== undefined && !(typeof host === 'string' && /^[A-Za-z0-9.:_%[\]-]+$/.test(host))) {
    throw usage(`Expected \`host\` to be a host name or an IP address, got ${JSON.stringify(host)}`);
  }
}

/** A failure to listen that the `host`/`port` options explain → a `USAGE` error saying so; others unchanged. */
function listenError(err: Error, host: string, port: number): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: `port ${port} is already in use on ${host}`,
    EADDRNOTAVAIL: `${host} is not an address of this machine`,
    ENOTFOUND: `the host name ${host} cannot be resolved`,
    EAI_AGAIN: `the host name ${host} cannot be resolved`,
    EACCES: `listening on port ${port} needs privileges this process does not have`,
  };
  const reason = reasons[(err as NodeJS.ErrnoException).code ?? ''];
  return reason ? new EtlError('USAGE', `The emulator cannot listen on ${host}:${port}: ${reason}.`, { cause: err }) : err;
}

function cloneRequests(r: RequestCounters): RequestCounters {
  const admitted = Object.fromEntries(Object.entries(r.admitted).map(([k, v]) => [k, { ...v }]));
  return { total: r.total, throttled: r.throttled, byEndpoint: { ...r.byEndpoint }, admitted };
}

function parseAuthKey(header: string | undefined): string | null {
  const m = header ? /^Klaviyo-API-Key\s+(\S+)/i.exec(header) : null;
  return m ? m[1]! : null;
}

/** A 429 as Klaviyo sends it; without `retryAfter`, no header and "available in 0 seconds" (as observed). */
function throttled(retryAfter: number | undefined): ApiError {
  const s = retryAfter === undefined ? 0 : Math.max(1, Math.ceil(retryAfter));
  return new ApiError(
    429,
    {
      code: 'throttled',
      title: 'Request was throttled.',
      detail: `Request was throttled. Expected available in ${s} second${s === 1 ? '' : 's'}.`,
      source: { pointer: '/data' },
      links: { type: 'https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits' },
    },
    retryAfter === undefined ? {} : { 'Retry-After': String(s) },
  );
}

/** A gzip body decompressed: over 5 MB → 413; not gzip, corrupt or truncated → 400. */
function gunzipBody(buf: Buffer): Buffer {
  let out: Buffer;
  try {
    out = gunzipSync(buf, { maxOutputLength: MAX_BODY + 1 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
    const detail = `The request body is not valid gzip (Content-Encoding: gzip): ${(e as Error).message}.`;
    throw new ApiError(400, { code: 'parse_error', title: 'Parse error.', detail });
  }
  if (out.length > MAX_BODY) throw tooLarge();
  return out;
}

/** Whether `decodeURIComponent` can decode `path` (every `%` starts an escape, the escapes are UTF-8). */
function decodable(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

function tooLarge(): ApiError {
  return new ApiError(413, { code: 'payload_too_large', detail: 'Request payload exceeds the 5 MB limit.' });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The query parameters (fields, additional-fields, include, sort, page[size]) as the spec allows them for `endpoint`. */
function checkEndpointQuery(req: IncomingMessage, endpoint: EndpointKey, query: URLSearchParams): void {
  const rules = (QUERY_RULES as Partial<Record<string, (typeof QUERY_RULES)[EndpointKey]>>)[endpoint];
  if (rules && query.size > 0) {
    try {
      checkQuery(rules, query);
    } catch (e) {
      req.resume();
      throw e;
    }
  }
}
