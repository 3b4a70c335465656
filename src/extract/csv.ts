/**
 * CSV source: local files (glob/list, `.gz`), streamed through csv-parse.
 *
 * How positions are computed: csv-parse is driven chunk by chunk through its parser engine (`Parser#api`, the
 * same engine its stream wraps, without the object-mode stream in between) and reports, for every record, the
 * byte offset where it ends (`info.bytes`). The reader keeps the bytes of the record being parsed, so each
 * record gets its exact start offset, its start line (line feeds counted by this module: csv-parse's own line
 * counter counts a CRLF inside a quoted field twice) and its raw text. Lines are counted by `\n` (LF and CRLF
 * files; classic-Mac CR-only files are parsed but all their records report line 1 + blank lines).
 *
 * Record errors never stop the run:
 * - ragged row (field count differs from the header) → `CSV_RAGGED_ROW` with the fields it had
 *   (unless `relaxColumnCount`; extra fields are then dropped, missing ones absent);
 * - a malformed quote (`CSV_PARSE_ERROR`) → one rejected record made of the physical line where the record
 *   starts; parsing resumes with a fresh parser on the next line;
 * - an unclosed quote (`CSV_UNCLOSED_QUOTE`): csv-parse can only notice it at the end of the file, everything
 *   after the opening quote being one field; it is reported as ONE rejected record spanning from the line of
 *   that record to the end of the file (raw text truncated to 64 KiB), and the reader goes on with the next file.
 */
