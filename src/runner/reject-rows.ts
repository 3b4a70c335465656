/**
 * The original row of every reject, so a rejects file holds the row's columns (a person fixes them in a spreadsheet)
 * and `--from-rejects` can send it again. A loader keeps only the source text of a row it sends (one string costs
 * the garbage collector far less than a row object), so a load-stage reject may arrive with `raw` and no `row`:
 * the row is parsed again from that text, with the columns the run saw for that source. Rejects are few, so the
 * parse (csv-parse, once per reject) costs nothing on the hot path; the read loop only notes each source's columns
 * when the source changes.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import type { PipelineConfig } from '../config/pipeline.js';
import type { Reject, SourceRecord } from '../core/record.js';

/** The columns of each source's rows, noted from its first parsed record. */
export class SourceColumns {
  readonly #bySource = new Map<string, readonly string[]>();
  #last: string | undefined;

  /** Note a record's columns when it is the first good record of its source (a string compare per record). */
  note(record: SourceRecord): void {
    const source = record.pos.source;
    if (source === this.#last || record.error !== undefined) return;
    this.#last = source;
    if (!this.#bySource.has(source)) this.#bySource.set(source, Object.keys(record.row));
  }

  get(source: string): readonly string[] | undefined {
    return this.#bySource.get(source);
  }
}

/** How the source's text is parsed back into a row: CSV with its delimiter and quotes, NDJSON, or not at all. */
function parserOf(source: PipelineConfig['source']): ((raw: string, columns: readonly string[] | undefined) => Record<string, unknown> | undefined) | undefined {
  const config = source as { type: string; format?: string; delimiter?: string; quote?: string; escape?: string; header?: true | string[] };
  const format = config.type === 's3' ? (config.format ?? 'csv') : config.type;
  if (format === 'ndjson') {
    return (raw) => {
      const value = JSON.parse(raw) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    };
  }
  if (format !== 'csv') return undefined;
  const delimiter = config.delimiter === 'tab' ? '\t' : (config.delimiter ?? ',');
  return (raw, seen) => {
    const columns = seen ?? (Array.isArray(config.header) ? config.header : undefined);
    if (columns === undefined) return undefined;
    const fields = (parseCsv(raw, { delimiter, quote: config.quote ?? '"', escape: config.escape ?? config.quote ?? '"', relax_column_count: true, relax_quotes: true }) as string[][])[0];
    if (fields === undefined) return undefined;
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => (row[c] = fields[i] ?? ''));
    return row;
  };
}

/** Fills in `row` of rejects that carry only their source text. */
export function rowFiller(source: PipelineConfig['source'], columns: SourceColumns): (rejects: Reject[]) => void {
  const parse = parserOf(source);
  return (rejects) => {
    if (parse === undefined) return;
    for (const r of rejects) {
      if (r.row !== undefined || r.raw === undefined || r.stage === 'extract') continue;
      try {
        const row = parse(r.raw, columns.get(r.source));
        if (row !== undefined) r.row = row;
      } catch {
        // the text stays in `raw`: the reject is written with it
      }
    }
  };
}
