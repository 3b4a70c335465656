/**
 * Added latency: every `/api` answer delayed by a fixed time or by a time drawn uniformly from a range (seeded, one
 * draw per request in arrival order), to measure clients under real-world latency.
 */
import { seededRandom } from './ids.js';

/** A fixed delay (ms) or a range drawn uniformly. */
export type LatencyOption = number | { min: number; max: number };

/** `250` or `100-400` (milliseconds) into a latency option; throws an Error naming the problem. */
export function parseLatency(text: string): LatencyOption {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?)\s*)?$/.exec(text);
  if (!m) throw new Error(`Expected a latency in milliseconds (250) or a range (100-400), got ${JSON.stringify(text)}`);
  const min = Number(m[1]);
  if (m[2] === undefined) return min;
  const max = Number(m[2]);
  if (max < min) throw new Error(`Expected the latency range's minimum ≤ its maximum, got ${JSON.stringify(text)}`);
  return { min, max };
}

/** Draws the delay of each answer. */
export class Latency {
  readonly #min: number;
  readonly #span: number;
  readonly #rand: () => number;

  /** Throws an Error for a negative, infinite or inverted latency. */
  constructor(option: LatencyOption, seed = 1) {
    const { min, max } = typeof option === 'number' ? { min: option, max: option } : option;
    if (!(Number.isFinite(min) && Number.isFinite(max) && min >= 0 && max >= min)) {
      throw new Error(`Expected \`latency\` to be milliseconds ≥ 0 or {min, max} with 0 ≤ min ≤ max, got ${JSON.stringify(option)}`);
    }
    this.#min = min;
    this.#span = max - min;
    this.#rand = seededRandom(seed);
  }

  /** The delay of the next answer (ms). */
  next(): number {
    return this.#span === 0 ? this.#min : this.#min + this.#rand() * this.#span;
  }
}
