/**
 * The emulator's router.
 *
 * Route-registration API (how to add endpoints):
 *
 * 1. Create `src/emulator/routes/<area>.ts` exporting a `RouteModule` (a readonly array of `RouteDefinition`s):
 *
 *    ```ts
 *    import type { RouteModule } from '../router.js';
 *    export const listRoutes: RouteModule = [
 *      { method: 'GET', path: '/api/lists/{id}', handler: (ctx) => ({ status: 200, body: { data: … } }) },
 *    ];
 *    ```
 * 2. Add it to `ROUTE_MODULES` in `src/emulator/routes/index.ts` (explicit registration, no discovery), or pass
 *    it to `startEmulator({ routes: [listRoutes] })` for ad-hoc additions.
 *
 * - `path` is a template; `{name}` segments become `ctx.params.name`. A trailing slash in the request is ignored.
 * - Routes whose path starts with `/api/` are Klaviyo routes: the server authenticates the key (→ `ctx.account`),
 *   checks the `revision` header, injects faults, applies rate limits keyed by `endpoint` (default
 *   `"METHOD path"`, which must then be a key of `ENDPOINTS` in src/klaviyo/endpoints.ts; set `endpoint: null` for no
 *   limit), checks content type and body size, and parses the JSON body (→ `ctx.body`) before calling `handler`.
 * - Other paths (`/_emulator/…`) are internal: no auth; `ctx.account` is the account chosen by `?key=` or the
 *   `Authorization` header, if any; `ctx.body` is parsed when present.
 * - A handler returns a `Reply` (`{status, body?, headers?}`; no body → empty), throws `ApiError` for JSON:API
 *   errors (any other exception becomes a 500), or writes to `ctx.res` itself and returns `undefined` (streaming).
 * - Handlers use `ctx.now()` for time, `ctx.account` for data (src/emulator/state.ts), `ctx.emulator` for
 *   server-wide things (base URL, job queue, all accounts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RealismOptions } from './realism.js';
import type { EndpointKey } from '../klaviyo/endpoints.js';
import type { Reply } from './http.js';
import type { Account, ImportJobRecord } from './state.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** What a handler can reach of the running emulator. */
export interface EmulatorContext {
  /** Base URL, e.g. `http://127.0.0.1:4010` (used for `links`). */
  readonly baseUrl: string;
  /** Clock (epoch ms). */
  now(): number;
  /** Bulk-import profiles processed per second. */
  readonly processingRate: number;
  /** How long a bulk import job stays queued before it is processed (ms, emulator clock). */
  readonly jobDelayMs: number;
  /** The answer to a bulk event that repeats an event already held (see EmulatorOptions.duplicateEvents). */
  readonly duplicateEvents: 'ignore' | 'reject';
  /** How long after its 202 a subscribe job is applied (ms, emulator clock). */
  readonly subscriptionDelayMs: number;
  /** The regions the account can send SMS to (SMS consent elsewhere is refused). */
  readonly smsRegions: ReadonlySet<string>;
  /** Realism options, with defaults (src/emulator/realism.ts). */
  readonly realism: Required<RealismOptions>;
  /** Every account, by internal key. */
  readonly accounts: Map<string, Account>;
  /** Account for an API key (created on first use, with the seed applied). */
  accountFor(apiKey: string): Account;
  /** Wipe every account (or one). */
  reset(account?: Account): void;
  /** Server-wide counters and state summary (what `GET /_emulator/state` returns). */
  summary(account?: Account): unknown;
  /** Queue a bulk-import job for asynchronous processing (FIFO, at `processingRate`). */
  enqueueJob(account: Account, job: ImportJobRecord): void;
  /** Forget a bulk-import job (as Klaviyo does 7 days after it ends), unprocessed rows included. False: unknown. */
  forgetJob(id: string, account?: Account): boolean;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: HttpMethod;
  /** Path without query string and without trailing slash. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when none). */
  body: unknown;
  /** The API key's account (always set on `/api` routes). */
  account: Account;
  /** May be undefined on internal routes. */
  accountOrNull: Account | undefined;
  emulator: EmulatorContext;
  now(): number;
}

export interface RouteDefinition {
  method: HttpMethod;
  /** Path template, e.g. `/api/profiles/{id}`. */
  path: string;
  /** Rate-limit key (a key of ENDPOINTS); default `"METHOD path"`; `null` = not rate limited. */
  endpoint?: EndpointKey | null;
  handler(ctx: RequestContext): Reply | undefined | Promise<Reply | undefined>;
  /**
   * Parse the (decompressed) request body; must return what `JSON.parse` of its UTF-8 text returns, or throw that
   * SyntaxError. @default `parseJson` (src/emulator/json-body.ts)
   */
  parseBody?(body: Buffer): unknown;
}

export type RouteModule = readonly RouteDefinition[];

interface Compiled {
  def: RouteDefinition;
  segments: string[];
  /** index → param name */
  params: (string | null)[];
}

export interface RouteMatch {
  def: RouteDefinition;
  params: Record<string, string>;
  template: string;
}

export class Router {
  #routes: Compiled[] = [];

  add(def: RouteDefinition): this {
    const segments = def.path.split('/').filter(Boolean);
    const params = segments.map((s) => (s.startsWith('{') && s.endsWith('}') ? s.slice(1, -1) : null));
    if (this.#routes.some((r) => r.def.method === def.method && r.def.path === def.path)) {
      throw new Error(`Route ${def.method} ${def.path} registered twice`);
    }
    this.#routes.push({ def, segments, params });
    return this;
  }

  addModule(module: RouteModule): this {
    for (const def of module) this.add(def);
    return this;
  }

  /** Match a path; `{ allowed }` lists the methods of routes that match the path when none matches the method. */
  match(method: string, path: string): RouteMatch | { allowed: string[] } {
    const parts = path.split('/').filter(Boolean);
    const allowed: string[] = [];
    outer: for (const r of this.#routes) {
      if (r.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const name = r.params[i];
        if (name) params[name] = decodeURIComponent(parts[i]!);
        else if (r.segments[i] !== parts[i]) continue outer;
      }
      if (r.def.method !== method) {
        allowed.push(r.def.method);
        continue;
      }
      return { def: r.def, params, template: r.def.path };
    }
    return { allowed };
  }
}
