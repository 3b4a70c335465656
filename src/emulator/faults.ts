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
}

export type FaultKind = '500' | '503' | '429' | 'reset' | 'slow' | 'timeout';

export interface FaultDecision {
  kind: FaultKind;
  /** For 429: Retry-After seconds. */
  retryAfter?: number;
}

export class FaultInjector {
  readonly injected: Record<FaultKind, number> = { '500': 0, '503': 0, '429': 0, reset: 0, slow: 0, timeout: 0 };
  readonly options: Required<FaultOptions>;
  #rand: () => number;
  #burstLeft = 0;

  constructor(options: FaultOptions) {
    this.options = {
      seed: options.seed ?? 1,
      rate500: options.rate500 ?? 0,
      rate503: options.rate503 ?? 0,
      rate429: options.rate429 ?? 0,
      resetRate: options.resetRate ?? 0,
      slowRate: options.slowRate ?? 0,
      slowMs: options.slowMs ?? 2000,
      timeoutRate: options.timeoutRate ?? 0,
    };
    for (const [k, v] of Object.entries(this.options)) {
      if (k.endsWith('Rate') || k.startsWith('rate')) {
        if (typeof v !== 'number' || v < 0 || v > 1) throw new Error(`Expected fault option \`${k}\` to be a probability between 0 and 1, got \`${String(v)}\``);
      }
    }
    this.#rand = seededRandom(this.options.seed);
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

/** Parse `--faults` text: JSON (`{"rate500":0.01}`) or `k=v,k=v`. */
export function parseFaults(text: string): FaultOptions {
  const t = text.trim();
  if (t.startsWith('{')) return JSON.parse(t) as FaultOptions;
  const out: Record<string, number> = {};
  for (const part of t.split(',')) {
    if (!part.trim()) continue;
    const [k, v] = part.split('=');
    const n = Number(v);
    if (!k || v === undefined || Number.isNaN(n)) throw new Error(`Expected \`key=number\` in faults, got \`${part}\``);
    out[k.trim()] = n;
  }
  return out as FaultOptions;
}
