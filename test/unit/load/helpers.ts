import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ItemSpan, LoadItem, Reject } from '../../../src/core/record.js';
import { newStats, type RunStats } from '../../../src/core/stats.js';
import { silentLogger } from '../../../src/core/logger.js';
import { KlaviyoClient } from '../../../src/klaviyo/client.js';
import { RateLimiter } from '../../../src/klaviyo/rate-limiter.js';
import type { LoadContext } from '../../../src/load/types.js';

export interface SeenRequest {
  at: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: unknown;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Delay before answering, ms. */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  destroy?: boolean;
}

export interface TestServer {
  url: string;
  requests: SeenRequest[];
  /** Highest number of requests being handled at once. */
  maxConcurrent: number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1:0 answering with `handler`. */
export async function withServer(handler: (req: SeenRequest, index: number) => Reply | Promise<Reply>): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  let current = 0;
  const state = { maxConcurrent: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const at = Date.now();
    current++;
    state.maxConcurrent = Math.max(state.maxConcurrent, current);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const seen: SeenRequest = { at, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
      const index = requests.push(seen) - 1;
      const reply = await handler(seen, index);
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      current--;
      if (reply.destroy) {
        req.socket.destroy();
        return;
      }
      const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': 'application/vnd.api+json', ...reply.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get maxConcurrent() {
      return state.maxConcurrent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const API_KEY = 'pk_test_0123456789abcdefSECRET';

/** A client with a fast limiter (scale 100) and fast backoff. */
export function testClient(url: string, options: { stats?: RunStats; retries?: number; scale?: number } = {}) {
  const stats = options.stats ?? newStats();
  const limiter = new RateLimiter({ scale: options.scale ?? 100 });
  const client = new KlaviyoClient({
    baseUrl: url,
    apiKey: API_KEY,
    limiter,
    stats,
    logger: silentLogger,
    retries: options.retries ?? 3,
    timeoutMs: 5000,
    retryPolicy: { baseMs: 5, capMs: 20, random: () => 0.5 },
  });
  return {
    client,
    limiter,
    stats,
    close: async () => {
      await client.close();
      await limiter.close();
    },
  };
}

/** A LoadContext recording acks, rejects and finished jobs. */
export function recordingContext(stats: RunStats = newStats(), extra: Partial<LoadContext> = {}) {
  const acked: ItemSpan[] = [];
  const jobIds: (string | undefined)[] = [];
  const rejects: Reject[] = [];
  const jobsDone: string[] = [];
  const ctx: LoadContext = {
    logger: silentLogger,
    stats,
    dryRun: false,
    onAck(items, info) {
      acked.push(...items);
      for (let i = 0; i < items.length; i++) jobIds.push(info?.jobId);
    },
    onReject(r) {
      rejects.push(...r);
    },
    onJobDone(id) {
      jobsDone.push(id);
    },
    ...extra,
  };
  return { ctx, acked, jobIds, rejects, jobsDone };
}

/** Items as a transform would make them: one per CSV line starting at line 2. */
export function makeItems<P>(kind: LoadItem['kind'], payloads: P[], source = 'input.csv'): LoadItem[] {
  return payloads.map((payload, i) => {
    const pos = { seq: i, source, line: i + 2 };
    return { kind, payload, first: pos, last: pos, row: { n: String(i) } } as LoadItem;
  });
}

/** Validator of a request body against the official spec's requestBody schema of `METHOD /path`. */
export async function specBodyValidator(endpointKey: string): Promise<(body: unknown) => string[]> {
  const { readSpec } = await import('../../helpers/openapi.js');
  const { Ajv } = await import('ajv');
  const { default: formats } = await import('ajv-formats');
  const addFormats = formats as unknown as (ajv: InstanceType<typeof Ajv>) => void;
  const spec = readSpec<{
    paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: { $ref: string } }> } }>>;
    components: unknown;
  }>();
  // OpenAPI 3.0 `nullable` next to `$ref`/`allOf` is not JSON Schema; Ajv only accepts it beside `type`.
  const fix = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(fix);
    else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if ('nullable' in record && !('type' in record)) delete record.nullable;
      Object.values(record).forEach(fix);
    }
  };
  fix(spec.components);
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'spec', components: spec.components });
  const [method, path] = endpointKey.split(' ') as [string, string];
  const ref = spec.paths[path]![method.toLowerCase()]!.requestBody.content['application/vnd.api+json']!.schema.$ref;
  const validate = ajv.compile({ $ref: 'spec' + ref });
  return (body) => (validate(body) ? [] : (validate.errors ?? []).map((e: { instancePath: string; message?: string }) => `${e.instancePath} ${e.message ?? ''}`));
}
