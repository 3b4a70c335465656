import { EtlError } from '../core/errors.js';
import type { SourcePosition } from '../core/record.js';

/** A record sequence number, or a position carrying one (so `item.first` / `item.last` can be passed as is). */
export type SeqRef = number | Pick<SourcePosition, 'seq'>;

export interface AckTrackerOptions {
  /**
   * Sequence number of the first record this run will read (`startAfter.seq + 1` on a resumed run).
   * @default 0
   */
  startSeq?: number;
  /** The safe position already reached before this run (the checkpoint's position on a resumed run). */
  initial?: SourcePosition;
  /** Initial ring capacity (grows by doubling with the in-flight window, never shrinks below this). @default 1024 */
  initialCapacity?: number;
}

const seqOf = (ref: SeqRef): number => (typeof ref === 'number' ? ref : ref.seq);

/**
 * Computes the checkpoint position: the last record of the longest contiguous prefix of the record stream whose
 * every record is *done*. A record is done when (1) it is closed — the transform has moved past it, so no further
 * item can be produced from it — and (2) every item produced from it has been settled (acknowledged or rejected).
 *
 * Pending items are counted at their *first* record only. That is exact for the prefix: an unsettled item
 * starting at `s` stops the prefix at `s`, so it can never be passed over to a later record it covers; and once
 * every item starting at or before `r` is settled, no pending item covers `r`. So settling needs only the first
 * seq, and several items starting at the same record (a grouped event and its first per-item event) need not
 * be told apart.
 *
 * Protocol for the runner (all calls are synchronous and O(1) amortized per record and per item):
 * - `read(pos)` for each record, in increasing `seq` order (gaps are allowed and count as done);
 * - `produced(first, last)` for each item the transform emits (before handing it to the loader); one record can
 *   be covered by several items (a grouped event and per-item events from the same rows): each is one pending;
 * - `settled(first, last?)` when the loader acknowledges (`onAck` item) or rejects (`onReject` load-stage
 *   reject: `settled(reject.seq)`) that item, in any order. Not for profile import-errors reported after the job
 *   finished: those items were already settled by `onAck` when the job was created;
 * - `consumed(seq)` for a record that produced no item and is not held (rejected at transform, skipped);
 * - `closeBefore(seq)` after each transform step: records below `seq` are closed. Pass the transform's
 *   `heldFrom` (first seq held by an open group) when a group is open, else the next seq to read;
 * - `safePosition()` for the checkpoint.
 *
 * Memory is a ring of per-record slots from the low watermark (first record not yet done) to the newest record
 * read: bounded by the in-flight window, not by the input size.
 */
export class AckTracker {
  /** seq of the first record not yet known to be done (low watermark). */
  #low: number;
  /** seq the next `read` is expected at or after (one past the newest record read). */
  #high: number;
  /** Records below this seq are closed. */
  #closedBelow: number;
  #capacity: number;
  #counts: Int32Array;
  #closed: Uint8Array;
  #positions: (SourcePosition | undefined)[];
  #safe: SourcePosition | undefined;

  constructor(options: AckTrackerOptions = {}) {
    const start = options.startSeq ?? (options.initial ? options.initial.seq + 1 : 0);
    if (!Number.isInteger(start) || start < 0) {
      throw new EtlError('INTERNAL', `Expected \`startSeq\` to be a non-negative integer, got ${String(start)}`);
    }
    this.#low = start;
    this.#high = start;
    this.#closedBelow = start;
    this.#capacity = nextPow2(Math.max(16, options.initialCapacity ?? 1024));
    this.#counts = new Int32Array(this.#capacity);
    this.#closed = new Uint8Array(this.#capacity);
    this.#positions = new Array<SourcePosition | undefined>(this.#capacity);
    this.#safe = options.initial;
  }

