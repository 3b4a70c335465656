/**
 * Limits every source row must keep before it goes further: one hostile value must not stop a run.
 *
 * A JSON value nested thousands of levels deep parses (JSON.parse does not recurse), but everything after it that walks
 * values recursively overflows the stack: the loader's payload serializer, `JSON.stringify` of the rejects file.
 * The run then fails with "Maximum call stack size exceeded" on the same row at every resume. So the rows of every
 * source pass {@link guardRecord} (through {@link guardReader}, applied by the source registry): a row nested deeper
 * than {@link MAX_ROW_DEPTH} is rejected `VALUE_TOO_DEEP`, one whose values take more than {@link MAX_ROW_CHARS}
 * characters `RECORD_TOO_LARGE` (neither could ever be sent: Klaviyo nests event properties 10 levels at most and takes
 * 5 MB per request), with its raw text and without the row, and the run goes on. The walk is iterative.
 */
import type { SourceRecord } from '../core/record.js';
import type { SourceReader } from './types.js';

/** Nesting levels a row may have (the row object is level 1, a column's object value level 2…). */
export const MAX_ROW_DEPTH = 32;
/** Characters a row's strings (keys and values) may add up to; numbers and the like count 8. */
export const MAX_ROW_CHARS = 8 * 1024 * 1024;
/** Longest raw text kept on a record rejected here. */
const MAX_RAW_CHARS = 65_536;

/** Why a row breaks a limit, or undefined. */
export function rowLimitError(row: Record<string, unknown>): { code: 'VALUE_TOO_DEEP' | 'RECORD_TOO_LARGE'; message: string } | undefined {
  let size = 0;
  let nested = false;
  for (const key in row) {
    const v = row[key];
    size += key.length + (typeof v === 'string' ? v.length : 8);
    if (v !== null && typeof v === 'object') nested = true;
  }
  if (nested) return walk(row);
  if (size > MAX_ROW_CHARS) return tooLarge(size);
  return undefined;
}

function tooLarge(size: number): { code: 'RECORD_TOO_LARGE'; message: string } {
  return { code: 'RECORD_TOO_LARGE', message: `the row's values take more than ${MAX_ROW_CHARS} characters (${size} counted)` };
}

/** Depth and size of a row with nested values, without recursion. */
function walk(row: object): { code: 'VALUE_TOO_DEEP' | 'RECORD_TOO_LARGE'; message: string } | undefined {
  const stack: [unknown, number][] = [[row, 1]];
  let size = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > MAX_ROW_DEPTH) {
      return { code: 'VALUE_TOO_DEEP', message: `a value is nested more than ${MAX_ROW_DEPTH} levels deep (Klaviyo accepts 10 levels of event properties)` };
    }
    if (Array.isArray(value)) {
      for (const v of value) {
        size += typeof v === 'string' ? v.length : 8;
        if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
      }
    } else if (!(value instanceof Date) && !Buffer.isBuffer(value)) {
      for (const key in value as Record<string, unknown>) {
        const v = (value as Record<string, unknown>)[key];
        size += key.length + (typeof v === 'string' ? v.length : 8);
        if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
      }
    }
    if (size > MAX_ROW_CHARS) return tooLarge(size);
  }
  return undefined;
}

/** The record, or a rejected record (`row: {}`, raw text kept) when its row breaks a limit. */
export function guardRecord(record: SourceRecord): SourceRecord {
  if (record.error !== undefined) return record;
  const error = rowLimitError(record.row);
  if (!error) return record;
  const raw = record.raw === undefined ? undefined : record.raw.length > MAX_RAW_CHARS ? record.raw.slice(0, MAX_RAW_CHARS) + '…' : record.raw;
  return { pos: record.pos, row: {}, ...(raw !== undefined ? { raw } : {}), error };
}

function guardBatch(batch: SourceRecord[]): SourceRecord[] {
  for (let i = 0; i < batch.length; i++) batch[i] = guardRecord(batch[i]!);
  return batch;
}

/** Make every record a reader yields pass {@link guardRecord} (its `records()` and `batches()`; the reader is changed in place). */
export function guardReader<R extends SourceReader>(reader: R): R {
  const records = reader.records.bind(reader);
  reader.records = async function* guardedRecords(): AsyncGenerator<SourceRecord> {
    for await (const record of records()) yield guardRecord(record);
  };
  if (reader.batches) {
    const batches = reader.batches.bind(reader);
    reader.batches = async function* guardedBatches(): AsyncGenerator<SourceRecord[]> {
      for await (const batch of batches()) yield guardBatch(batch);
    };
  }
  return reader;
}
