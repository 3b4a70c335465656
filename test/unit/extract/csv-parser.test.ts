// CsvChunkParser over many random CSV texts, checked three ways:
// - valid texts are generated from known records, so every record's fields, line, offset and raw text are known;
// - every record, valid or not, is checked against csv-parse (the reference engine, a devDependency): the bytes of a
//   record parse to the same fields, and a record rejected for its syntax makes csv-parse fail on it as well;
// - chunking never changes the result (random splits, splits inside CRLF and inside multi-byte characters), and the
//   records with the blank lines cover the whole file (no row is ever dropped).
import { parse as csvParse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../../src/core/record.js';
import { CsvChunkParser, MAX_RAW_CHARS, parseCsvChunks, type CsvParseOptions } from '../../../src/extract/csv.js';
import { prng } from '../../helpers/random.js';

interface Expected {
  fields: string[];
  offset: number;
  line: number;
  raw: string;
}

interface Case {
  options: CsvParseOptions & { encoding: 'utf8' | 'latin1' };
  file: Buffer;
  eol: '\n' | '\r\n' | '\r';
  columns: string[];
  /** Byte offset just after the header line. */
  headerEnd: number;
  /** The data records, when the text is valid. */
  expected?: Expected[];
}

function generate(seed: number, malformed: boolean): Case {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const encoding = pick(['utf8', 'utf8', 'latin1'] as const);
  const delimiter = pick([',', ',', ';', '\t', '|', '::', encoding === 'utf8' ? '§§' : '§']);
  const quote = pick(['"', '"', '"', "'", encoding === 'utf8' ? '«' : '¤']);
  const escape = pick([quote, quote, '\\']);
  const eol = pick(['\n', '\n', '\r\n', '\r\n', '\r'] as const);
  // In malformed texts a removed quote may turn a quoted line break into a record delimiter: keep those of the file's kind.
  const breaks = malformed ? [eol] : ['\n', '\r\n', '\r'];
  const wide = encoding === 'utf8' ? ['€', '😀', 'ж'] : ['ü', 'ß', 'ÿ'];
  const alphabet = ['a', 'b', 'Z', '1', ' ', 'é', ...wide, delimiter, quote, escape, ...breaks, delimiter[0]!];
  const text = () => {
    let s = '';
    for (let i = int(7); i > 0; i--) s += pick(alphabet);
    return s;
  };
  const serialize = (field: string, only: boolean): string => {
    const needs =
      field.includes(delimiter) ||
      field.includes(quote) ||
      field.includes(escape) ||
      /[\r\n]/.test(field) ||
      (only && field === '') ||
      field.startsWith(delimiter[0]!) ||
      field.endsWith(delimiter[0]!);
    if (!needs && rand() > 0.2) return field;
    // With an escape character other than the quote, any character may be escaped (line breaks too, but not in
    // malformed texts, where an escape between the CR and LF of a CRLF would make a file of mixed line breaks).
    const escapable = (ch: string) => !malformed || (ch !== '\r' && ch !== '\n');
    const inner =
      escape === quote
        ? field.split(quote).join(quote + quote)
        : [...field].map((ch) => (ch === quote || ch === escape || (rand() < 0.15 && escapable(ch)) ? escape + ch : ch)).join('');
    return quote + inner + quote;
  };
  const ncols = 1 + int(5);
  const columns = Array.from({ length: ncols }, (_, i) => `c${i}`);
  let body = '';
  const header = columns.map((c) => serialize(c, ncols === 1)).join(delimiter) + eol;
  const bom = encoding === 'utf8' && rand() < 0.15 ? '\ufeff' : '';
  body += bom + header;
  const expected: Expected[] = [];
  const nlByte = eol === '\r' ? '\r' : '\n';
  const lineOf = (s: string) => 1 + s.split(nlByte).length - 1;
  const records = int(9);
  for (let r = 0; r < records; r++) {
    while (rand() < 0.15) body += eol;
    const m = rand() < 0.15 ? 1 + int(ncols + 2) : ncols;
    const fields = Array.from({ length: m }, text);
    const raw = fields.map((f) => serialize(f, m === 1)).join(delimiter);
    expected.push({ fields, offset: Buffer.byteLength(body, encoding), line: lineOf(body), raw });
    body += raw;
    if (r < records - 1 || rand() < 0.7) body += eol;
  }
  while (rand() < 0.2) body += eol;
  const headerEnd = Buffer.byteLength(bom + header, encoding);
  let file = Buffer.from(body, encoding);
  if (!malformed) {
    return { options: { delimiter, quote, escape, encoding, relaxColumnCount: rand() < 0.2 }, file, eol, columns, headerEnd, expected };
  }
  // Damage the data (never the header): insert or remove quote characters, text after a quote.
  let damaged = body.slice(bom.length + header.length);
  for (let k = 1 + int(3); k > 0; k--) {
    let at = int(damaged.length + 1);
    if (damaged[at - 1] === '\r' && damaged[at] === '\n') at++; // never between the CR and LF of a CRLF
    const op = int(3);
    if (op === 0) damaged = damaged.slice(0, at) + quote + damaged.slice(at);
    else if (op === 1) {
      const q = damaged.indexOf(quote, at);
      if (q !== -1) damaged = damaged.slice(0, q) + damaged.slice(q + 1);
    } else damaged = damaged.slice(0, at) + pick(['x', quote + 'y', delimiter, escape]) + damaged.slice(at);
  }
  file = Buffer.from(bom + header + damaged, encoding);
  return { options: { delimiter, quote, escape, encoding, relaxColumnCount: rand() < 0.2 }, file, eol, columns, headerEnd };
}

function parseAll(c: Case, cuts: number[], extra: Partial<ConstructorParameters<typeof CsvChunkParser>[0]> = {}): SourceRecord[] {
  const parser = new CsvChunkParser({ ...c.options, source: 'f.csv', ...extra });
  const out: SourceRecord[] = [];
  let prev = 0;
  for (const cut of [...cuts, c.file.length]) {
    out.push(...parser.push(c.file.subarray(prev, cut)));
    prev = cut;
  }
  out.push(...parser.end());
  expect(parser.columns).toEqual(c.columns);
  return out;
}

/** Chunkings: one chunk; random small chunks; a cut after every CR and inside every multi-byte character. */
function chunkings(c: Case, seed: number): number[][] {
  const rand = prng(seed ^ 0x5bd1e995);
  const random: number[] = [];
  for (let at = 1 + Math.floor(rand() * 7); at < c.file.length; at += 1 + Math.floor(rand() * 7)) random.push(at);
  const tricky: number[] = [];
  for (let i = 0; i < c.file.length - 1; i++) {
    const b = c.file[i]!;
    if (b === 13 || (c.options.encoding === 'utf8' && b >= 0xc0)) tricky.push(i + 1);
  }
  return [[], random, tricky];
}

function csvParseOptions(c: Case) {
  return {
    delimiter: c.options.delimiter,
    quote: c.options.quote,
    escape: c.options.escape,
    encoding: c.options.encoding,
    bom: false,
    relax_column_count: true,
    skip_empty_lines: true,
  };
}

/** csv-parse's error code for the first record of `bytes`, or undefined when it parses. */
function csvParseError(c: Case, bytes: Buffer): string | undefined {
  try {
    csvParse(bytes, { ...csvParseOptions(c), to: 1 });
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

function checkAgainstCsvParse(c: Case, records: SourceRecord[], label: string): void {
  const enc = c.options.encoding;
  const n = c.columns.length;
  for (const r of records) {
    const offset = r.pos.offset!;
    const code = r.error?.code;
    if (code === 'CSV_PARSE_ERROR') {
      expect(csvParseError(c, c.file.subarray(offset)) ?? 'no error', `${label}: ${JSON.stringify(r)}`).toMatch(/^(INVALID_OPENING_QUOTE|CSV_INVALID_CLOSING_QUOTE)$/);
      expect(r.row).toEqual({});
      continue;
    }
    if (code === 'CSV_UNCLOSED_QUOTE') {
      expect(csvParseError(c, c.file.subarray(offset)), `${label}: ${JSON.stringify(r)}`).toBe('CSV_QUOTE_NOT_CLOSED');
      continue;
    }
    const bytes = c.file.subarray(offset, offset + Buffer.byteLength(r.raw!, enc));
    const parsed = csvParse(bytes, csvParseOptions(c)) as string[][];
    expect(parsed, `${label}: ${JSON.stringify(r)}`).toHaveLength(1);
    const fields = parsed[0]!;
    expect(Object.values(r.row)).toEqual(fields.slice(0, n));
    if (fields.length === n || c.options.relaxColumnCount) expect(code).toBeUndefined();
    else expect(code).toBe('CSV_RAGGED_ROW');
  }
}

/** Records (plus blank lines) cover the file after the header: each starts where the previous one ends. */
function checkCoverage(c: Case, records: SourceRecord[]): void {
  const enc = c.options.encoding;
  const nl = c.eol === '\r' ? 13 : 10;
  const file = c.file;
  const skipBreaks = (at: number): number => {
    for (;;) {
      if (file[at] === nl) at++;
      else if (nl === 10 && file[at] === 13 && file[at + 1] === 10) at += 2;
      else return at;
    }
  };
  const lineAt = (offset: number): number => {
    let line = 1;
    for (let i = 0; i < offset; i++) if (file[i] === nl) line++;
    return line;
  };
  let at = skipBreaks(c.headerEnd);
  for (const r of records) {
    expect(r.pos.offset, `record ${r.pos.seq} starts where the previous one ended`).toBe(at);
    expect(r.pos.line).toBe(lineAt(at));
    const end = at + Buffer.byteLength(r.raw!, enc);
    expect(file.subarray(at, end).toString(enc)).toBe(r.raw);
    at = end;
    if (r.error?.code === 'CSV_UNCLOSED_QUOTE') {
      // From its start to the end of the file, without the line break that ends the file.
      let last = file.length;
      if (file[last - 1] === 10) last--;
      if (file[last - 1] === 13) last--;
      expect(end).toBe(last);
      at = file.length;
    }
    // A record ends at a line break (or the end of the file).
    if (at < file.length) expect(file[at] === nl || (nl === 10 && file[at] === 13 && file[at + 1] === 10)).toBe(true);
    at = skipBreaks(at);
  }
  expect(at).toBe(file.length);
  expect(records.map((r) => r.pos.seq)).toEqual(records.map((_, i) => i));
}

describe('CsvChunkParser against generated CSV', () => {
  it('valid texts: fields, line, offset and raw text of every record as generated, whatever the chunking', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const c = generate(seed, false);
      const expected = c.expected!;
      for (const cuts of chunkings(c, seed)) {
        const records = parseAll(c, cuts);
        const got = records.map((r) => ({ fields: Object.values(r.row), offset: r.pos.offset, line: r.pos.line, raw: r.raw }));
        const n = c.columns.length;
        expect(got, `seed ${seed}, cuts ${cuts.length}`).toEqual(
          expected.map((e) => ({ fields: e.fields.slice(0, n), offset: e.offset, line: e.line, raw: e.raw })),
        );
        expect(records.map((r) => r.error?.code)).toEqual(
          expected.map((e) => (e.fields.length === n || c.options.relaxColumnCount ? undefined : 'CSV_RAGGED_ROW')),
        );
        checkCoverage(c, records);
      }
      checkAgainstCsvParse(c, parseAll(c, []), `seed ${seed}`);
    }
  });

  it('malformed texts: every record agrees with csv-parse, chunking changes nothing, nothing is dropped', () => {
    const codes = new Set<string>();
    for (let seed = 1; seed <= 600; seed++) {
      const c = generate(seed, true);
      const whole = parseAll(c, []);
      for (const cuts of chunkings(c, seed).slice(1)) expect(parseAll(c, cuts), `seed ${seed}`).toEqual(whole);
      checkAgainstCsvParse(c, whole, `seed ${seed}`);
      checkCoverage(c, whole);
      for (const r of whole) if (r.error) codes.add(r.error.code);
    }
    // The generator does reach every kind of record error.
    expect([...codes].sort()).toEqual(['CSV_PARSE_ERROR', 'CSV_RAGGED_ROW', 'CSV_UNCLOSED_QUOTE']);
  });

  it('resume: records at or before resume.offset / resume.line are skipped, seq goes on after resume.seq', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const c = generate(seed, seed % 2 === 0);
      const whole = parseAll(c, []);
      for (const k of [0, Math.floor(whole.length / 2), whole.length - 1]) {
        const at = whole[k];
        if (at === undefined) continue;
        const byOffset = parseAll(c, chunkings(c, seed)[1]!, { resume: { seq: at.pos.seq, offset: at.pos.offset } });
        expect(byOffset).toEqual(whole.slice(k + 1));
        const byLine = parseAll(c, [], { resume: { seq: at.pos.seq, line: at.pos.line } });
        expect(byLine).toEqual(whole.slice(k + 1));
      }
    }
  });
});

