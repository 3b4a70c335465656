/**
 * CSV source: local files (glob/list, `.gz`), parsed by our own incremental CSV parser ({@link CsvChunkParser}).
 *
 * How records are found: the parser works on the bytes of each chunk. It looks for the next record delimiter with
 * `Buffer#indexOf` (LF; a CR just before it is part of the delimiter) and for the next quote character. A line without
 * quote character is one record: it is decoded once (its raw text) and split by the delimiter with `String#split`.
 * A line with a quote character goes through the state machine of csv-engine.ts, a physical line at a time, since a
 * quoted field may hold line breaks. Only the unfinished last line of a chunk is kept for the next one (a line break
 * is never inside a multi-byte character, so a chunk may end anywhere). Every record gets its exact start offset
 * (byte offset in the decompressed file, blank lines and a UTF-8 BOM at offset 0 skipped), its start line (line
 * breaks counted by this module; a CRLF inside a quoted field is one line) and its raw text (without its line break).
 * The record delimiter is found as csv-parse does, from the first line break outside quotes: LF for LF and CRLF files
 * (both may then be mixed), CR for classic-Mac files (lines are then counted by CR). Blank lines are skipped.
 *
 * Record errors never stop the run:
 * - ragged row (field count differs from the header) → `CSV_RAGGED_ROW` with the fields it had
 *   (unless `relaxColumnCount`; extra fields are then dropped, missing ones absent);
 * - a malformed quote (`CSV_PARSE_ERROR`: a quote inside an unquoted field, or a closing quote followed by something
 *   else than a delimiter or the end of the record) → one rejected record made of the physical line where the
 *   record starts; parsing resumes on the next line;
 * - an unclosed quote (`CSV_UNCLOSED_QUOTE`): everything after the opening quote is one field, so it can only be
 *   noticed at the end of the file; it is reported as ONE rejected record spanning from the line of that record to
 *   the end of the file (raw text truncated to 64 KiB), and the reader goes on with the next file.
 * An error in the header record fails the file (`SOURCE_READ`).
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { csvDelimiter, CsvSource, type CsvSourceConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import { bomEncoding, peek, readEncoding, toUtf8, type ReadEncoding } from './encoding.js';
import { CsvSplitter, QuotedRecord, RECORD_DONE, RECORD_MORE } from './csv-engine.js';
import { createFileReader, decodedChunks, isGzipName, resolveFiles, type FileEntry, type FormatParser, type ParseInput, type ResumeAt } from './files.js';
import type { InspectInput, SourceSample } from './types.js';
import type { SourceDefinition } from '../components/types.js';

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
  /**
   * The file's encoding: `utf8` and `latin1` are read natively; any other encoding iconv-lite knows
   * (`windows-1252`, `utf-16le`, `shift_jis`, …) is transcoded to UTF-8 first ({@link parseCsvChunks}). A BOM at the
   * start of a file overrides it. @default utf8
   */
  encoding?: string;
  /** Accept rows whose field count differs from the header. @default false */
  relaxColumnCount?: boolean;
  /** Attach the raw text to every record (`all`) or only to records with an error (`errors`). @default all */
  raw?: 'all' | 'errors';
}

/** Longest raw text kept on a rejected record. */
export const MAX_RAW_CHARS = 65_536;

const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);
/** Outcomes of `#quotedLine`. */
const QUOTED_NEXT = 0;
const QUOTED_REJECTED = 1;
const QUOTED_REPARSE = 2;

/**
 * The header record may take this many bytes at most (and so may the search for the first record delimiter outside
 * quotes): past it, the header cannot be parsed (a stray quote makes the rest of the file one field) and the file
 * fails at once, rather than after holding the whole file in memory.
 */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** What the parser learns from the start of a file, and a resume in the middle of it needs (checkpointed). */
export interface CsvLearned {
  /** The record delimiter. */
  newline: 'lf' | 'cr';
  /** The columns read from the header record (`header: true`). */
  columns?: string[];
}

function isCsvLearned(value: unknown): value is CsvLearned {
  const v = value as CsvLearned | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    (v.newline === 'lf' || v.newline === 'cr') &&
    (v.columns === undefined || (Array.isArray(v.columns) && v.columns.every((c) => typeof c === 'string')))
  );
}