  /** Register a record read from the source. Sequence numbers must increase; skipped numbers count as done. */
  read(pos: SourcePosition): void {
    const seq = pos.seq;
    if (!Number.isInteger(seq) || seq < this.#high) {
      throw new EtlError('INTERNAL', `AckTracker: record seq ${seq} read out of order (expected ≥ ${this.#high})`);
    }
    if (seq > this.#high) {
      if (this.#low === this.#high) {
        // Nothing in flight: jump over the gap without materializing it.
        this.#low = this.#high = seq;
        if (this.#closedBelow < seq) this.#closedBelow = seq;
      } else {
        for (let s = this.#high; s < seq; s++) this.#push(s, undefined, true);
      }
    }
    this.#push(seq, pos, seq < this.#closedBelow);
    this.#advance();
  }

  /**
   * An item spanning records `first..last` was produced (call before handing it to the loader). O(1): pending
   * items are counted at their first record only (see the class comment for why that is exact).
   */
  produced(first: SeqRef, last: SeqRef = first): void {
    const a = seqOf(first);
    this.#checkSpan(a, seqOf(last), 'produced');
    this.#counts[a & (this.#capacity - 1)]++;
  }

  /**
   * An item whose span starts at `first` was acknowledged or rejected by Klaviyo. Any order. `last` is optional:
   * a load-stage `Reject` carries only `seq` (= its item's first record), and `settled(reject.seq)` is enough.
   */
  settled(first: SeqRef, last?: SeqRef): void {
    const a = seqOf(first);
    this.#checkSpan(a, last === undefined ? a : seqOf(last), 'settled');
    const i = a & (this.#capacity - 1);
    if (this.#counts[i] <= 0) {
      throw new EtlError('INTERNAL', `AckTracker: settled(${a}) without a matching produced() for an item starting there`);
    }
    this.#counts[i]--;
    if (a === this.#low) this.#advance();
  }

  /** A record that produced no item and is not held by an open group (rejected at transform, skipped). */
  consumed(seq: SeqRef): void {
    const s = seqOf(seq);
    if (s < this.#low) return;
    if (s >= this.#high) {
      throw new EtlError('INTERNAL', `AckTracker: consumed(${s}) for a record not read yet`);
    }
    this.#closed[s & (this.#capacity - 1)] = 1;
    if (s === this.#low) this.#advance();
  }

  /**
   * Records with seq below `seq` are closed: the transform will produce no more items from them. Call it after
   * each transform step with the transform's `heldFrom` when a group is open, else with the next seq to read.
   */
  closeBefore(seq: SeqRef): void {
    const target = Math.min(seqOf(seq), this.#high);
    if (target <= this.#closedBelow) return;
    const mask = this.#capacity - 1;
    for (let s = Math.max(this.#closedBelow, this.#low); s < target; s++) this.#closed[s & mask] = 1;
    this.#closedBelow = target;
    this.#advance();
  }

  /** Position of the last record of the contiguous done prefix; `undefined` until the first record is done. */
  safePosition(): SourcePosition | undefined {
    return this.#safe;
  }

  /** Records read and not yet done (the in-flight window). */
  get window(): number {
    return this.#high - this.#low;
  }

  /** Current ring capacity in records (for memory-bound tests and diagnostics). */
  get capacity(): number {
    return this.#capacity;
  }

  /** True when every record read so far is done. */
  get idle(): boolean {
    return this.#low === this.#high;
  }

  #push(seq: number, pos: SourcePosition | undefined, closed: boolean): void {
    if (seq - this.#low >= this.#capacity) this.#grow();
    const i = seq & (this.#capacity - 1);
    this.#counts[i] = 0;
    this.#closed[i] = closed ? 1 : 0;
    this.#positions[i] = pos;
    this.#high = seq + 1;
  }

  #advance(): void {
    const mask = this.#capacity - 1;
    while (this.#low < this.#high) {
      const i = this.#low & mask;
      if (this.#closed[i] === 0 || this.#counts[i] !== 0) break;
      const pos = this.#positions[i];
      if (pos) this.#safe = pos;
      this.#positions[i] = undefined;
      this.#low++;
    }
  }

  #grow(): void {
    const old = this.#capacity;
    const cap = old * 2;
    const counts = new Int32Array(cap);
    const closed = new Uint8Array(cap);
    const positions = new Array<SourcePosition | undefined>(cap);
    for (let s = this.#low; s < this.#high; s++) {
      counts[s & (cap - 1)] = this.#counts[s & (old - 1)];
      closed[s & (cap - 1)] = this.#closed[s & (old - 1)];
      positions[s & (cap - 1)] = this.#positions[s & (old - 1)];
    }
    this.#capacity = cap;
    this.#counts = counts;
    this.#closed = closed;
    this.#positions = positions;
  }

  #checkSpan(a: number, b: number, what: string): void {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a > b || a < this.#low || b >= this.#high) {
      throw new EtlError(
        'INTERNAL',
        `AckTracker: ${what}(${a}, ${b}) outside the in-flight window [${this.#low}, ${this.#high})`,
      );
    }
  }
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
