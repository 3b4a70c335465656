/**
 * NDJSON source: one JSON object per line, local files (glob/list, `.gz`). Blank lines are skipped (but counted
 * for line numbers); a line that is not a JSON object becomes a record with `error.code 'NDJSON_PARSE_ERROR'`.
 * Every record carries its line, byte offset (in the decompressed stream) and raw text. A UTF-8 BOM is skipped;
 * a trailing `\r` (CRLF files) is removed.
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { NdjsonSource, type NdjsonSourceConfig } from '../config/schema.js';
import type { SourcePosition, SourceRecord } from '../core/record.js';
import { createFileReader, decodedChunks, resolveFiles, type FileEntry, type FormatParser, type ParseInput } from './files.js';
import type { InspectInput, SourceSample } from './types.js';
import type { SourceDefinition } from '../components/types.js';

/** Longest raw text kept on a rejected record. */
const MAX_RAW_CHARS = 65_536;

/**
 * Parse decompressed NDJSON bytes into record batches (one batch per chunk). Reusable for any byte stream
 * (S3 objects: `decodedChunks(body, {gzip})`).
 */
export async function* parseNdjsonChunks(input: ParseInput): AsyncGenerator<SourceRecord[]> {
  const source = input.source;
  let resume = input.resume;
  let seq = resume ? resume.seq + 1 : input.firstSeq;
  let line = input.startLine ?? 1;
  // The unfinished last line: the chunks it spans so far, joined once when its line feed arrives (joining them chunk
  // by chunk copied a long line again for every chunk: quadratic time for lines of many MB).
  let carry: Buffer[] = [];
  let carryStart = input.startOffset ?? 0;
  let chunkStart = carryStart;
  let out: SourceRecord[] = [];
  /** The complete lines of the buffer being split are not all UTF-8: each line is checked (rare; see csv.ts). */
  let suspect = false;

  const onLine = (buf: Buffer, s: number, e: number, offset: number): void => {
    if (offset === 0 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) {
      s += 3;
      offset = 3;
    }
    if (e > s && buf[e - 1] === 13) e--;
    const lineNo = line;
    if (s === e) return;
    const text = buf.toString('utf8', s, e);
    const c = text.charCodeAt(0);
    if ((c === 32 || c === 9 || c === 13 || c === 0xfeff) && text.trim() === '') return;
    if (resume !== undefined) {
      if (resume.offset !== undefined ? offset <= resume.offset : lineNo <= (resume.line ?? 0)) return;
      resume = undefined;
    }
    const pos = { seq: seq++, source, line: lineNo, offset };
    if (suspect && !isUtf8(buf.subarray(s, e))) {
      const message = `Line ${lineNo} holds bytes that are not UTF-8: NDJSON is UTF-8 (RFC 8259); convert the file (e.g. iconv -f windows-1252 -t utf-8)`;
      out.push({ pos, row: {}, raw: text.length > MAX_RAW_CHARS ? text.slice(0, MAX_RAW_CHARS) + '…' : text, error: { code: 'INVALID_ENCODING', message } });
      return;
    }
    out.push(lineRecord(text, pos));
  };

  for await (const chunk of input.chunks) {
    if (chunk.length === 0) continue;
    if (carry.length > 0 && chunk.indexOf(10) === -1) {
      // Still inside the unfinished line.
      carry.push(chunk);
      chunkStart += chunk.length;
      continue;
    }
    const buf = carry.length === 0 ? chunk : Buffer.concat([...carry, chunk]);
    const bufStart = carry.length === 0 ? chunkStart : carryStart;
    chunkStart += chunk.length;
    let s = 0;
    const complete = buf.lastIndexOf(10) + 1;
    suspect = complete > 0 && !isUtf8(buf.subarray(0, complete));
    let lf = buf.indexOf(10, s);
    while (lf !== -1) {
      onLine(buf, s, lf, bufStart + s);
      line++;
      s = lf + 1;
      lf = buf.indexOf(10, s);
    }
    carry = s < buf.length ? [buf.subarray(s)] : [];
    carryStart = bufStart + s;
    if (out.length > 0) {
      yield out;
      out = [];
    }
  }
  if (carry.length > 0) {
    const last = carry.length === 1 ? carry[0]! : Buffer.concat(carry);
    suspect = !isUtf8(last);
    onLine(last, 0, last.length, carryStart);
    if (out.length > 0) yield out;
  }
}

/** The record of one non-blank line: its object, or an `NDJSON_PARSE_ERROR` when the line is not a JSON object. */
function lineRecord(text: string, pos: SourcePosition): SourceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return rejectedLine(text, pos, `Invalid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return rejectedLine(text, pos, `Expected a JSON object, got ${kind}`);
  }
  return { pos, row: value as Record<string, unknown>, raw: text };
}

/** A rejected line: its raw text (cut at MAX_RAW_CHARS) and the error. */
function rejectedLine(text: string, pos: SourcePosition, message: string): SourceRecord {
  return {
    pos,
    row: {},
    raw: text.length > MAX_RAW_CHARS ? text.slice(0, MAX_RAW_CHARS) + '…' : text,
    error: { code: 'NDJSON_PARSE_ERROR', message },
  };
}

/** A {@link FormatParser} for NDJSON (the S3 source parses object bodies with it). */
export function ndjsonParser(): FormatParser {
  return parseNdjsonChunks;
}

/** Rows of an NDJSON file whose keys the pre-flight check looks at. */
const SAMPLE_ROWS = 100;

/** The start of one NDJSON file for the pre-flight check: the keys of its first rows. */
async function inspectNdjsonFile(file: FileEntry): Promise<SourceSample> {
  const stream = createReadStream(file.path, { highWaterMark: 64 * 1024 });
  try {
    return await inspectNdjsonInput({ source: file.source, bytes: file.size, chunks: decodedChunks(stream, { gzip: file.gzip }) });
  } finally {
    stream.destroy();
  }
}

/** {@link inspectNdjsonFile} of any input (an S3 object read by ranges): the keys of its first rows. */
export async function inspectNdjsonInput(input: InspectInput): Promise<SourceSample> {
  const keys = new Set<string>();
  let rows = 0;
  read: for await (const batch of parseNdjsonChunks({ chunks: input.chunks, source: input.source, firstSeq: 0 })) {
    for (const record of batch) {
      if (record.error) continue;
      for (const key of Object.keys(record.row)) keys.add(key);
      if (++rows >= SAMPLE_ROWS) break read;
    }
  }
  return { source: input.source, bytes: input.bytes, certainty: 'sampled', rows: rows > 0, ...(rows > 0 ? { columns: [...keys] } : {}) };
}

/** The `ndjson` source component. */
export const ndjsonSource: SourceDefinition<typeof NdjsonSource> = {
  type: 'ndjson',
  summary: 'Local newline-delimited JSON files (glob or list, .gz decompressed), one object per line.',
  config: NdjsonSource,
  capabilities: { yields: 'rows', rereadOnNewMapping: true, shards: 'objects' },
  create(config, ctx) {
    return createFileReader({ patterns: config.path, ctx, component: 'source.ndjson', parse: parseNdjsonChunks, onChangedFile: config.onChangedFile });
  },
  async inspect(config, ctx) {
    const samples: SourceSample[] = [];
    for (const file of await resolveFiles(config.path, ctx.baseDir)) samples.push(await inspectNdjsonFile(file));
    return samples;
  },
};
