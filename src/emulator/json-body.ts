/**
 * JSON request bodies. `parseJson` is `JSON.parse` of the UTF-8 text. `envelopeParser` makes a parser for one
 * bulk envelope (`{"data":{"type":…,"attributes":{"<member>":{"data":[items]}}}}`) that parses a large body in
 * pieces of about 32 KB instead of as one string: a string of several hundred KB is a fresh large-object
 * allocation for V8 (page faults, about as costly per byte as the parse itself), pieces are ordinary young objects.
 *
 * The result is always exactly what `JSON.parse` gives for the whole text:
 * - pieces are used only when the body is the compact serialization of the envelope: it starts with the exact
 *   prefix `{"data":{"type":"<type>","attributes":{"<member>":{"data":[` and ends with `]}}}}`;
 * - pieces are cut at the `,` before an item that starts `{"type":"<item>",` (in valid JSON that byte sequence
 *   never lies inside a string; it may lie inside an item, nested deeper, and then the piece does not parse);
 * - every piece must parse as `[` + piece + `]` to a non-empty array, i.e. be a comma-separated list of complete
 *   values. The body is exactly prefix + piece₁ + `,` + piece₂ + … + pieceₙ + suffix, so it is valid JSON and its
 *   array holds the pieces' values in order.
 * Anything else (another layout, whitespace, a piece that does not parse, an invalid body) → `JSON.parse` of the
 * whole text, which also gives the exact syntax error.
 */
import { isAscii } from 'node:buffer';

/** Size of a piece; bodies under two pieces are parsed whole. */
const PIECE_BYTES = 32 * 1024;
const SUFFIX = Buffer.from(']}}}}');

/** `JSON.parse` of a UTF-8 body. */
export function parseJson(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8'));
}

/** A body parser for the bulk envelope of `type` whose `attributes[member].data` holds items of type `item`. */
export function envelopeParser(type: string, member: string, item: string): (body: Buffer) => unknown {
  const prefix = Buffer.from(`{"data":{"type":${JSON.stringify(type)},"attributes":{${JSON.stringify(member)}:{"data":[`);
  const cut = Buffer.from(`,{"type":${JSON.stringify(item)},`);
  return (body) => {
    const items = body.length >= 2 * PIECE_BYTES ? parsePieces(body, prefix, cut) : null;
    if (items === null) return parseJson(body);
    return { data: { type, attributes: { [member]: { data: items } } } };
  };
}

/** The items of the envelope array parsed piece by piece, or null when the body is not laid out for it. */
export function parsePieces(body: Buffer, prefix: Buffer, cut: Buffer): unknown[] | null {
  const end = body.length - SUFFIX.length;
  if (end < prefix.length) return null;
  if (body.compare(prefix, 0, prefix.length, 0, prefix.length) !== 0 || body.compare(SUFFIX, 0, SUFFIX.length, end) !== 0) return null;
  const ascii = isAscii(body);
  const items: unknown[] = [];
  let start = prefix.length;
  while (start < end) {
    let stop = start + PIECE_BYTES < end ? body.indexOf(cut, start + PIECE_BYTES) : -1;
    if (stop < 0 || stop > end) stop = end;
    // cuts are at ASCII bytes, so a UTF-8 body decodes piecewise to the same text
    const text = body.toString(ascii ? 'latin1' : 'utf8', start, stop);
    let values: unknown[];
    try {
      values = JSON.parse(`[${text}]`) as unknown[];
    } catch {
      return null;
    }
    if (values.length === 0) return null; // an empty piece: `[,` or `,,` in the body
    for (const v of values) items.push(v);
    start = stop + 1;
  }
  return items;
}

/**
 * How deep a request body may nest objects and arrays. A body nested deeper is refused (400) before it is parsed:
 * `JSON.parse` of a 5 MB `[[[[…` takes seconds, and every recursive step after it (validation, `JSON.stringify`
 * of a stored value) could overflow the stack. The deepest legitimate body, a bulk event whose properties use
 * Klaviyo's 10 nesting levels, nests 22 deep.
 */
export const MAX_BODY_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Offset of the `"` that closes the string opened at `start`, or -1 when it is not closed. */
function stringEnd(body: Buffer, start: number): number {
  let j = start;
  for (;;) {
    j = body.indexOf(QUOTE, j + 1);
    if (j < 0) return -1;
    let k = j - 1;
    while (body[k] === BACKSLASH) k--;
    if ((j - 1 - k) % 2 === 0) return j; // an even number of backslashes: the quote is not escaped
  }
}

/**
 * Offset of the first `{` or `[` of the JSON text in `body` that opens a container nested deeper than `max`
 * (outside strings), or -1. One pass over the bytes, no allocation (about a twentieth of `JSON.parse`'s time); the
 * text need not be valid JSON (an invalid body gets `JSON.parse`'s error afterwards).
 */
export function tooDeepAt(body: Buffer, max: number): number {
  let depth = 0;
  let inString = false;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const b = body[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) return i;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return -1;
}

/**
 * The JSON pointer of the value that starts at `offset` in the JSON text `body` (a container found by
 * `tooDeepAt`): the keys and indexes of the containers around it. Meant for error paths only.
 */
export function pointerAt(body: Buffer, offset: number): string {
  const frames: { key: string | null; index: number }[] = []; // key null: an array
  let expectKey = false;
  for (let i = 0; i < offset; i++) {
    const b = body[i]!;
    const top = frames[frames.length - 1];
    if (b === QUOTE) {
      const end = stringEnd(body, i);
      if (end < 0) break;
      if (top && top.key !== null && expectKey) {
        top.key = decodeKey(body, i, end);
        expectKey = false;
      }
      i = end;
    } else if (b === 0x7b) {
      frames.push({ key: '', index: 0 });
      expectKey = true;
    } else if (b === 0x5b) frames.push({ key: null, index: 0 });
    else if (b === 0x7d || b === 0x5d) frames.pop();
    else if (b === 0x2c && top) {
      if (top.key === null) top.index++;
      else expectKey = true;
    }
  }
  return frames.map((f) => '/' + (f.key === null ? String(f.index) : f.key.replace(/~/g, '~0').replace(/\//g, '~1'))).join('');
}

function decodeKey(body: Buffer, start: number, end: number): string {
  const text = body.toString('utf8', start, end + 1);
  try {
    return JSON.parse(text) as string;
  } catch {
    return text.slice(1, -1);
  }
}
