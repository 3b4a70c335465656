import { describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../../src/config/pipeline.js';
import type { Reject } from '../../../src/core/record.js';
import { rowFiller, SourceColumns } from '../../../src/runner/reject-rows.js';

/** A load-stage reject carries the row's text only (the event loader keeps `raw`): its row is parsed back. */
const loadReject = (source: string, raw: string): Reject => ({ stage: 'load', code: 'KLAVIYO_REJECTED', message: 'm', source, seq: 3, raw });

describe('rows of rejects that carry only their text', () => {
  it('csv: parsed with the source delimiter and quotes into the columns the run saw for that file', () => {
    const columns = new SourceColumns();
    columns.note({ pos: { seq: 0, source: 'a.csv' }, row: { Email: 'x', Name: 'y', Total: '1' } });
    columns.note({ pos: { seq: 1, source: 'b.csv' }, row: { Other: 'z' } });
    const fill = rowFiller({ type: 'csv', delimiter: ';', quote: '"' } as unknown as PipelineConfig['source'], columns);
    const rejects = [loadReject('a.csv', 'ann@example.com;"Ann; ""Jr""";12,50'), loadReject('b.csv', 'q')];
    fill(rejects);
    expect(rejects[0]!.row).toEqual({ Email: 'ann@example.com', Name: 'Ann; "Jr"', Total: '12,50' });
    expect(rejects[1]!.row).toEqual({ Other: 'q' });
  });

  it('ndjson: the line is the row; a row already there and extract rejects are left alone', () => {
    const fill = rowFiller({ type: 'ndjson' } as unknown as PipelineConfig['source'], new SourceColumns());
    const kept = { ...loadReject('e.ndjson', '{"a":2}'), row: { a: 1 } };
    const parseError: Reject = { stage: 'extract', code: 'NDJSON_PARSE_ERROR', message: 'm', source: 'e.ndjson', seq: 1, raw: '{oops' };
    const rejects = [loadReject('e.ndjson', '{"email":"a@b.co","n":3}'), kept, parseError];
    fill(rejects);
    expect(rejects[0]!.row).toEqual({ email: 'a@b.co', n: 3 });
    expect(kept.row).toEqual({ a: 1 });
    expect(parseError.row).toBeUndefined();
  });
});
