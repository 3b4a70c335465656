/** A tiny fetch-based client for emulator tests (real HTTP over loopback). */
export const KEY = 'pk_test_0123456789abcdef0123456789ab';
export const REVISION = '2026-07-15';

export interface ApiResponse {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export function client(baseUrl: string, key: string | null = KEY) {
  return async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string | undefined> = {},
  ): Promise<ApiResponse> {
    const h: Record<string, string> = { revision: REVISION, accept: 'application/vnd.api+json' };
    if (key !== null) h.authorization = `Klaviyo-API-Key ${key}`;
    if (body !== undefined) h['content-type'] = 'application/vnd.api+json';
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) delete h[k];
      else h[k] = v;
    }
    const res = await fetch(baseUrl + path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  };
}

export function profileBody(attributes: Record<string, unknown>, id?: string) {
  return { data: { type: 'profile', ...(id ? { id } : {}), attributes } };
}

export function eventBody(attrs: Record<string, unknown>, profile: Record<string, unknown>, metric = 'Placed Order') {
  return {
    data: {
      type: 'event',
      attributes: { properties: {}, ...attrs, metric: { data: { type: 'metric', attributes: { name: metric } } }, profile: { data: { type: 'profile', attributes: profile } } },
    },
  };
}

export function bulkEventsBody(entries: { profile: Record<string, unknown>; events: Record<string, unknown>[]; metric?: string }[]) {
  return {
    data: {
      type: 'event-bulk-create-job',
      attributes: {
        'events-bulk-create': {
          data: entries.map((e) => ({
            type: 'event-bulk-create',
            attributes: {
              profile: { data: { type: 'profile', attributes: e.profile } },
              events: {
                data: e.events.map((ev) => ({
                  type: 'event',
                  attributes: { properties: {}, ...ev, metric: { data: { type: 'metric', attributes: { name: e.metric ?? 'Placed Order' } } } },
                })),
              },
            },
          })),
        },
      },
    },
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET a JSON document (state endpoint etc.). */
export async function getJson(url: string, init?: RequestInit): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(url, init);
  return res.json();
}
