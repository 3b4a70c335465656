/**
 * Export file formats: how a chunk of output rows becomes text. CSV writes every value as a cell (objects as JSON);
 * NDJSON writes one JSON object per row, keeping JSON types (numbers, booleans, nested objects, `null`).
 */
import { stringify } from 'csv-stringify/sync';
import type { ExportRow } from '../core/record.js';

/** The file formats an export writes. */
export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Turns output rows into the text of one chunk. */
export interface RowEncoder {
  /** The text before the first row (the CSV header), or undefined. */
  readonly header: string | undefined;
  /** The MIME type of the published file (before compression). */
  readonly contentType: string;
  /** The text of `rows`, each row ending with a newline. */
  encode(rows: readonly ExportRow[]): string;
}

/** The encoder of `format` over `columns` (in output order). `delimiter` is CSV's field delimiter. */
export function rowEncoder(format: ExportFormat, columns: readonly string[], delimiter = ','): RowEncoder {
  if (format === 'ndjson') {
    return {
      header: undefined,
      contentType: 'application/x-ndjson',
      encode: (rows) => rows.map((r) => JSON.stringify(jsonRow(r, columns)) + '\n').join(''),
    };
  }
  return {
    header: stringify([[...columns]], { delimiter }),
    contentType: 'text/csv',
    encode: (rows) => stringify(
      rows.map((r) => columns.map((c) => cell(r[c]))),
      { delimiter },
    ),
  };
}

/** The row as a JSON object with the columns in order; a missing value is `null`. */
function jsonRow(row: ExportRow, columns: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of columns) {
    const v = row[c];
    out[c] = v === undefined ? null : typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}

/** A CSV cell: strings as they are, booleans `true`/`false`, dates ISO, objects/arrays JSON, null/undefined empty. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