/** A UTF-8 prefix this long decodes to more than {@link MAX_RAW_CHARS} characters (4 bytes at most per character). */
const MAX_RAW_BYTES = 4 * MAX_RAW_CHARS + 16;

/**
 * Incremental CSV parser with exact positions. Feed it decompressed chunks with {@link CsvChunkParser.push},
 * then {@link CsvChunkParser.end}; each call returns the records completed so far (a fresh array).
 */
export class CsvChunkParser {
  readonly #source: string;
  readonly #encoding: 'utf8' | 'latin1';
  /** UTF-8 input: bytes that are not UTF-8 make a record an INVALID_ENCODING reject (never a silent U+FFFD). */
  readonly #checkUtf8: boolean;
  /** The bytes being scanned are not all UTF-8: check each record's (set per scan). */
  #suspect = false;
  /** The record being read (several lines) has bytes that are not UTF-8. */
  #recBad = false;
  readonly #relax: boolean;
  readonly #rawAll: boolean;
  readonly #splitter: CsvSplitter;
  /** The quote character as bytes in the file's encoding, and its first byte. */
  readonly #quoteBytes: Buffer;
  readonly #quoteByte: number;
  #columns: readonly string[] | undefined;
  #makeRow: ((fields: string[]) => Record<string, unknown>) | undefined;
  /** Record delimiter byte: LF (LF and CRLF files) or CR (classic-Mac files); 0 until the first line break. */
  #nl = 0;
  /** Line break detection: the bytes seen so far end inside quotes / with a CR outside quotes / with that many bytes of a quote. */
  #detectInQuotes = false;
  #detectCr = false;
  #detectMatched = 0;
  /** Detection: the last byte seen was the escape character inside quotes; bytes looked at; the first line break byte. */
  #detectEscaped = false;
  #detectBytes = 0;
  #firstBreak = 0;
  /** The escape character's byte when it is one byte and not the quote character (detection skips the byte after it). */
  readonly #escapeByte: number;
  /** Bytes in `#partial`. */
  #partialBytes = 0;
  /** Bytes received and not yet consumed (the start of an unfinished line), from absolute offset `#offset`. */
  #partial: Buffer[] = [];
  #offset: number;
  /** Line at `#offset`. */
  #line: number;
  #bomPending: boolean;
  /** The record with a quoted line break being read (its lines so far: `#recBytes`). */
  #rec: QuotedRecord | undefined;
  #recBytes: Buffer[] = [];
  #recByteCount = 0;
  /** The last record with a quote character: where it starts, and the text of its first line. */
  #recOffset = 0;
  #recLine = 0;
  #recFirstLine = '';
  /** After QUOTED_REPARSE: the bytes to parse again and the offset of their start. */
  #reparseBuf: Buffer = EMPTY;
  #reparseBase = 0;
  #seq: number;
  #resume: ResumeAt | undefined;
  /** The input is over, or the rest of it is discarded (after an unclosed quote). */
  #done = false;
  #out: SourceRecord[] = [];

