/**
 * Seeded fault injection for `/api/*` requests. One PRNG draw per request (in arrival order) picks at most one
 * fault, so a sequential client sees the same faults for the same seed. Faults are decided before the request
 * is processed, so a faulted request never changes state (`slow` is the exception: it is delayed, then
 * processed normally).
 */
import { seededRandom } from './ids.js';

export interface FaultOptions {
  /** PRNG seed. @default 1 */
  seed?: number;
  /** Probability of a 500 `error`. @default 0 */
  rate500?: number;
  /** Probability of a 502 `bad_gateway` (as a proxy in front of Klaviyo answers). @default 0 */
  rate502?: number;
  /** Probability of a 503 `service_unavailable`. @default 0 */
  rate503?: number;
  /** Probability of starting a 429 burst (this request and the next 1-3 `/api` requests get 429). @default 0 */
  rate429?: number;
  /** Probability of the connection being reset with no response. @default 0 */
  resetRate?: number;
  /** Probability of the request being delayed by `slowMs` before it is processed. @default 0 */
  slowRate?: number;
  /** Delay of slow requests, ms. @default 2000 */
  slowMs?: number;
  /** Probability of never answering (the socket is held open until the client gives up or the server closes). @default 0 */
  timeoutRate?: number;
  /**
   * 1: every 429 (injected, or from the rate limits) comes without `Retry-After` and says "Expected available in 0
   * seconds", as Klaviyo was observed to answer (klaviyo/klaviyo-api-python issue #15). 0 or 1. @default 0
   */
  noRetryAfter?: number;
}

export type FaultKind = '500' | '502' | '503' | '429' | 'reset' | 'slow' | 'timeout';

export interface FaultDecision {
  kind: FaultKind;
  /** For 429: Retry-After seconds. */
  retryAfter?: number;
}

export class FaultInjector {
  readonly injected: Record<FaultKind, number> = { '500': 0, '502': 0, '503': 0, '429': 0, reset: 0, slow: 0, timeout: 0 };
  readonly options: Required<FaultOptions>;
  #rand: () => number;
  #burstLeft = 0;

  constructor(options: FaultOptions) {
    const o = checkFaultOptions(options);
    this.options = {
      seed: o.seed ?? 1,
      rate500: o.rate500 ?? 0,
      rate502: o.rate502 ?? 0,
      rate503: o.rate503 ?? 0,
      rate429: o.rate429 ?? 0,
      resetRate: o.resetRate ?? 0,
      slowRate: o.slowRate ?? 0,
      slowMs: o.slowMs ?? 2000,
      timeoutRate: o.timeoutRate ?? 0,
      noRetryAfter: o.noRetryAfter ?? 0,
    };
    this.#rand = seededRandom(this.options.seed);
  }

  /** The `Retry-After` seconds a 429 carries: `seconds`, or undefined with `noRetryAfter` (no header, "0 seconds"). */
  retryAfter(seconds: number): number | undefined {
    return this.options.noRetryAfter === 1 ? undefined : seconds;
  }

  /** Decide the fault for the next request (or null). */
  next(): FaultDecision | null {
    const r = this.#rand();
    if (this.#burstLeft > 0) {
      this.#burstLeft--;
      this.injected['429']++;
      return { kind: '429', retryAfter: 1 };
    }
    const o = this.options;
    let acc = 0;
    const pick = (rate: number) => r < (acc += rate);
    let kind: FaultKind | null = null;
    if (pick(o.rate500)) kind = '500';
    else if (pick(o.rate502)) kind = '502';
    else if (pick(o.rate503)) kind = '503';
    else if (pick(o.rate429)) {
      kind = '429';
      this.#burstLeft = 1 + Math.floor(this.#rand() * 3);
    } else if (pick(o.resetRate)) kind = 'reset';
    else if (pick(o.timeoutRate)) kind = 'timeout';
    else if (pick(o.slowRate)) kind = 'slow';
    if (kind === null) return null;
    this.injected[kind]++;
    return kind === '429' ? { kind, retryAfter: 1 } : { kind };
  }
}

/** The fault options there are (`FaultOptions`' keys). */
export const FAULT_OPTION_NAMES = ['seed', 'rate500', 'rate502', 'rate503', 'rate429', 'resetRate', 'slowRate', 'slowMs', 'timeoutRate', 'noRetryAfter'] as const;

/**
 * `options` checked: a plain object of known fault options only, the rates probabilities in 0..1, `slowMs` a
 * non-negative finite number, `seed` an integer. Throws an `Error` ("Expected …") naming the first bad option.
 */
export function checkFaultOptions(options: unknown): FaultOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new Error(`Expected fault options to be an object of ${FAULT_OPTION_NAMES.join(', ')}`);
  }
  const known: ReadonlySet<string> = new Set(FAULT_OPTION_NAMES);
  for (const [k, v] of Object.entries(options)) {
    if (!known.has(k)) throw new Error(`Unknown fault option \`${k}\`; the options are ${FAULT_OPTION_NAMES.join(', ')}`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`Expected fault option \`${k}\` to be a number, got ${typeof v === 'number' ? String(v) : typeof v}`);
    if (k === 'seed' && !Number.isSafeInteger(v)) throw new Error(`Expected fault option \`seed\` to be an integer, got \`${v}\``);
    if (k === 'noRetryAfter' && v !== 0 && v !== 1) throw new Error(`Expected fault option \`noRetryAfter\` to be 0 or 1, got \`${v}\``);
    if (k === 'slowMs' && v < 0) throw new Error(`Expected fault option \`slowMs\` to be a number of milliseconds ≥ 0, got \`${v}\``);
    if (k !== 'seed' && k !== 'slowMs' && (v < 0 || v > 1)) throw new Error(`Expected fault option \`${k}\` to be a probability between 0 and 1, got \`${v}\``);
  }
  return options as FaultOptions;
}

/** Parse `--faults` text: JSON (`{"rate500":0.01}`) or `k=v,k=v`, checked by `checkFaultOptions`. */
export function parseFaults(text: string): FaultOptions {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      throw new Error('Expected JSON fault options (`{"rate500":0.01}`), got text that is not valid JSON');
    }
    return checkFaultOptions(parsed);
  }
  const out: Record<string, number> = {};
  for (const part of t.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part.trim() : part.slice(0, eq).trim();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    const n = v === '' ? NaN : Number(v);
    if (!k || Number.isNaN(n)) throw new Error(`Expected \`key=number\` in faults, got \`${part.trim()}\``);
    out[k] = n;
  }
  return checkFaultOptions(out);
}
