import type { SourcePosition } from '../core/record.js';

/** What a resumed run does when Klaviyo no longer knows some of the bulk jobs its checkpoint lists as pending. */
export interface ResendPlan {
  /** Read (and send) again every record after this position; `undefined`: from the start of the run. */
  startAfter: SourcePosition | undefined;
  /** Pending jobs still followed (their rows all come before `startAfter`). */
  keep: string[];
  /** Pending jobs no longer followed: the forgotten ones, and those whose rows are all read again. */
  drop: string[];
}

/**
 * Plan the resend of the rows of `forgotten` jobs (at least one): the run reads again from the earliest position after which a
 * forgotten job's rows come (`after[id]`; `null` or unknown, as in checkpoints written before this was recorded:
 * from the start). A pending job whose rows all come after that point is dropped rather than polled: its rows are
 * sent again, and polling it too would report each of its import errors twice.
 */
export function planResend(
  forgotten: readonly string[],
  pending: readonly string[],
  after: Readonly<Record<string, SourcePosition | null>> = {},
): ResendPlan {
  let startAfter: SourcePosition | undefined;
  let fromStart = false;
  for (const id of forgotten) {
    const pos = after[id];
    if (!pos) fromStart = true;
    else if (!startAfter || pos.seq < startAfter.seq) startAfter = pos;
  }
  if (fromStart) startAfter = undefined;
  const gone = new Set(forgotten);
  const keep: string[] = [];
  const drop: string[] = [...forgotten];
  for (const id of pending) {
    if (gone.has(id)) continue;
    const pos = after[id];
    if (startAfter && pos && pos.seq < startAfter.seq) keep.push(id);
    else drop.push(id);
  }
  return { startAfter, keep, drop };
}