  constructor(
    options: CsvParseOptions & {
      source: string;
      firstSeq?: number;
      resume?: ResumeAt;
      startOffset?: number;
      startLine?: number;
      /** The record delimiter, when known (a resume: what the parser learned at the start of the file). */
      newline?: 'lf' | 'cr';
    },
  ) {
    this.#source = options.source;
    this.#encoding = options.encoding === 'latin1' ? 'latin1' : 'utf8';
    this.#checkUtf8 = this.#encoding === 'utf8';
    this.#relax = options.relaxColumnCount ?? false;
    this.#rawAll = (options.raw ?? 'all') === 'all';
    this.#columns = options.header === undefined || options.header === true ? undefined : options.header;
    const delimiter = options.delimiter ?? ',';
    const quote = options.quote ?? '"';
    const escape = options.escape ?? quote;
    if (typeof delimiter !== 'string' || delimiter.length === 0 || /[\r\n]/.test(delimiter)) {
      throw new EtlError('CONFIG_INVALID', `Expected \`delimiter\` to be a non-empty string without line breaks, got ${JSON.stringify(delimiter)}`);
    }
    for (const [name, value] of [
      ['quote', quote],
      ['escape', escape],
    ] as const) {
      if (typeof value !== 'string' || value.length !== 1 || value === '\r' || value === '\n') {
        throw new EtlError('CONFIG_INVALID', `Expected \`${name}\` to be one character (not a line break), got ${JSON.stringify(value)}`);
      }
    }
    this.#splitter = new CsvSplitter({ delimiter, quote, escape });
    this.#quoteBytes = Buffer.from(quote, this.#encoding);
    this.#quoteByte = this.#quoteBytes[0]!;
    const escapeBytes = Buffer.from(escape, this.#encoding);
    this.#escapeByte = escape !== quote && escapeBytes.length === 1 ? escapeBytes[0]! : -1;
    if (options.newline) this.#nl = options.newline === 'cr' ? CR : LF;
    const start = options.startOffset ?? 0;
    this.#offset = start;
    this.#bomPending = start === 0;
    this.#line = options.startLine ?? 1;
    this.#seq = options.firstSeq ?? 0;
    this.#resume = options.resume;
    if (this.#resume) this.#seq = this.#resume.seq + 1;
  }

  /** Column names (after the header record, or as given). */
  get columns(): readonly string[] | undefined {
    return this.#columns;
  }

  /** The record delimiter, once known. */
  get newline(): 'lf' | 'cr' | undefined {
    return this.#nl === 0 ? undefined : this.#nl === CR ? 'cr' : 'lf';
  }

  /** seq the next record will get. */
  get nextSeq(): number {
    return this.#seq;
  }

  push(chunk: Buffer): SourceRecord[] {
    const out: SourceRecord[] = (this.#out = []);
    if (chunk.length === 0 || this.#done) return out;
    if (this.#nl === 0) {
      this.#nl = this.#detect(chunk);
      if (this.#nl === 0) {
        this.#keep(chunk);
        return out;
      }
    } else if (this.#partial.length > 0 && chunk.indexOf(this.#nl) === -1) {
      // Still no end for the unfinished line: nothing to parse yet.
      this.#keep(chunk);
      return out;
    }
    const partial = this.#partial;
    this.#partial = [];
    this.#partialBytes = 0;
    this.#scan(partial.length === 0 ? chunk : Buffer.concat([...partial, chunk]), false);
    return out;
  }

  end(): SourceRecord[] {
    const out: SourceRecord[] = (this.#out = []);
    if (this.#done) return out;
    if (this.#nl === 0) this.#nl = this.#detectCr ? CR : LF;
    const partial = this.#partial;
    this.#partial = [];
    this.#partialBytes = 0;
    this.#scan(partial.length === 1 ? partial[0]! : Buffer.concat(partial), true);
    this.#done = true;
    return out;
  }

  /** Keep a chunk of an unfinished line; the header record may not grow past {@link MAX_HEADER_BYTES}. */
  #keep(chunk: Buffer): void {
    this.#partial.push(chunk);
    this.#partialBytes += chunk.length;
    if (this.#columns === undefined && this.#partialBytes + this.#recordBytes() > MAX_HEADER_BYTES) this.#headerTooLong();
  }

  #recordBytes(): number {
    return this.#rec ? this.#recByteCount : 0;
  }

  #headerTooLong(): never {
    const line = this.#rec ? this.#recLine : this.#line;
    throw new EtlError(
      'SOURCE_READ',
      `Cannot parse the CSV header of ${this.#source} (line ${line}): no end of the header record in its first ${MAX_HEADER_BYTES} bytes ` +
        '(a quote that is not closed, or an escape character that escapes it?)',
      { context: { file: this.#source, line } },
    );
  }

  /**
   * The record delimiter, from the first line break outside quotes (as csv-parse does): LF for LF and CRLF files,
   * CR when it is a CR not followed by LF; 0 while not known. A quote character of several bytes (UTF-8) is matched
   * byte by byte, also across chunks (UTF-8 is self-synchronizing: a match is always that character).
   */
  #detect(chunk: Buffer): number {
    if (this.#detectCr) return chunk[0] === LF ? LF : CR;
    const quote = this.#quoteBytes;
    const k = quote.length;
    const esc = this.#escapeByte;
    let matched = this.#detectMatched;
    let inQuotes = this.#detectInQuotes;
    let escaped = this.#detectEscaped;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.#firstBreak === 0 && (c === LF || c === CR)) this.#firstBreak = c === CR && chunk[i + 1] !== LF ? CR : LF;
      if (escaped) {
        escaped = false; // the character after the escape character inside quotes is never a quote or a delimiter
        continue;
      }
      if (inQuotes && c === esc) {
        escaped = true;
        matched = 0;
        continue;
      }
      if (c === quote[matched]) {
        if (++matched === k) {
          inQuotes = !inQuotes;
          matched = 0;
        }
        continue;
      }
      matched = c === quote[0] ? 1 : 0;
      if (!inQuotes) {
        if (c === LF) return LF;
        if (c === CR) {
          if (i + 1 < chunk.length) return chunk[i + 1] === LF ? LF : CR;
          this.#detectCr = true;
        }
      }
    }
    this.#detectMatched = matched;
    this.#detectInQuotes = inQuotes;
    this.#detectEscaped = escaped;
    this.#detectBytes += chunk.length;
    if (this.#detectBytes > MAX_HEADER_BYTES) {
      // A stray quote: every line break after it looks quoted. Not a header: take the first line break and let the
      // record parser find the error (an unclosed quote is one rejected record); a header: it cannot be parsed.
      if (this.#columns === undefined) this.#headerTooLong();
      return this.#firstBreak || LF;
    }
    return 0;
  }

  #decode(buf: Buffer, start: number, end: number): string {
    return buf.toString(this.#encoding, start, end);
  }

  /**
   * Parse the records of `buf` (the bytes from `#offset` on, starting at a line start); keep the unfinished last
   * line for the next call unless `final`.
   */
  #scan(buf: Buffer, final: boolean): void {
    const nl = this.#nl;
    const lfMode = nl === LF;
    let base = this.#offset;
    let n = buf.length;
    let p = this.#bomPending ? this.#skipBom(buf) : 0;
    let line = this.#line;
    if (this.#checkUtf8) {
      // One validation of the complete lines (simdutf: several GB/s); records are checked one by one only when it fails.
      const complete = final ? n : buf.lastIndexOf(nl) + 1;
      this.#suspect = complete > p && !isUtf8(buf.subarray(p, complete));
    }
    /** Index of the next quote byte at or after p (-2: to look up, Infinity: none in buf). */
    let quoteAt = -2;
    for (;;) {
      const rec = this.#rec;
      if (rec === undefined) {
        // Blank lines.
        while (p < n) {
          const c = buf[p];
          if (c === nl) {
            line++;
            p++;
          } else if (lfMode && c === CR && buf[p + 1] === LF) {
            line++;
            p += 2;
          } else if (lfMode && c === CR && final && p + 1 === n) {
            p++; // the file ends with half a CRLF
          } else break;
        }
        if (p >= n) break;
      }
      const lf = buf.indexOf(nl, p);
      if (lf === -1 && !final) break;
      const stop = lf === -1 ? n : lf;
      let e = stop;
      if (lfMode && e > p && buf[e - 1] === CR) e--;
      if (rec === undefined) {
        if (quoteAt < p) {
          quoteAt = this.#quoteBytes.length === 1 ? buf.indexOf(this.#quoteByte, p) : buf.indexOf(this.#quoteBytes, p);
          if (quoteAt === -1) quoteAt = Infinity;
        }
        if (quoteAt >= stop) {
          // A line without quote: one record.
          this.#plain(buf, p, e, base + p, line);
          if (lf === -1) {
            p = n;
            break;
          }
          p = lf + 1;
          line++;
          continue;
        }
      }
      // A line of a record with a quote character.
      const outcome = this.#quotedLine(rec, buf, p, e, lf, base + p, line);
      if (outcome === QUOTED_NEXT) {
        if (lf !== -1) line++;
      } else {
        // A syntax error: the physical line where the record starts is rejected, parsing goes on at the next one.
        line = this.#recLine + 1;
        if (outcome === QUOTED_REPARSE) {
          base = this.#reparseBase;
          buf = this.#reparseBuf;
          this.#reparseBuf = EMPTY;
          n = buf.length;
          if (this.#checkUtf8) this.#suspect = !isUtf8(buf);
          p = 0;
          quoteAt = -2;
          continue;
        }
      }
      if (lf === -1) {
        p = n;
        break;
      }
      p = lf + 1;
    }
    this.#line = line;
    this.#offset = base + p;
    if (p < n && !this.#done) this.#partial.push(buf.subarray(p));
  }

  /** The length of the UTF-8 BOM `buf` starts with (0 if none); the first scan only. */
  #skipBom(buf: Buffer): number {
    // The first scan has a line break (or is the last one): it holds the whole BOM if there is one.
    this.#bomPending = false;
    return buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  }

  /**
   * One line (`buf[p..e)`, its line feed at `lf`, -1 for the last line) of a record with a quote character:
   * `rec` is the record it continues, if any; `offset` and `line` are its position. Emits the record when it ends.
   * Returns QUOTED_NEXT (go on at the next line), QUOTED_REJECTED (a syntax error: the record's first line is
   * rejected) or QUOTED_REPARSE (the same on a later line: parse again from `#reparseBuf`, its second line on).
   */
  #quotedLine(rec: QuotedRecord | undefined, buf: Buffer, p: number, e: number, lf: number, offset: number, line: number): number {
    const text = this.#decode(buf, p, e);
    if (this.#suspect && !this.#recBad && !isUtf8(buf.subarray(p, e))) this.#recBad = true;
    const stop = lf === -1 ? buf.length : lf;
    const term = lf === -1 ? '' : e < stop ? '\r\n' : this.#nl === LF ? '\n' : '\r';
    let r = rec;
    if (r === undefined) {
      r = new QuotedRecord();
      this.#recOffset = offset;
      this.#recLine = line;
      this.#recFirstLine = text;
    }
    const result = this.#splitter.feed(r, text, term);
    if (result === RECORD_MORE) {
      if (lf === -1) {
        this.#unclosed(buf.subarray(p, buf.length));
        return QUOTED_NEXT;
      }
      this.#rec = r;
      this.#recBytes.push(buf.subarray(p, lf + 1));
      this.#recByteCount += lf + 1 - p;
      if (this.#columns === undefined && this.#recByteCount > MAX_HEADER_BYTES) this.#headerTooLong();
      return QUOTED_NEXT;
    }
    const lines = this.#recBytes;
    const bad = this.#recBad;
    this.#rec = undefined;
    this.#recBytes = [];
    this.#recByteCount = 0;
    this.#recBad = false;
    if (result === RECORD_DONE) {
      if (lines.length === 0) {
        this.#emit(r.fields, text, this.#recOffset, this.#recLine, bad ? buf.subarray(p, e) : undefined);
      } else {
        const bytes = Buffer.concat([...lines, buf.subarray(p, e)]);
        this.#emit(r.fields, this.#decode(bytes, 0, bytes.length), this.#recOffset, this.#recLine, bad ? bytes : undefined);
      }
      return QUOTED_NEXT;
    }
    this.#parseError(r.error, this.#recFirstLine, this.#recOffset, this.#recLine);
    if (lines.length === 0) return QUOTED_REJECTED;
    // The error is on a later line of the record: parse again from its second line.
    this.#reparseBase = this.#recOffset + lines[0]!.length;
    this.#reparseBuf = Buffer.concat([...lines.slice(1), buf.subarray(p)]);
    return QUOTED_REPARSE;
  }

  /** A line without quote character: its fields are split by the delimiter. */
  #plain(buf: Buffer, start: number, end: number, offset: number, line: number): void {
    if (this.#resume !== undefined && this.#columns !== undefined && this.#skipped(offset, line)) return;
    const raw = this.#decode(buf, start, end);
    const bad = this.#suspect && !isUtf8(buf.subarray(start, end));
    this.#emit(this.#splitter.plain(raw), raw, offset, line, bad ? buf.subarray(start, end) : undefined);
  }

  /** Whether a record at this position comes at or before the resume position. */
  #skipped(offset: number, line: number): boolean {
    const resume = this.#resume!;
    return resume.offset !== undefined ? offset <= resume.offset : line <= (resume.line ?? 0);
  }

  /** A record: the header, else a row (`badBytes`: its bytes, when they are not all UTF-8). */
  #emit(fields: string[], raw: string, offset: number, line: number, badBytes?: Buffer): void {
    const columns = this.#columns;
    if (columns === undefined) {
      if (badBytes) throw notUtf8Header(this.#source, line, badBytes);
      this.#columns = fields;
      return;
    }
    if (this.#resume !== undefined) {
      if (this.#skipped(offset, line)) return;
      this.#resume = undefined;
    }
    if (badBytes) {
      const error = { code: 'INVALID_ENCODING' as const, message: notUtf8Message(line, badBytes) };
      this.#out.push({ pos: { seq: this.#seq++, source: this.#source, line, offset }, row: {}, raw, error });
      return;
    }
    const n = columns.length;
    const m = fields.length;
    const pos = { seq: this.#seq++, source: this.#source, line, offset };
    if (m === n) {
      const row = (this.#makeRow ??= rowFactory(columns))(fields);
      this.#out.push(this.#rawAll ? { pos, row, raw } : { pos, row });
      return;
    }
    const row: Record<string, unknown> = {};
    const k = m < n ? m : n;
    for (let i = 0; i < k; i++) row[columns[i]!] = fields[i];
    if (this.#relax) {
      this.#out.push(this.#rawAll ? { pos, row, raw } : { pos, row });
      return;
    }
    this.#out.push({ pos, row, raw, error: { code: 'CSV_RAGGED_ROW', message: `Expected ${n} fields (header), got ${m}` } });
  }

  /** A rejected record (`row: {}`), or a SOURCE_READ error when it is the header record. */
  #reject(code: 'CSV_PARSE_ERROR' | 'CSV_UNCLOSED_QUOTE', message: string, headerMessage: string, raw: string, offset: number, line: number): void {
    if (this.#columns === undefined) {
      throw new EtlError('SOURCE_READ', `Cannot parse the CSV header of ${this.#source} (line ${line}): ${headerMessage}`, {
        context: { file: this.#source, line },
      });
    }
    if (this.#resume !== undefined) {
      if (this.#skipped(offset, line)) return;
      this.#resume = undefined;
    }
    if (raw.length > MAX_RAW_CHARS) raw = raw.slice(0, MAX_RAW_CHARS) + '…';
    this.#out.push({ pos: { seq: this.#seq++, source: this.#source, line, offset }, row: {}, raw, error: { code, message } });
  }

  #parseError(message: string, firstLine: string, offset: number, line: number): void {
    this.#reject('CSV_PARSE_ERROR', `${message} (record starting at line ${line}; the line is skipped)`, message, firstLine, offset, line);
  }

  /**
   * The input ends inside a quoted field: one rejected record from the line of the record to the end of the input
   * (`last`: its last line, without line break); the rest of the input is discarded.
   */
  #unclosed(last: Buffer): void {
    const line = this.#recLine;
    const parts = this.#recBytes;
    const lines = parts.length + (last.length > 0 ? 1 : 0);
    parts.push(last);
    this.#rec = undefined;
    this.#recBytes = [];
    this.#recByteCount = 0;
    this.#done = true;
    let size = 0;
    let k = 0;
    while (k < parts.length && size <= MAX_RAW_BYTES) size += parts[k++]!.length;
    const buf = Buffer.concat(parts.slice(0, k));
    let end = buf.length;
    if (k === parts.length) {
      // The whole text: without the line break that ends the input.
      if (end > 0 && buf[end - 1] === LF) end--;
      if (end > 0 && buf[end - 1] === CR) end--;
    } else end = Math.min(end, MAX_RAW_BYTES);
    this.#reject(
      'CSV_UNCLOSED_QUOTE',
      `Unclosed quote: the record starting at line ${line} runs to the end of the file (${lines} line${lines === 1 ? '' : 's'}); the rest of the file cannot be parsed`,
      'Quote Not Closed: the input ends inside a quoted field',
      this.#decode(buf, 0, end),
      this.#recOffset,
      line,
    );
  }
}

/** Where the first byte that is not UTF-8 is in `bytes` (-1 when they all are): only for a record known to hold one. */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x80) continue;
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0 || !isUtf8(bytes.subarray(i, i + len))) return i;
    i += len - 1;
  }
  return -1;
}

const ENCODING_HINT =
  'the file is not UTF-8: set `encoding` on the source (a CSV saved by Excel on Windows is usually `windows-1252`; see docs/sources.md)';

/** INVALID_ENCODING: a row holds bytes that are not UTF-8 (never loaded with U+FFFD in their place). */
function notUtf8Message(line: number, bytes: Buffer): string {
  const at = firstInvalidUtf8(bytes);
  const where = at === -1 ? '' : ` (byte 0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')} at byte ${at + 1} of the row)`;
  return `Line ${line} holds bytes that are not UTF-8${where}: ${ENCODING_HINT}`;
}

/** The header holds bytes that are not UTF-8: every row with such a character would be rejected, so the file fails. */
function notUtf8Header(source: string, line: number, bytes: Buffer): EtlError {
  return new EtlError('SOURCE_READ', `The CSV header of ${source} (line ${line}) holds bytes that are not UTF-8: ${ENCODING_HINT}`, {
    context: { file: source, line, hint: 'encoding' },
  });
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

/**
 * Parse a stream of decompressed CSV bytes into record batches (one batch per chunk). Used by the csv source
 * for each file and reusable for any byte stream (S3 objects: `decodedChunks(body, {gzip})`).
 * With `startOffset > 0`, the record delimiter and the header are what the parser learned at the start of the file
 * (`input.learned`); without them (a checkpoint written before they were kept), `readHeader` must give the bytes
 * from offset 0 and they are learned again from there.
 */
export async function* parseCsvChunks(
  input: ParseInput & { readHeader?: () => AsyncIterable<Buffer> },
  options: CsvParseOptions,
): AsyncGenerator<SourceRecord[]> {
  if ((input.startOffset ?? 0) > 0) {
    // a seek into a file read natively (a transcoded file's records have no offset to seek to)
    yield* parseNative(input, options);
    return;
  }
  const { head, chunks } = await peek(input.chunks, 3);
  const bom = bomEncoding(head);
  const how: ReadEncoding = bom === 'utf8' ? { native: 'utf8' } : bom ? { transcode: bom } : readEncoding(options.encoding);
  if ('native' in how) {
    yield* parseNative({ ...input, chunks }, { ...options, encoding: how.native });
    return;
  }
  // Transcoded to UTF-8 first: lines are the file's, byte offsets would be the transcoding's, so records carry none.
  for await (const batch of parseNative({ ...input, chunks: toUtf8(chunks, how.transcode) }, { ...options, encoding: 'utf8' })) {
    for (const record of batch) delete record.pos.offset;
    yield batch;
  }
}

/** {@link parseCsvChunks} of bytes Node.js decodes itself (UTF-8, latin1). */
async function* parseNative(input: ParseInput & { readHeader?: () => AsyncIterable<Buffer> }, options: CsvParseOptions): AsyncGenerator<SourceRecord[]> {
  const readsHeader = options.header === undefined || options.header === true;
  let header = options.header;
  let newline: 'lf' | 'cr' | undefined;
  if ((input.startOffset ?? 0) > 0) {
    const learned = isCsvLearned(input.learned) && (!readsHeader || input.learned.columns) ? input.learned : await learnFromStart(input, options);
    newline = learned.newline;
    if (readsHeader) header = learned.columns;
  }
  const parser = new CsvChunkParser({
    ...options,
    header,
    newline,
    source: input.source,
    firstSeq: input.firstSeq,
    resume: input.resume,
    startOffset: input.startOffset,
    startLine: input.startLine,
  });
  let told = input.onLearned === undefined;
  const tell = (): void => {
    const nl = parser.newline;
    if (told || nl === undefined || (readsHeader && parser.columns === undefined)) return;
    told = true;
    input.onLearned!(readsHeader ? { newline: nl, columns: [...parser.columns!] } : { newline: nl });
  };
  for await (const chunk of input.chunks) {
    const batch = parser.push(chunk);
    tell();
    if (batch.length > 0) yield batch;
  }
  const last = parser.end();
  tell();
  if (last.length > 0) yield last;
}

/** The record delimiter and header of a file, read again from its start (`readHeader`). */
async function learnFromStart(input: ParseInput & { readHeader?: () => AsyncIterable<Buffer> }, options: CsvParseOptions): Promise<CsvLearned> {
  if (!input.readHeader) throw new EtlError('INTERNAL', 'parseCsvChunks: starting mid-file needs readHeader');
  const readsHeader = options.header === undefined || options.header === true;
  const parser = new CsvChunkParser({ ...options, header: readsHeader ? true : options.header, source: input.source, raw: 'errors' });
  const known = (): boolean => parser.newline !== undefined && (!readsHeader || parser.columns !== undefined);
  for await (const chunk of input.readHeader()) {
    parser.push(chunk);
    if (known()) break;
  }
  if (!known()) parser.end();
  if (readsHeader && parser.columns === undefined) throw new EtlError('SOURCE_READ', `No header record in ${input.source}`, { context: { file: input.source } });
  return readsHeader ? { newline: parser.newline!, columns: [...parser.columns!] } : { newline: parser.newline ?? 'lf' };
}

/** Parser options from a `csv` (or `s3`) source config. */
export function csvParseOptions(config: CsvParseOptions): CsvParseOptions {
  return {
    delimiter: config.delimiter === undefined ? undefined : csvDelimiter(config.delimiter),
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

/**
 * The start of one CSV file for the pre-flight check: its header (parsed as a run parses it: encoding, BOM,
 * delimiter) and whether a row follows; the rest of the file is not read.
 */
export async function inspectCsvFile(file: FileEntry, options: CsvParseOptions): Promise<SourceSample> {
  const stream = createReadStream(file.path, { highWaterMark: 64 * 1024 });
  try {
    return await inspectCsvInput({ source: file.source, bytes: file.size, chunks: decodedChunks(stream, { gzip: file.gzip }) }, options);
  } finally {
    stream.destroy();
  }
}

/** {@link inspectCsvFile} of any input (an S3 object read by ranges): stops at the first row after the header. */
export async function inspectCsvInput(input: InspectInput, options: CsvParseOptions): Promise<SourceSample> {
  const delimiter = options.delimiter ?? ',';
  const sample: SourceSample = { source: input.source, bytes: input.bytes, certainty: 'header', rows: false, delimiter };
  const given = options.header !== undefined && options.header !== true ? [...options.header] : undefined;
  if (given) sample.columns = given;
  try {
    const parse: ParseInput = {
      chunks: input.chunks,
      source: input.source,
      firstSeq: 0,
      onLearned: (learned) => {
        if (!given && isCsvLearned(learned)) sample.columns = learned.columns;
      },
    };
    for await (const batch of parseCsvChunks(parse, { ...options, raw: 'errors' })) {
      if (batch.length > 0) {
        sample.rows = true;
        const bad = batch.find((r) => r.error?.code === 'INVALID_ENCODING');
        if (bad) sample.notUtf8Line = bad.pos.line;
        break;
      }
    }
  } catch (error) {
    if (!(error instanceof EtlError)) throw new EtlError('SOURCE_READ', `Cannot read ${input.source}: ${(error as Error).message}`, { cause: error });
    sample.error = { code: error.code, message: error.message, ...(error.context.hint === 'encoding' ? { key: 'encoding' } : {}) };
  }
  if (!given && sample.columns?.length === 1) sample.headerText = sample.columns[0];
  return sample;
}

/** The `csv` source component. */
export const csvSource: SourceDefinition<typeof CsvSource> = {
  type: 'csv',
  summary: 'Local CSV files (glob or list, .gz decompressed), streamed with exact line/byte positions.',
  config: CsvSource,
  capabilities: { yields: 'rows', rereadOnNewMapping: true, shards: 'objects' },
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
    const reader = createFileReader({ patterns: config.path, ctx, component: 'source.csv', parse: counting, onChangedFile: config.onChangedFile });
    reader.progress = () => (totalBytes === undefined ? { bytes } : { bytes, totalBytes });
    return reader;
  },
  async inspect(config, ctx) {
    const options = csvParseOptions(config);
    const samples: SourceSample[] = [];
    for (const file of await resolveFiles(config.path, ctx.baseDir)) samples.push(await inspectCsvFile(file, options));
    return samples;
  },
};
