/**
 * Validates HTTP responses against the official Klaviyo OpenAPI spec (`../shared/klaviyo-openapi/stable.json`
 * relative to the repo root, read at test time, never copied). Ajv (+ ajv-formats), `strict: false`; `$ref`s to
 * `#/components/...` resolve inside the spec. (test/unit/load/helpers.ts has the request-body counterpart.)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';

/** Path of the spec: `<repo>/../shared/klaviyo-openapi/stable.json`. */
export const SPEC_PATH = fileURLToPath(new URL('../../../shared/klaviyo-openapi/stable.json', import.meta.url));

interface MediaType {
  schema?: Record<string, unknown>;
}
interface ResponseObject {
  $ref?: string;
  content?: Record<string, MediaType>;
}
interface Operation {
  operationId: string;
  responses: Record<string, ResponseObject>;
}
interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, ResponseObject>; schemas: Record<string, unknown> };
}

/** Result of matching a response to the spec. */
export interface ResponseCheck {
  /** `operationId` of the matched operation. */
  operationId: string;
  /** The response key used (`200`, `4XX`…). */
  statusKey: string;
  /** `true` when the spec has no body schema for it (then the body must be empty). */
  empty: boolean;
  /** Validation problems (`instancePath message`), empty when valid. */
  errors: string[];
}

export interface SpecResponseValidator {
  /** The spec path template matching a concrete path (`/api/lists/AbC123/profiles` → `/api/lists/{id}/profiles`). */
  template(path: string): string | undefined;
  /**
   * Check a response of `METHOD path` (concrete path, no query) with `status` and raw body text. Throws when the
   * operation or status has no response in the spec.
   */
  check(method: string, path: string, status: number, body: string): ResponseCheck;
}

/** OpenAPI 3.0 `nullable` is only understood by Ajv next to `type`: rewrite the other cases as `anyOf [.., null]`. */
function fixNullable(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(fixNullable);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  Object.values(record).forEach(fixNullable);
  if (record.nullable === true && !('type' in record)) {
    const rest = { ...record };
    delete rest.nullable;
    for (const k of Object.keys(record)) delete record[k];
    record.anyOf = [rest, { type: 'null' }];
  } else if ('nullable' in record && !('type' in record)) delete record.nullable;
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `spec${v}` : rewriteRefs(v);
  return out;
}

/** Load the spec and build a response validator (compiled schemas are cached per operation+status). */
export function loadSpecResponseValidator(specPath = SPEC_PATH): SpecResponseValidator {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as Spec;
  fixNullable(spec.components);
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  (formats as unknown as (a: Ajv) => void)(ajv);
  ajv.addSchema({ $id: 'spec', components: spec.components });
  const templates = Object.keys(spec.paths).map((t) => ({ t, parts: t.split('/').filter(Boolean) }));
  const cache = new Map<string, ValidateFunction | null>();

  const template = (path: string): string | undefined => {
    const parts = path.split('/').filter(Boolean);
    const hit = templates.find(
      ({ parts: tp }) => tp.length === parts.length && tp.every((s, i) => (s.startsWith('{') && s.endsWith('}')) || s === parts[i]),
    );
    return hit?.t;
  };

  return {
    template,
    check(method, path, status, body) {
      const t = template(path);
      if (!t) throw new Error(`No spec path for ${path}`);
      const op = spec.paths[t]![method.toLowerCase()];
      if (!op) throw new Error(`No spec operation ${method} ${t}`);
      const statusKey = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in op.responses);
      if (!statusKey) throw new Error(`No spec response ${status} for ${op.operationId}`);
      const cacheKey = `${op.operationId} ${statusKey}`;
      let validate = cache.get(cacheKey);
      if (validate === undefined) {
        let resp = op.responses[statusKey]!;
        if (resp.$ref) resp = spec.components.responses[resp.$ref.split('/').pop()!]!;
        const schema = resp.content ? Object.values(resp.content)[0]?.schema : undefined;
        if (!schema) validate = null;
        else {
          const fixed = structuredClone(schema);
          fixNullable(fixed);
          validate = ajv.compile(rewriteRefs(fixed) as Record<string, unknown>);
        }
        cache.set(cacheKey, validate);
      }
      if (validate === null) {
        return { operationId: op.operationId, statusKey, empty: true, errors: body === '' ? [] : [`expected an empty body, got ${body.slice(0, 200)}`] };
      }
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        return { operationId: op.operationId, statusKey, empty: false, errors: [`body is not JSON: ${body.slice(0, 200)}`] };
      }
      const ok = validate(json);
      const errors = ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
      return { operationId: op.operationId, statusKey, empty: false, errors };
    },
  };
}