/** parseCsvChunks over `file` from `startOffset` (in chunks cut at `cuts`, absolute offsets). */
async function parseFrom(
  c: Case,
  cuts: number[],
  input: Partial<Parameters<typeof parseCsvChunks>[0]> & { startOffset?: number },
): Promise<SourceRecord[]> {
  const start = input.startOffset ?? 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    let prev = start;
    for (const cut of [...cuts.filter((x) => x > start), c.file.length]) {
      yield c.file.subarray(prev, cut);
      prev = cut;
    }
  }
  async function* whole(): AsyncGenerator<Buffer> {
    yield c.file;
  }
  const out: SourceRecord[] = [];
  for await (const batch of parseCsvChunks({ chunks: chunks(), source: 'f.csv', firstSeq: 0, readHeader: whole, ...input }, c.options)) out.push(...batch);
  return out;
}

describe('parseCsvChunks: a resume at every record boundary parses as a read from the start (issue 16)', () => {
  it('with what the parser learned at the start (line breaks, header), and without it (learned again from offset 0)', async () => {
    let resumes = 0;
    let crOnly = 0;
    for (let seed = 1; seed <= 500; seed++) {
      const c = generate(seed, seed % 3 !== 0);
      let learned: unknown;
      const cuts = chunkings(c, seed)[1]!;
      const full = await parseFrom(c, cuts, { onLearned: (l) => (learned = l) });
      expect(full, `seed ${seed}`).toEqual(parseAll(c, []));
      expect(learned).toEqual({ newline: c.eol === '\r' ? 'cr' : 'lf', columns: c.columns });
      for (let k = 0; k < full.length; k++) {
        const at = full[k]!.pos;
        const resume = { seq: at.seq, offset: at.offset, line: at.line };
        const from = { resume, startOffset: at.offset!, startLine: at.line! };
        expect(await parseFrom(c, cuts, { ...from, learned }), `seed ${seed}, resume after record ${k}`).toEqual(full.slice(k + 1));
        expect(await parseFrom(c, cuts, from), `seed ${seed}, resume after record ${k}, learned again`).toEqual(full.slice(k + 1));
        resumes++;
        if (c.eol === '\r') crOnly++;
      }
    }
    expect(resumes).toBeGreaterThan(1500);
    expect(crOnly).toBeGreaterThan(200);
  });

  it('a CR-only file with a stray quote at the resume point reads every record after it', async () => {
    const file = Buffer.from('id,name\r1,Ann\r2,B"ob\r3,Cy\r4,Dee\r');
    const c: Case = { options: { encoding: 'utf8' }, file, eol: '\r', columns: ['id', 'name'], headerEnd: 8 };
    let learned: unknown;
    const full = await parseFrom(c, [], { onLearned: (l) => (learned = l) });
    expect(full.map((r) => r.error?.code ?? r.row.name)).toEqual(['Ann', 'CSV_PARSE_ERROR', 'Cy', 'Dee']);
    const at = full[1]!.pos;
    const from = { resume: { seq: at.seq, offset: at.offset, line: at.line }, startOffset: at.offset!, startLine: at.line! };
    expect(await parseFrom(c, [], { ...from, learned })).toEqual(full.slice(2));
    expect(await parseFrom(c, [], from)).toEqual(full.slice(2));
  });
});

