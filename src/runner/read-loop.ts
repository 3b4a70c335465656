/** The read loop: records from the source, through the transform, to the destination, each registered in the tracker. */
import { setImmediate as nextLoopTurn } from 'node:timers/promises';
import type { AckTracker } from '../checkpoint/index.js';
import type { EtlError } from '../core/errors.js';
import type { LoadItem, SourceRecord, TransformOutput } from '../core/record.js';
import { ITEM_COUNTERS, type CountUpTo, type RunStats } from '../core/stats.js';
import type { Destination } from '../destinations/types.js';
import type { SourceReader } from '../extract/types.js';
import type { Transformer } from '../transform/types.js';
import type { SourceColumns } from './reject-rows.js';
import type { RunRejects } from './rejects.js';

/** The read loop looks at the clock every this many records (a power of two)… */
const YIELD_CHECK_EVERY = 32;
/** …and lets the event loop run when this much time passed since it last did. */
const YIELD_AFTER_MS = 2;

/** What the read loop works with. */
export interface ReadLoop {
  reader: SourceReader;
  transformer: Transformer;
  destination: Destination;
  tracker: AckTracker;
  stats: RunStats;
  rejects: RunRejects;
  /** Rows skipped, by position (a checkpoint counts those up to its position). */
  skipped: CountUpTo;
  /** Route rejects (the run counts them). */
  route(rejects: TransformOutput['rejects']): void;
  /** The error that must stop the run, once there is one. */
  fatal(): EtlError | undefined;
  signal?: AbortSignal;
  firstSeq: number;
  /** Records read by this run so far, updated as they are read (the report counts them after a failure too). */
  read: { count: number };
  /** Each source's columns, for the rows of rejects that carry only their text (see reject-rows.ts). */
  columns?: SourceColumns;
}

/** Records one at a time as one-record batches (sources without `batches()`). */
async function* oneByOne(records: AsyncIterable<SourceRecord>): AsyncGenerator<SourceRecord[]> {
  for await (const record of records) yield [record];
}

function countItems(stats: RunStats, items: LoadItem[]): void {
  for (const item of items) stats.items[ITEM_COUNTERS[item.kind]]++;
}

/**
 * Hand one transform output on. Returns a promise only when items went to the destination: most rows of a grouped
 * source produce none, and skipping the await saves a promise and a microtask per row.
 */
function handle(loop: ReadLoop, out: TransformOutput, closeBefore: number, seq = closeBefore - 1): Promise<void> | undefined {
  for (const item of out.items) loop.tracker.produced(item.first, item.last);
  if (out.rejects.length > 0) loop.route(out.rejects); // before closeBefore: the rows stay held until written
  loop.tracker.closeBefore(closeBefore);
  if (out.skipped) {
    const reason = out.skipReason ?? 'skipped';
    loop.stats.rows.skipped += out.skipped;
    loop.stats.skippedBy[reason] = (loop.stats.skippedBy[reason] ?? 0) + out.skipped;
    // at the skipped record itself: a checkpoint before it (an open group) must not count it, as the resume reads it again
    loop.skipped.add(seq, out.skipped, reason);
  }
  if (out.items.length > 0) {
    countItems(loop.stats, out.items);
    return loop.destination.write(out.items).then(() => throwIfFatal(loop));
  }
  throwIfFatal(loop);
  return undefined;
}

function throwIfFatal(loop: ReadLoop): void {
  const fatal = loop.fatal();
  if (fatal) throw fatal;
}

/**
 * Read the source to its end (or to an interrupt), then flush the transform. Returns false when interrupted: an
 * open group then stays unsent, and the checkpoint stops before it.
 */
export async function readAll(loop: ReadLoop): Promise<boolean> {
  const { reader, transformer, tracker, stats, signal, firstSeq, read, columns } = loop;
  let lastSeq = firstSeq - 1;
  let yieldAt = performance.now() + YIELD_AFTER_MS;
  // Records arrive in the arrays the source parses them in (a chunk of a file), when the source offers them.
  const batches = reader.batches ? reader.batches() : oneByOne(reader.records());
  for await (const batch of batches) {
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      read.count++;
      stats.rows.read = firstSeq + read.count;
      tracker.read(record.pos);
      columns?.note(record);
      lastSeq = record.pos.seq;
      const out = transformer.push(record);
      const pending = handle(loop, out, transformer.held() ?? record.pos.seq + 1, record.pos.seq);
      if (pending) await pending;
      const backlog = loop.rejects.backlog();
      if (backlog) await backlog;
      // A chunk of the source is hundreds of records parsed at once, and awaiting already-settled promises never
      // leaves the microtask queue: let the event loop run now and then, so responses, acks, rate-limiter timers
      // and signals are handled within a few milliseconds rather than once per chunk. By time, not by count: while
      // V8 has not optimized the code yet (the first second of a run), a record costs several times what it costs
      // later, and a count of records would leave responses waiting for 10–20 ms.
      if ((read.count & (YIELD_CHECK_EVERY - 1)) === 0 && performance.now() >= yieldAt) {
        await nextLoopTurn();
        yieldAt = performance.now() + YIELD_AFTER_MS;
      }
      if (signal?.aborted) return false;
    }
  }
  if (signal?.aborted) return false;
  await handle(loop, transformer.flush(), lastSeq + 1);
  return true;
}