import { Parser } from 'csv-parse';
import { CsvSource, type CsvSourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import { createFileReader, isGzipName, resolveFiles, type FormatParser, type ParseInput, type ResumeAt } from './files.js';
import type { ExtractorDefinition } from './types.js';

/** Format options of the CSV parser (the subset of the `csv` / `s3` source config it needs). */
export interface CsvParseOptions {
  /** Field delimiter. @default "," */
  delimiter?: string;
  /** Quote character. @default '"' */
  quote?: string;
  /** Escape character inside quoted fields. @default the quote character */
  escape?: string;
  /** `true`: the first record names the columns; or the column names. @default true */
  header?: true | readonly string[];
  /** @default utf8 (a UTF-8 BOM is always removed) */
  encoding?: 'utf8' | 'utf-8' | 'latin1';
  /** Accept rows whose field count differs from the header. @default false */
  relaxColumnCount?: boolean;
  /** Attach the raw text to every record (`all`) or only to records with an error (`errors`). @default all */
  raw?: 'all' | 'errors';
}

/** Longest raw text kept on a rejected record. */
export const MAX_RAW_CHARS = 65_536;

interface CsvInfo {
  bytes: number;
}
interface CsvApi {
  parse(buf: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void): Error | undefined;
  info: CsvInfo;
}
interface CsvParseError extends Error {
  code?: string;
}

const noop = (): void => {};

/**
 * Incremental CSV parser with exact positions. Feed it decompressed chunks with {@link CsvChunkParser.push},
 * then {@link CsvChunkParser.end}; each call returns the records completed so far (a fresh array).
 */
export class CsvChunkParser {
  readonly #source: string;
  readonly #encoding: BufferEncoding;
  readonly #relax: boolean;
  readonly #rawAll: boolean;
  readonly #parserOptions: Record<string, unknown>;
  #columns: readonly string[] | undefined;
  #makeRow: ((fields: string[]) => Record<string, unknown>) | undefined;
  #api: CsvApi;
  #info: CsvInfo;
  /** Absolute offset of byte 0 of the current csv-parse engine. */
  #base: number;
  /** Retained bytes: every byte from the start of the record being parsed up to `#chunksEnd`. */
  #chunks: Buffer[] = [];
  #chunksStart: number;
  #chunksEnd: number;
  /** Where the next record starts (blank lines included) and the line there. */
  #recStart: number;
  #line: number;
  #seq: number;
  #resume: ResumeAt | undefined;
  #discarding = false;
  #out: SourceRecord[] = [];

  constructor(
    options: CsvParseOptions & {
      source: string;
      firstSeq?: number;
      resume?: ResumeAt;
      startOffset?: number;
      startLine?: number;
    },
  ) {
    this.#source = options.source;
    this.#encoding = options.encoding === 'latin1' ? 'latin1' : 'utf8';
    this.#relax = options.relaxColumnCount ?? false;
    this.#rawAll = (options.raw ?? 'all') === 'all';
    this.#columns = options.header === undefined || options.header === true ? undefined : options.header;
    const quote = options.quote ?? '"';
    this.#parserOptions = {
      delimiter: options.delimiter ?? ',',
      quote,
      escape: options.escape ?? quote,
      encoding: this.#encoding,
      bom: true,
      columns: false,
      relax_column_count: true,
      skip_empty_lines: true,
    };
    const start = options.startOffset ?? 0;
    this.#base = start;
    this.#chunksStart = start;
    this.#chunksEnd = start;
    this.#recStart = start;
    this.#line = options.startLine ?? 1;
    this.#seq = options.firstSeq ?? 0;
    this.#resume = options.resume;
    if (this.#resume) this.#seq = this.#resume.seq + 1;
    [this.#api, this.#info] = this.#newEngine();
  }

  /** Column names (after the header record, or as given). */
  get columns(): readonly string[] | undefined {
    return this.#columns;
  }

  /** seq the next record will get. */
  get nextSeq(): number {
    return this.#seq;
  }

  push(chunk: Buffer): SourceRecord[] {
    this.#out = [];
    if (chunk.length === 0) return this.#out;
    this.#chunks.push(chunk);
    this.#chunksEnd += chunk.length;
    if (this.#discarding) {
      const lf = chunk.indexOf(10);
      if (lf === -1) {
        this.#dropBefore(this.#chunksEnd);
        return this.#out;
      }
      this.#discarding = false;
      this.#restartAt(this.#chunksEnd - chunk.length + lf + 1, 1);
      this.#run(chunk.subarray(lf + 1), false);
      return this.#out;
    }
    this.#run(chunk, false);
    return this.#out;
  }

  end(): SourceRecord[] {
    this.#out = [];
    if (!this.#discarding) this.#run(undefined, true);
    return this.#out;
  }

  #newEngine(): [CsvApi, CsvInfo] {
    const parser = new Parser(this.#parserOptions as ConstructorParameters<typeof Parser>[0]) as unknown as { api?: CsvApi };
    const api = parser.api;
    if (!api || typeof api.parse !== 'function' || !api.info) {
      throw new EtlError('INTERNAL', 'Unsupported csv-parse version: the parser engine (Parser#api) is not available');
    }
    return [api, api.info];
  }

  #run(buf: Buffer | undefined, end: boolean): void {
    let err = this.#api.parse(buf !== undefined && buf.length === 0 ? undefined : buf, end, this.#onRecord, noop);
    while (err !== undefined) {
      const resync = this.#reject(err as CsvParseError, end);
      if (resync < 0) return;
      const rest = this.#slice(resync, this.#chunksEnd);
      err = this.#api.parse(rest.length === 0 ? undefined : rest, end, this.#onRecord, noop);
    }
  }

  /** Start a fresh csv-parse engine at absolute offset `at`, `linesBefore` lines after the current record start. */
  #restartAt(at: number, linesBefore: number): void {
    this.#recStart = at;
    this.#line += linesBefore;
    this.#base = at;
    this.#dropBefore(at);
    [this.#api, this.#info] = this.#newEngine();
  }

  #dropBefore(abs: number): void {
    const chunks = this.#chunks;
    while (chunks.length > 0 && this.#chunksStart + chunks[0]!.length <= abs) {
      this.#chunksStart += chunks.shift()!.length;
    }
  }

  /** Bytes [from, to) of the retained data (a view when inside one chunk). */
  #slice(from: number, to: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && to - this.#chunksStart <= first.length) {
      return first.subarray(from - this.#chunksStart, to - this.#chunksStart);
    }
    const parts: Buffer[] = [];
    let pos = this.#chunksStart;
    for (const c of this.#chunks) {
      const cEnd = pos + c.length;
      if (cEnd > from && pos < to) parts.push(c.subarray(Math.max(0, from - pos), Math.min(c.length, to - pos)));
      pos = cEnd;
      if (pos >= to) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Skip leading blank lines (and a BOM at offset 0) of the span starting at `start` in `buf` (local offsets). */
  #skipBlank(buf: Buffer, s: number, e: number, absStart: number): number {
    if (absStart === 0 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
    while (s < e) {
      const c = buf[s];
      if (c === 10) this.#line++;
      else if (c !== 13) break;
      s++;
    }
    return s;
  }

  readonly #onRecord = (fields: string[]): void => {
    const end = this.#base + this.#info.bytes;
    const recStart = this.#recStart;
    let buf = this.#chunks[0];
    let from = recStart - this.#chunksStart;
    let e = end - this.#chunksStart;
    if (buf === undefined || e > buf.length) {
      buf = this.#slice(recStart, end);
      from = 0;
      e = buf.length;
    }
    const s = this.#skipBlank(buf, from, e, recStart);
    const line = this.#line;
    const offset = recStart + (s - from);
    this.#line = line + countLf(buf, s, e);
    this.#recStart = end;
    this.#dropBefore(end);

    const columns = this.#columns;
    if (columns === undefined) {
      this.#columns = fields;
      return;
    }
    const resume = this.#resume;
    if (resume !== undefined) {
      if (resume.offset !== undefined ? offset <= resume.offset : line <= (resume.line ?? 0)) return;
      this.#resume = undefined;
    }
    const n = columns.length;
    const m = fields.length;
    let row: Record<string, unknown>;
    if (m === n) {
      row = (this.#makeRow ??= rowFactory(columns))(fields);
    } else {
      row = {};
      const k = m < n ? m : n;
      for (let i = 0; i < k; i++) row[columns[i]!] = fields[i];
    }
    const record: SourceRecord = {
      pos: { seq: this.#seq++, source: this.#source, line, offset },
      row,
    };
    const ragged = m !== n && !this.#relax;
    if (this.#rawAll || ragged) record.raw = rawText(buf, s, e, this.#encoding);
    if (ragged) {
      record.error = { code: 'CSV_RAGGED_ROW', message: `Expected ${n} fields (header), got ${m}` };
    }
    this.#out.push(record);
  };

  /** Emit the record that failed to parse; returns the offset to resume parsing at, or -1. */
  #reject(err: CsvParseError, end: boolean): number {
    const recStart = this.#recStart;
    const buf = this.#slice(recStart, this.#chunksEnd);
    const s = this.#skipBlank(buf, 0, buf.length, recStart);
    const line = this.#line;
    const offset = recStart + s;
    const unclosed = err.code === 'CSV_QUOTE_NOT_CLOSED';
    const lf = unclosed ? -1 : buf.indexOf(10, s);
    const e = lf === -1 ? buf.length : lf + 1;
    const message = (err.message || String(err)).replace(/ (at|on) line \d+/g, '');
    if (this.#columns === undefined) {
      throw new EtlError('SOURCE_READ', `Cannot parse the CSV header of ${this.#source} (line ${line}): ${message}`, {
        cause: err,
        context: { file: this.#source, line },
      });
    }
    const resume = this.#resume;
    const skipped = resume !== undefined && (resume.offset !== undefined ? offset <= resume.offset : line <= (resume.line ?? 0));
    if (!skipped) {
      if (resume !== undefined) this.#resume = undefined;
      let raw = rawText(buf, s, e, this.#encoding);
      if (raw.length > MAX_RAW_CHARS) raw = raw.slice(0, MAX_RAW_CHARS) + '…';
      const lines = countLf(buf, s, e) + (lf === -1 && e > s && buf[e - 1] !== 10 ? 1 : 0);
      this.#out.push({
        pos: { seq: this.#seq++, source: this.#source, line, offset },
        row: {},
        raw,
        error: unclosed
          ? {
              code: 'CSV_UNCLOSED_QUOTE',
              message: `Unclosed quote: the record starting at line ${line} runs to the end of the file (${lines} line${lines === 1 ? '' : 's'}); the rest of the file cannot be parsed`,
            }
          : { code: 'CSV_PARSE_ERROR', message: `${message} (record starting at line ${line}; the line is skipped)` },
      });
    }
    if (unclosed) {
      this.#line = line;
      this.#dropBefore(this.#chunksEnd);
      this.#recStart = this.#chunksEnd;
      this.#discarding = true;
      return -1;
    }
    if (lf === -1) {
      // The bad line goes on beyond the bytes read so far: drop bytes until the next line feed.
      this.#line = line;
      this.#recStart = this.#chunksEnd;
      this.#dropBefore(this.#chunksEnd);
      if (end) return -1;
      this.#discarding = true;
      return -1;
    }
    this.#line = line;
    this.#restartAt(recStart + e, 1);
    return recStart + e;
  }
}

/**
 * A function building a row object from the fields, compiled once per header: every row then has the same shape
 * (one hidden class), which makes building rows 2–3× faster than assigning keys one by one. Keys are emitted as
 * JSON string literals (`__proto__` as a computed key, so it stays an own property).
 */
function rowFactory(columns: readonly string[]): (fields: string[]) => Record<string, unknown> {
  const props = columns.map((c, i) => `${c === '__proto__' ? `[${JSON.stringify(c)}]` : JSON.stringify(c)}: f[${i}]`);
  return new Function('f', `return {${props.join(', ')}};`) as (fields: string[]) => Record<string, unknown>;
}

function countLf(buf: Buffer, s: number, e: number): number {
  let n = 0;
  let i = buf.indexOf(10, s);
  while (i !== -1 && i < e) {
    n++;
    i = buf.indexOf(10, i + 1);
  }
  return n;
}

/** The record text without its trailing record delimiter. */
function rawText(buf: Buffer, s: number, e: number, encoding: BufferEncoding): string {
  if (e > s && buf[e - 1] === 10) e--;
  if (e > s && buf[e - 1] === 13) e--;
  return buf.toString(encoding, s, e);
}

/**
 * Parse a stream of decompressed CSV bytes into record batches (one batch per chunk). Used by the csv source
 * for each file and reusable for any byte stream (S3 objects: `decodedChunks(body, {gzip})`).
 * With `startOffset > 0` and `header: true`, `readHeader` must give the bytes from offset 0 (the header is read
 * from there, then parsing continues at `startOffset`).
 */
export async function* parseCsvChunks(
  input: ParseInput & { readHeader?: () => AsyncIterable<Buffer> },
  options: CsvParseOptions,
): AsyncGenerator<SourceRecord[]> {
  let header = options.header;
  if ((input.startOffset ?? 0) > 0 && (header === undefined || header === true)) {
    if (!input.readHeader) throw new EtlError('INTERNAL', 'parseCsvChunks: starting mid-file needs readHeader');
    header = await readCsvHeader(input.readHeader(), options, input.source);
  }
  const parser = new CsvChunkParser({
    ...options,
    header,
    source: input.source,
    firstSeq: input.firstSeq,
    resume: input.resume,
    startOffset: input.startOffset,
    startLine: input.startLine,
  });
  for await (const chunk of input.chunks) {
    const batch = parser.push(chunk);
    if (batch.length > 0) yield batch;
  }
  const last = parser.end();
  if (last.length > 0) yield last;
}

/** Read just the header record of a CSV byte stream. */
export async function readCsvHeader(chunks: AsyncIterable<Buffer>, options: CsvParseOptions, source: string): Promise<readonly string[]> {
  const parser = new CsvChunkParser({ ...options, header: true, source, raw: 'errors' });
  for await (const chunk of chunks) {
    parser.push(chunk);
    if (parser.columns) return parser.columns;
  }
  parser.end();
  if (parser.columns) return parser.columns;
  throw new EtlError('SOURCE_READ', `No header record in ${source}`, { context: { file: source } });
}

/** Parser options from a `csv` (or `s3`) source config. */
export function csvParseOptions(config: CsvParseOptions): CsvParseOptions {
  return {
    delimiter: config.delimiter,
    quote: config.quote,
    escape: config.escape,
    header: config.header,
    encoding: config.encoding,
    relaxColumnCount: config.relaxColumnCount,
  };
}

/** A {@link FormatParser} for CSV with the given options (the S3 source parses object bodies with it). */
export function csvParser(config: CsvParseOptions): FormatParser {
  const options = csvParseOptions(config);
  return (input) => parseCsvChunks({ ...input, readHeader: input.reopen }, options);
}

/** The `csv` source component. */
export const csvSource: ExtractorDefinition<CsvSourceConfig> = {
  kind: 'csv',
  summary: 'Local CSV files (glob or list, .gz decompressed), streamed with exact line/byte positions.',
  config: CsvSource,
  create(config, ctx) {
    // progress(): bytes parsed (a resumed file counts from its start offset) out of the files' total size. The total
    // is known only for uncompressed files (a .gz file's decompressed size is not).
    let bytes = 0;
    let totalBytes: number | undefined;
    resolveFiles(config.path, ctx.baseDir).then(
      (files) => {
        if (!files.some((f) => isGzipName(f.path))) totalBytes = files.reduce((sum, f) => sum + f.size, 0);
      },
      () => undefined, // records() reports the error
    );
    const parse = csvParser(config);
    const counting: FormatParser = (input) => {
      bytes += input.startOffset ?? 0;
      async function* counted(): AsyncIterable<Buffer> {
        for await (const chunk of input.chunks) {
          bytes += chunk.length;
          yield chunk;
        }
      }
      return parse({ ...input, chunks: counted() });
    };
    const reader = createFileReader({ patterns: config.path, ctx, component: 'source.csv', parse: counting });
    reader.progress = () => (totalBytes === undefined ? { bytes } : { bytes, totalBytes });
    return reader;
  },
};
