/**
 * `run --from-rejects <file>`: the rows of a rejects file (this tool's NDJSON or CSV, as written or as saved again by
 * a spreadsheet) become the run's input, in file order, each with the source and line it was first read from. The
 * CSV may come back from a spreadsheet with a byte-order mark, `;` or tab delimiters (the header's `reject_code`
 * tells which) and Windows-1252 text instead of UTF-8. A row listed several times (a row with several import errors)
 * is sent once. Rows that cannot be sent through the mapping are refused before anything is sent: a reject of an item
 * made of several rows (a grouped order Klaviyo refused: the file holds its first row only) and an import error
 * without a source row (a job polled after a resume: the file holds the profile as submitted).
 *
 * The file is read whole: a rejects file holds the rows of a run that went wrong, not a night's input.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { EtlError } from '../core/errors.js';
import type { SourceRecord } from '../core/record.js';
import type { SourceReader } from '../extract/types.js';
import { csvRejectRow } from './rejects.js';

/** One reject as read back: what the resend needs. */
interface ReadBack {
  /** 1-based line (NDJSON) or record number + 1 (CSV, after the header) in the rejects file. */
  at: number;
  row?: Record<string, unknown>;
  source?: string;
  line?: number;
  seq?: number;
  lastSeq?: number;
}

const num = (v: unknown): number | undefined => {
  if (v === undefined || v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

/** UTF-8, else Windows-1252 (what a spreadsheet saves as "CSV" on Windows). */
function decode(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

function readCsv(text: string): ReadBack[] {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const delimiter = /reject_code"?;/.test(firstLine) ? ';' : /reject_code"?\t/.test(firstLine) ? '\t' : ',';
  const records = parseCsv(text, { columns: true, bom: true, delimiter, relax_column_count: true, skip_empty_lines: true }) as Record<string, string | undefined>[];
  return records.map((r, i) => {
    // a file of the earlier layout holds the row as JSON in `row`
    const row = r.reject_code === undefined && r.row !== undefined ? (JSON.parse(r.row || 'null') as Record<string, unknown> | null) ?? undefined : csvRejectRow(r);
    return {
      at: i + 2,
      row,
      source: r.reject_source ?? r.source,
      line: num(r.reject_line ?? r.line),
      seq: num(r.reject_seq ?? r.seq),
      lastSeq: num(r.reject_last_seq ?? r.last_seq),
    };
  });
}

function readNdjson(text: string, file: string): ReadBack[] {
  const out: ReadBack[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: { row?: unknown; raw?: unknown; source?: unknown; line?: unknown; seq?: unknown; lastSeq?: unknown };
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      throw new EtlError('USAGE', `--from-rejects: ${file}:${i + 1} is not a JSON line`);
    }
    const row = r.row && typeof r.row === 'object' && !Array.isArray(r.row) ? (r.row as Record<string, unknown>) : undefined;
    out.push({ at: i + 1, row, source: typeof r.source === 'string' ? r.source : undefined, line: num(r.line), seq: num(r.seq), lastSeq: num(r.lastSeq) });
  });
  return out;
}

/** A row to send again, with where it was first read. */
export interface ResendRow {
  row: Record<string, unknown>;
  source: string;
  line?: number;
}

/** The rows a rejects file sends again, one per rejected row, in file order; USAGE when some cannot be sent. */
export async function readRejectsFile(file: string): Promise<ResendRow[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new EtlError('USAGE', `--from-rejects: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const text = decode(bytes);
  const csv = /\.csv$/i.test(file) || /^\uFEFF?"?(reject_code|source)"?[,;\t]/.test(text);
  const all = csv ? readCsv(text) : readNdjson(text, file);
  const problems: string[] = [];
  const seen = new Set<number>();
  const rows: ResendRow[] = [];
  for (const r of all) {
    if (r.seq !== undefined && r.seq < 0) problems.push(`${r.at}: an import error without its source row (find the row by its email or phone, or re-read the source)`);
    else if (r.lastSeq !== undefined && r.seq !== undefined && r.lastSeq > r.seq) problems.push(`${r.at}: one item of several rows (a grouped order); the file holds its first row only (fix the source and run with --full-refresh)`);
    else if (r.row === undefined) problems.push(`${r.at}: no row`);
    if (problems.length > 0 || r.row === undefined) continue;
    if (r.seq !== undefined) {
      if (seen.has(r.seq)) continue; // the same row rejected twice (several import errors): sent once
      seen.add(r.seq);
    }
    rows.push({ row: r.row, source: r.source ?? path.basename(file), ...(r.line === undefined ? {} : { line: r.line }) });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).map((p) => `${path.basename(file)}:${p}`);
    throw new EtlError('USAGE', `--from-rejects: ${problems.length} reject(s) cannot be sent again through the mapping; remove them from the file and run again:\n  ${shown.join('\n  ')}${problems.length > 5 ? '\n  …' : ''}`);
  }
  return rows;
}

/** A source reading the rows of a rejects file (seq: their order in it; source and line: where they were first read). */
export function rejectsSource(rows: readonly ResendRow[], limit?: number): SourceReader {
  async function* records(): AsyncGenerator<SourceRecord> {
    const n = limit === undefined ? rows.length : Math.min(limit, rows.length);
    for (let seq = 0; seq < n; seq++) {
      const r = rows[seq]!;
      yield { pos: { seq, source: r.source, ...(r.line === undefined ? {} : { line: r.line }) }, row: r.row };
    }
  }
  return { records };
}
