/**
 * HTTP helpers shared by the emulator's routes: Klaviyo's JSON:API error objects, replies and date formatting.
 */
import { randomUUID } from 'node:crypto';

/** `source` of a JSON:API error: a JSON pointer into the body, or a query/header parameter name. */
export type ErrorSource = { pointer: string } | { parameter: string };

/** One JSON:API error object as Klaviyo sends it. */
export interface ApiErrorObject {
  id: string;
  status: number;
  code: string;
  title: string;
  detail: string;
  source: ErrorSource;
  links: Record<string, string>;
  meta: Record<string, unknown>;
}

/** Where Klaviyo points errors that concern no particular member (auth, 404, 415, 5xx…): observed `/data/`. */
export const DEFAULT_SOURCE: ErrorSource = { pointer: '/data/' };

/** Input for one error object; `id`, `links`, `meta` get defaults. */
export interface ErrorInit {
  code: string;
  title?: string;
  detail: string;
  source?: ErrorSource;
  links?: Record<string, string>;
  meta?: Record<string, unknown>;
}

const DEFAULT_TITLES: Record<string, string> = {
  invalid: 'Invalid input.',
  not_authenticated: 'Authentication credentials were not provided.',
  authentication_failed: 'Incorrect authentication credentials.',
  permission_denied: 'You do not have permission to perform this action.',
  not_found: 'Not found.',
  method_not_allowed: 'Method not allowed.',
  unsupported_media_type: 'Unsupported media type.',
  payload_too_large: 'Request entity too large.',
  throttled: 'Request was throttled.',
  duplicate_profile: 'Conflict.',
  conflict: 'Conflict.',
  error: 'A server error occurred.',
  service_unavailable: 'Service unavailable.',
};

export function errorObject(status: number, init: ErrorInit): ApiErrorObject {
  const out: ApiErrorObject = {
    id: randomUUID(),
    status,
    code: init.code,
    title: init.title ?? DEFAULT_TITLES[init.code] ?? 'Error.',
    detail: init.detail,
    source: init.source ?? { ...DEFAULT_SOURCE },
    links: init.links ?? {},
    meta: init.meta ?? {},
  };
  return out;
}

/**
 * Throw from a handler to answer with a JSON:API error document. Several errors (one per bad field/item) may be
 * given; the HTTP status is `status`.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly errors: ApiErrorObject[];
  readonly headers: Record<string, string>;
  constructor(status: number, errors: ErrorInit | ErrorInit[], headers: Record<string, string> = {}) {
    const list = Array.isArray(errors) ? errors : [errors];
    super(list[0]?.detail ?? 'error');
    this.status = status;
    this.errors = list.map((e) => errorObject(status, e));
    this.headers = headers;
  }
  body(): { errors: ApiErrorObject[] } {
    return { errors: this.errors };
  }
}

/** Shorthand for a 400 `invalid` error at a body pointer. */
export function invalid(detail: string, pointer?: string): ErrorInit {
  return pointer === undefined ? { code: 'invalid', detail } : { code: 'invalid', detail, source: { pointer } };
}

/** Shorthand for a 400 `invalid` error on a query parameter. */
export function invalidParam(detail: string, parameter: string): ErrorInit {
  return { code: 'invalid', detail, source: { parameter } };
}

/** What a handler returns: status, optional JSON body (omitted → empty body), extra headers. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * Work done right after the response is handed to the socket, before the next request is read (an accepted
   * request's effects, as Klaviyo queues them): the client hears back sooner, and every later request sees them.
   */
  after?: () => void;
}

/** Klaviyo's datetime style: `2022-11-08T00:00:00+00:00` (seconds; milliseconds dropped). */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19) + '+00:00';
}

/** Datetime with microseconds-like precision as Klaviyo prints `created`/`updated` (`…T00:00:00.123000+00:00`). */
export function isoMicros(ms: number): string {
  const s = new Date(ms).toISOString();
  return s.slice(0, 23) + '000+00:00';
}