describe('CsvChunkParser', () => {
  const parse = (text: string | Buffer, options: Partial<ConstructorParameters<typeof CsvChunkParser>[0]> = {}, chunk = 0) => {
    const buf = typeof text === 'string' ? Buffer.from(text) : text;
    const parser = new CsvChunkParser({ source: 't.csv', ...options });
    const out: SourceRecord[] = [];
    const size = chunk || buf.length || 1;
    for (let i = 0; i < buf.length; i += size) out.push(...parser.push(buf.subarray(i, i + size)));
    out.push(...parser.end());
    return out;
  };

  it('CR-only (classic Mac) files: records split at CR, lines counted by CR', () => {
    const records = parse('id,name\r1,"A\rB"\r\r2,Bo\r', {}, 3);
    expect(records.map((r) => [r.row, r.pos.line, r.pos.offset, r.raw])).toEqual([
      [{ id: '1', name: 'A\rB' }, 2, 8, '1,"A\rB"'],
      [{ id: '2', name: 'Bo' }, 5, 17, '2,Bo'],
    ]);
  });

  it('line break detection: a CR inside a quoted header field (a two-byte quote, a delimiter of the same lead byte)', () => {
    for (const chunk of [0, 1]) {
      const records = parse('x§«a\rb«\n1§2\n', { delimiter: '§', quote: '«' }, chunk);
      expect(records.map((r) => [r.row, r.pos.line])).toEqual([[{ x: '1', 'a\rb': '2' }, 2]]);
    }
  });

  it('LF and CRLF lines may be mixed in one file', () => {
    const records = parse('id,name\r\n1,Ann\n2,"B\r\nb"\r\n3,Cy');
    expect(records.map((r) => [r.row.name, r.pos.line, r.raw])).toEqual([
      ['Ann', 2, '1,Ann'],
      ['B\r\nb', 3, '2,"B\r\nb"'],
      ['Cy', 5, '3,Cy'],
    ]);
  });

  it('a file ending with half a CRLF: the lone CR is a line break, not a record', () => {
    for (const chunk of [0, 1]) {
      expect(parse('a,b\r\n1,2\r\n\r', {}, chunk).map((r) => [r.row, r.raw])).toEqual([[{ a: '1', b: '2' }, '1,2']]);
      expect(parse('a,b\r\n1,2\r', {}, chunk).map((r) => [r.row, r.raw])).toEqual([[{ a: '1', b: '2' }, '1,2']]);
    }
  });

  it('parse error on a later line of a multi-line record: the first line is rejected, parsing goes on from the second', () => {
    const text = 'id,note\n1,"one\n2,two"x\n3,three\n';
    for (const chunk of [0, 1, 5]) {
      const records = parse(text, {}, chunk);
      expect(records.map((r) => [r.pos.line, r.pos.offset, r.error?.code ?? r.row.note, r.raw])).toEqual([
        [2, 8, 'CSV_PARSE_ERROR', '1,"one'],
        [3, 15, 'CSV_PARSE_ERROR', '2,two"x'],
        [4, 23, 'three', '3,three'],
      ]);
      expect(records[0]!.error!.message).toBe(
        'Invalid Closing Quote: got "x" after the closing quote of field 1, instead of a delimiter or the end of the record (record starting at line 2; the line is skipped)',
      );
      expect(records[1]!.error!.message).toBe('Invalid Opening Quote: a quote is found on field 1, value is "two" (record starting at line 3; the line is skipped)');
    }
  });

  it('unclosed quote: one record to the end of the file, raw text cut at MAX_RAW_CHARS, the rest discarded', () => {
    const tail = 'x'.repeat(99) + '\n';
    const text = 'id,note\n1,ok\n2,"never closed\n' + tail.repeat(3000);
    const records = parse(text, {}, 4096);
    expect(records).toHaveLength(2);
    const bad = records[1]!;
    expect(bad.pos).toEqual({ seq: 1, source: 't.csv', line: 3, offset: 13 });
    expect(bad.row).toEqual({});
    expect(bad.raw).toHaveLength(MAX_RAW_CHARS + 1);
    expect(bad.raw!.startsWith('2,"never closed\nxxx')).toBe(true);
    expect(bad.raw!.endsWith('…')).toBe(true);
    expect(bad.error).toEqual({
      code: 'CSV_UNCLOSED_QUOTE',
      message: 'Unclosed quote: the record starting at line 3 runs to the end of the file (3001 lines); the rest of the file cannot be parsed',
    });
  });

  it('a quoted field of 2 MB arriving in 4 KiB chunks', () => {
    const big = 'é"'.repeat(500_000);
    const text = `id,note\n1,"${big.replaceAll('"', '""')}"\n2,x\n`;
    const records = parse(text, {}, 4096);
    expect(records.map((r) => [r.row.id, r.row.note === big, r.pos.line])).toEqual([
      ['1', true, 2],
      ['2', false, 3],
    ]);
  });

  it('a header that cannot be parsed fails the file with SOURCE_READ', () => {
    expect(() => parse('id,"na"me\n1,2\n')).toThrow(expect.objectContaining({ code: 'SOURCE_READ', message: expect.stringContaining('Invalid Closing Quote') }));
    expect(() => parse('id,"name\n1,2\n')).toThrow(expect.objectContaining({ code: 'SOURCE_READ', message: expect.stringContaining('(line 1)') }));
  });

  it('raw: errors — raw text only on records with an error', () => {
    const records = parse('a,b\n1,2\n3\n', { raw: 'errors' });
    expect(records.map((r) => r.raw)).toEqual([undefined, '3']);
    expect('raw' in records[0]!).toBe(false);
  });

  it('BOM: removed at offset 0 only, also when it arrives one byte at a time', () => {
    const text = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('id\n1\n\ufeff2\n')]);
    const records = parse(text, {}, 1);
    expect(records.map((r) => [r.row.id, r.pos.offset])).toEqual([
      ['1', 6],
      ['\ufeff2', 8],
    ]);
  });

  it('startOffset / startLine: parsing starts mid-file with the given columns', () => {
    const records = parse('3,Cy\n\n4,Dee\n', { header: ['id', 'name'], startOffset: 100, startLine: 7, firstSeq: 5 });
    expect(records.map((r) => r.pos)).toEqual([
      { seq: 5, source: 't.csv', line: 7, offset: 100 },
      { seq: 6, source: 't.csv', line: 9, offset: 106 },
    ]);
  });

  it('options: invalid delimiter, quote or escape are CONFIG_INVALID', () => {
    expect(() => new CsvChunkParser({ source: 'x', delimiter: '' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new CsvChunkParser({ source: 'x', quote: '""' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new CsvChunkParser({ source: 'x', escape: '\n' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
