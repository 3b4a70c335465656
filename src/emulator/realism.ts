/**
 * Realism options: answers Klaviyo gives that its spec does not describe, or that it documents besides the spec's,
 * which the emulator gives only when asked (docs/emulator.md, "Realism options", names each one's source).
 */
import { ApiError } from './http.js';

export interface RealismOptions {
  /**
   * Status of a missing or invalid private key: 401 as the spec has it, or 400 as Klaviyo's auth guide says ("A 400
   * error indicates an invalid or missing API key"). The codes stay `not_authenticated` / `authentication_failed`.
   * @default 401
   */
  authStatus?: 401 | 400;
  /**
   * An unknown list in a bulk profile import or a subscription job: 404 `not_found` pointing at the list, or 400
   * `invalid` with no pointer to any member, as other integrations observed (rudder-server PR #7107).
   * @default 404
   */
  unknownListStatus?: 404 | 400;
  /**
   * A malformed profile in a bulk profile import: `'import-error'` (the job records it, the others import), or
   * `'request'`: the whole request is answered 400 `The payload provided in the request is invalid.` at `/data`, with
   * no pointer to the profile, and nothing is imported (observed by other integrations).
   * @default 'import-error'
   */
  invalidProfile?: 'import-error' | 'request';
}

export const DEFAULT_REALISM: Required<RealismOptions> = { authStatus: 401, unknownListStatus: 404, invalidProfile: 'import-error' };

const ALLOWED: { [K in keyof RealismOptions]-?: readonly Required<RealismOptions>[K][] } = {
  authStatus: [401, 400],
  unknownListStatus: [404, 400],
  invalidProfile: ['import-error', 'request'],
};

/** Options with defaults; throws on an unknown key or value ("Expected realism option `x` to be …, got `y`"). */
export function resolveRealism(options: RealismOptions = {}): Required<RealismOptions> {
  for (const [key, value] of Object.entries(options)) {
    const allowed = (ALLOWED as Record<string, readonly unknown[] | undefined>)[key];
    if (!allowed) throw new Error(`Expected a realism option (${Object.keys(ALLOWED).join(', ')}), got \`${key}\``);
    if (!allowed.includes(value)) throw new Error(`Expected realism option \`${key}\` to be ${allowed.join(' or ')}, got \`${String(value)}\``);
  }
  return { ...DEFAULT_REALISM, ...options };
}

/** Parse `--realism` text: JSON (`{"authStatus":400}`) or `k=v,k=v` (numbers as numbers). */
export function parseRealism(text: string): RealismOptions {
  const t = text.trim();
  const raw: Record<string, unknown> = t.startsWith('{') ? (JSON.parse(t) as Record<string, unknown>) : {};
  if (!t.startsWith('{')) {
    for (const part of t.split(',')) {
      if (!part.trim()) continue;
      const [k, v] = part.split('=');
      if (!k || v === undefined) throw new Error(`Expected \`key=value\` in realism options, got \`${part}\``);
      raw[k.trim()] = /^\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim();
    }
  }
  const options = raw as RealismOptions;
  resolveRealism(options);
  return options;
}

/** The answer to an unknown list id in a bulk job, per `unknownListStatus`. */
export function unknownList(status: 404 | 400, id: string, pointer: string): ApiError {
  const detail = `A list with id ${id} does not exist.`;
  return status === 404
    ? new ApiError(404, { code: 'not_found', detail, source: { pointer } })
    : new ApiError(400, { code: 'invalid', detail, source: { pointer: '/data/' } });
}
