import type { SourceRecord, TransformOutput } from '../core/record.js';

/** What a transform component gets from the runner. Transforms do no I/O: the clock is the only dependency. */
export interface TransformContext {
  /** Clock used for "in the past" / "not too far in the future" checks. @default () => new Date() */
  now?: () => Date;
}

/**
 * A running transform. Synchronous and pure apart from the state needed to group consecutive rows.
 * Every record pushed in ends up, sooner or later (at the latest on `flush()`), in exactly one of: an item's span,
 * a reject, or the `skipped` count.
 */
export interface Transformer {
  push(record: SourceRecord): TransformOutput;
  /** Emit whatever is still held (an open group). Call once at the end of the stream. */
  flush(): TransformOutput;
  /** seq of the first record held in an unfinished group (for checkpoints), or undefined. */
  held(): number | undefined;
}
