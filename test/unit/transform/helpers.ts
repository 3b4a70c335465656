import type { ItemSpan, SourceRecord, TransformOutput } from '../../../src/core/record.js';
import type { Transformer } from '../../../src/transform/types.js';

/** A CSV-like record: seq from 0, line = seq + 2 (header on line 1). */
export function rec(seq: number, row: Record<string, unknown>, extra: Partial<SourceRecord> = {}): SourceRecord {
  return { pos: { seq, source: 'in.csv', line: seq + 2, offset: seq * 100 }, row, ...extra };
}

/** An item whose payload the tests read by path, whatever its kind. */
export type JsonItem = ItemSpan & { payload: Record<string, unknown> };

/** Everything a transform gave back for a stream of records. */
export interface AllOutput {
  items: JsonItem[];
  rejects: Required<TransformOutput>['rejects'];
  skipped: number;
}

/** Push every row, then flush; concatenate outputs. */
export function runAll(t: Transformer, records: SourceRecord[]): AllOutput {
  const out: AllOutput = { items: [], rejects: [], skipped: 0 };
  const add = (o: TransformOutput) => {
    out.items.push(...(o.items as JsonItem[]));
    out.rejects.push(...o.rejects);
    out.skipped += o.skipped ?? 0;
  };
  for (const r of records) add(t.push(r));
  add(t.flush());
  return out;
}
