/**
 * Text encodings of the CSV sources (`encoding:`): what a file's bytes are read as.
 *
 * - `utf8` (the default) and `latin1` are decoded by Node.js itself, record by record, with exact byte offsets: the
 *   hot path of the CSV reader. A UTF-8 file is checked for bytes that are not UTF-8 (csv.ts: INVALID_ENCODING).
 * - Any other encoding iconv-lite knows (`windows-1252`, `iso-8859-15`, `utf-16le`, `shift_jis`, …) is transcoded to
 *   UTF-8 before the parser sees it ({@link toUtf8}). Positions then hold lines but no byte offset (an offset in the
 *   transcoded text would mean nothing in the file), so a resume re-reads such a file from its start and skips by line.
 * - A BOM at the start of a file says what the file is, whatever `encoding` says (as the WHATWG Encoding Standard
 *   decodes): UTF-8 (EF BB BF), UTF-16LE (FF FE) or UTF-16BE (FE FF). The BOM itself is never part of the first column.
 */
import iconv from 'iconv-lite';

/** How the CSV reader reads a file: natively (utf8, latin1) or transcoded to UTF-8 from an iconv-lite encoding. */
export type ReadEncoding = { native: 'utf8' | 'latin1' } | { transcode: string };

/** Names Node.js decodes natively (lower case). */
const NATIVE: Readonly<Record<string, 'utf8' | 'latin1'>> = { utf8: 'utf8', 'utf-8': 'utf8', latin1: 'latin1', 'iso-8859-1': 'latin1' };

/** Whether `name` is an encoding the CSV sources can read. */
export function isKnownEncoding(name: string): boolean {
  return NATIVE[name.toLowerCase()] !== undefined || iconv.encodingExists(name);
}

/** How to read a file whose config says `name` (@default utf8). */
export function readEncoding(name: string | undefined): ReadEncoding {
  const native = NATIVE[(name ?? 'utf8').toLowerCase()];
  return native ? { native } : { transcode: name! };
}

/** The encoding a BOM at the start of `head` announces (undefined without a BOM). */
export function bomEncoding(head: Buffer): 'utf8' | 'utf-16le' | 'utf-16be' | undefined {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf8';
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return undefined;
}

/**
 * The first `n` bytes of a stream (fewer when it is shorter), and the whole stream again (those bytes first): to look
 * for a BOM before choosing how to read it.
 */
export async function peek(chunks: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; chunks: AsyncIterable<Buffer> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    seen.push(next.value);
    size += next.value.length;
  }
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* seen;
      while (!done) {
        const next = await iterator.next();
        if (next.done) done = true;
        else yield next.value;
      }
    } finally {
      // the consumer stopped early: close the stream (the file) under it
      if (!done) await iterator.return?.();
    }
  }
  return { head: Buffer.concat(seen).subarray(0, n), chunks: replay() };
}

/** A stream of bytes in `encoding` as UTF-8 bytes (a BOM removed); a character split across chunks is kept whole. */
export async function* toUtf8(chunks: AsyncIterable<Buffer>, encoding: string): AsyncGenerator<Buffer> {
  const decoder = iconv.getDecoder(encoding);
  for await (const chunk of chunks) {
    const text = decoder.write(chunk);
    if (text.length > 0) yield Buffer.from(text, 'utf8');
  }
  const rest = decoder.end();
  if (rest !== undefined && rest.length > 0) yield Buffer.from(rest, 'utf8');
}

/** What {@link guessEncoding} found, and how sure it is. */
export interface EncodingGuess {
  /** An encoding name the CSV sources take (`utf8`, `utf-16le`, `utf-16be`, `windows-1252`). */
  encoding: 'utf8' | 'utf-16le' | 'utf-16be' | 'windows-1252';
  /** `bom`: the file says so; `utf8`: the bytes are valid UTF-8; `guessed`: they are not, so Excel's Windows-1252. */
  by: 'bom' | 'utf8' | 'guessed';
}

/**
 * The encoding of a file from its first bytes (`partial`: the file goes on, so a character cut at the end is not an
 * error): a BOM says what it is, as the CSV sources read it; else valid UTF-8 is UTF-8; else Windows-1252, what
 * Excel on Windows writes (every byte decodes, so it is a guess).
 */
export function guessEncoding(head: Buffer, partial: boolean): EncodingGuess {
  const bom = bomEncoding(head);
  if (bom) return { encoding: bom, by: 'bom' };
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: partial });
    return { encoding: 'utf8', by: 'utf8' };
  } catch {
    return { encoding: 'windows-1252', by: 'guessed' };
  }
}
