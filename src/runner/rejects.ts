/**
 * The rejects of a run: the file (writer and reader) and the policy that routes rejects into it.
 *
 * The rejects file: every record that was rejected (extract, transform or load stage), with its source location,
 * code and message, so it can be found and fixed.
 *
 * - The file is created lazily, when the first reject arrives: a run without rejects leaves no file (and, with
 *   `append: false`, leaves an older file from a previous run untouched until a new reject arrives, which then
 *   truncates it). Parent directories are created then.
 * - `write()` queues the batch and returns a promise resolved once it is durable: written in full (a short write,
 *   as when the disk fills up, is continued and then fails) and flushed to the disk (`fdatasync`). Only then may
 *   the runner count its rows as done. Batches queued while a flush is under way go out together in the next one.
 *   The promise never rejects, so not awaiting it is safe. A write failure (REJECTS_WRITE) is kept: `error` holds
 *   it, the next `write()` throws it synchronously and `close()` rejects with it.
 * - `close()` resolves after everything queued is written, fsync'ed and the file closed.
 *
 * Messages pass through `redact` (an API key quoted in an error message never reaches the file); row data is
 * written as read.
 *
 * Formats: NDJSON, one object per reject with all `Reject` fields (absent fields omitted); CSV made for a person
 * with a spreadsheet: `reject_code,reject_message,reject_field`, then the row's original columns as columns (the
 * source's header, learned from the first reject), then `reject_source,reject_line,reject_seq,reject_last_seq,
 * reject_stage,reject_offset,reject_raw,reject_extra` (`reject_raw`: the record's text when it has no row or could not
 * be parsed; `reject_extra`: as JSON, the row's fields that are not among the columns, and original columns named
 * `reject_…`; `reject_last_seq` only for an item made of several rows: see {@link rejectedRowSeqs}). The header is
 * written when the file is created (or when appending to an empty file). `--from-rejects` reads either format back.
 */
import { mkdir, open, readFile, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { AckTracker } from '../checkpoint/index.js';
import { EtlError, isEtlError, redact } from '../core/errors.js';
import type { Reject } from '../core/record.js';

/** Options of {@link openRejects}. */
export interface RejectsOptions {
  /** Absolute path of the rejects file. */
  path: string;
  /** @default ndjson */
  format?: 'ndjson' | 'csv';
  /** Append to an existing file (resumed runs). @default false */
  append?: boolean;
  /** Without `append`: replace a file already at the path (else the first write fails rather than replace it). @default false */
  replace?: boolean;
  /**
   * CSV: the original columns, when known before the first reject (an appended file's header). Else those of the
   * first reject's source (`columnsOf`), else its row's fields.
   */
  columns?: readonly string[];
  /** CSV: the columns of a source's rows (its header), when the run has seen them. */
  columnsOf?: (source: string) => readonly string[] | undefined;
}

/** An open rejects file. */
export interface RejectsWriter {
  readonly path: string;
  /** Rejects written (queued) so far. */
  readonly count: number;
  /** The first write failure (code REJECTS_WRITE), once a write has failed. */
  readonly error: EtlError | undefined;
  write(rejects: readonly Reject[]): Promise<void>;
  close(): Promise<void>;
}

/** CSV columns before the row's own columns: what to fix. */
export const REJECT_CSV_LEAD = ['reject_code', 'reject_message', 'reject_field'] as const;
/** CSV columns after the row's own columns: where it came from. */
export const REJECT_CSV_TAIL = ['reject_source', 'reject_line', 'reject_seq', 'reject_last_seq', 'reject_stage', 'reject_offset', 'reject_raw', 'reject_extra'] as const;

/** Whether a CSV rejects column is one of ours, not one of the row's. */
export const isRejectColumn = (name: string): boolean => name.startsWith('reject_');

/** A row value as a CSV cell: text as is, numbers and booleans as written, dates ISO, objects as JSON. */
export function cellOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as number | boolean | bigint);
}

const NDJSON_KEYS = ['stage', 'code', 'message', 'source', 'line', 'offset', 'seq', 'lastSeq', 'field', 'row', 'raw'] as const;

/** One reject as an NDJSON line (with the trailing newline). */
export function rejectToNdjson(reject: Reject): string {
  const out: Record<string, unknown> = {};
  for (const key of NDJSON_KEYS) {
    const value = reject[key];
    if (value !== undefined) out[key] = key === 'message' ? redact(value as string) : value;
  }
  return JSON.stringify(out) + '\n';
}

/** Rejects as CSV lines (each with its trailing newline) under a header with these original `columns`. */
export function rejectsToCsv(rejects: readonly Reject[], columns: readonly string[]): string {
  const known = new Set(columns);
  const records = rejects.map((r) => {
    const row = r.row ?? {};
    let extra: Record<string, unknown> | undefined;
    for (const key of Object.keys(row)) {
      if (known.has(key)) continue;
      (extra ??= {})[key] = row[key];
    }
    return [
      r.code,
      redact(r.message),
      r.field,
      ...columns.map((c) => cellOf(row[c])),
      r.source,
      r.line,
      r.seq,
      r.lastSeq,
      r.stage,
      r.offset,
      r.row === undefined || r.stage === 'extract' ? r.raw : undefined,
      extra === undefined ? undefined : JSON.stringify(extra),
    ];
  });
  return stringify(records, { eof: true });
}

/** The header line of a CSV rejects file with these original columns. */
function csvHeader(columns: readonly string[]): string {
  return stringify([[...REJECT_CSV_LEAD, ...columns, ...REJECT_CSV_TAIL]], { eof: true });
}

class Rejects implements RejectsWriter {
  readonly path: string;
  readonly #format: 'ndjson' | 'csv';
  readonly #append: boolean;
  readonly #replace: boolean;
  readonly #columnsOf: RejectsOptions['columnsOf'];
  /** CSV: the original columns of the header (fixed by the first write). */
  #columns: readonly string[] | undefined;
  #count = 0;
  #handle: Promise<FileHandle> | undefined;
  #tail: Promise<void> = Promise.resolve();
  /** Text queued and not yet taken by a flush. */
  #queued = '';
  #error: EtlError | undefined;
  #closed = false;

  constructor(options: RejectsOptions) {
    this.path = options.path;
    this.#format = options.format ?? 'ndjson';
    this.#append = options.append ?? false;
    this.#replace = options.replace ?? false;
    this.#columns = options.columns;
    this.#columnsOf = options.columnsOf;
  }

  get count(): number {
    return this.#count;
  }

  get error(): EtlError | undefined {
    return this.#error;
  }

  write(rejects: readonly Reject[]): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#closed) throw new EtlError('INTERNAL', `Rejects file ${this.path} is closed`);
    if (rejects.length === 0) return this.#tail;
    this.#count += rejects.length;
    let text = '';
    if (this.#format === 'csv') text = rejectsToCsv(rejects, (this.#columns ??= this.#firstColumns(rejects)));
    else for (const r of rejects) text += rejectToNdjson(r);
    if (this.#handle === undefined) {
      this.#handle = this.#open();
      this.#handle.catch(() => {}); // handled in the write chain / close()
    }
    this.#queued += text;
    this.#tail = this.#tail.then(() => this.#flush());
    return this.#tail;
  }

  /** Write everything queued (an earlier flush may have taken it already) and fdatasync it. */
  async #flush(): Promise<void> {
    if (this.#error || this.#queued === '') return;
    const data = Buffer.from(this.#queued);
    this.#queued = '';
    try {
      const h = await this.#handle!;
      await writeFully(h, data);
      await h.datasync();
    } catch (error) {
      this.#fail(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) {
      await this.#tail;
      if (this.#error) throw this.#error;
      return;
    }
    this.#closed = true;
    await this.#tail;
    if (this.#handle) {
      let h: FileHandle | undefined;
      try {
        h = await this.#handle;
        await h.sync();
      } catch (error) {
        this.#fail(error);
      } finally {
        await h?.close().catch(() => {});
      }
    }
    if (this.#error) throw this.#error;
  }

  /** The original columns of a new CSV file: its first reject's source's header, else that reject's row's fields. */
  #firstColumns(rejects: readonly Reject[]): string[] {
    const first = rejects.find((r) => r.row !== undefined) ?? rejects[0]!;
    const columns = this.#columnsOf?.(first.source) ?? Object.keys(first.row ?? {});
    return columns.filter((c) => !isRejectColumn(c)); // a row's own `reject_…` column goes to reject_extra
  }

  async #open(): Promise<FileHandle> {
    await mkdir(dirname(this.path), { recursive: true });
    // a new file is created, never truncated: a run does not replace an earlier run's rejects (see rejects-path.ts)
    const handle = await open(this.path, this.#append ? 'a' : this.#replace ? 'w' : 'wx');
    if (this.#format === 'csv') {
      const size = this.#append ? (await stat(this.path)).size : 0;
      if (size === 0) await writeFully(handle, Buffer.from(csvHeader(this.#columns ?? [])));
    }
    return handle;
  }

  #fail(error: unknown): void {
    this.#error ??= new EtlError('REJECTS_WRITE', `Cannot write the rejects file ${this.path}: ${(error as Error).message}`, {
      cause: error,
      context: { file: this.path },
    });
  }
}

/** Write all of `data`: `write` may write less than asked (the disk filled up); the rest then fails with ENOSPC. */
async function writeFully(handle: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done);
    if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device (nothing written)'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/** Open a rejects file (created on the first reject). */
export function openRejects(options: RejectsOptions): RejectsWriter {
  return new Rejects(options);
}

// ---------------------------------------------------------------- reader

/** The fields of a written reject that identify it across a crash (see {@link rejectKey}). */
interface RejectKeyFields {
  seq: unknown;
  lastSeq?: unknown;
  stage: unknown;
  code: unknown;
  source?: unknown;
  field?: unknown;
  row?: unknown;
}

/**
 * What identifies a reject across a crash: `(seq, stage, code)`. An import error of a bulk job resumed from the
 * checkpoint has no source position (seq -1; the job's rows are not in the checkpoint), so for those the job
 * (`source`), the field and the original payload (`row`) tell them apart.
 */
function rejectKey(r: RejectKeyFields): string {
  const seq = Number(r.seq);
  const base = `${seq}:${String(r.stage)}:${String(r.code)}`;
  if (seq >= 0) return base;
  return `${base}:${String(r.source ?? '')}:${String(r.field ?? '')}:${rowKey(r.row)}`;
}

/** A row as the key of a reject without a position: its fields as CSV cells, so a row read back from CSV matches. */
function rowKey(row: unknown): string {
  if (!row || typeof row !== 'object') return 'null';
  const cells: [string, string][] = [];
  for (const [k, v] of Object.entries(row as Record<string, unknown>)) {
    const cell = cellOf(v);
    if (cell !== undefined && cell !== '') cells.push([k, cell]);
  }
  return JSON.stringify(cells.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The rejects an earlier (interrupted) run wrote: their keys, and the rejected rows among them. */
export interface WrittenRejects {
  keys: Set<string>;
  /** A row's seq, or the key of a reject without a position (it counts on its own). */
  seqs: Set<number | string>;
  /** Rejected rows by code. */
  tally: RejectTally;
  /** CSV: the original columns of the file's header. */
  columns?: string[];
}

/** One reject, to show as an example of its code. */
export interface RejectExample {
  source: string;
  line?: number;
  field?: string;
  message: string;
}

/** Rejected rows counted by code, with the first reject of each code as its example. */
export class RejectTally {
  readonly #counts = new Map<string, number>();
  readonly #examples = new Map<string, RejectExample>();

  add(code: string, rows: number, reject: { source?: unknown; line?: unknown; field?: unknown; message?: unknown }): void {
    if (rows <= 0) return;
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + rows);
    if (!this.#examples.has(code)) {
      const line = Number(reject.line);
      this.#examples.set(code, {
        source: String(reject.source ?? ''),
        ...(reject.line !== undefined && reject.line !== '' && Number.isFinite(line) ? { line } : {}),
        ...(typeof reject.field === 'string' && reject.field !== '' ? { field: reject.field } : {}),
        message: redact(String(reject.message ?? '')),
      });
    }
  }

  /** Rows by code, the most common first. */
  byCode(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
  }

  /** The first reject of each code. */
  examples(): Record<string, RejectExample> {
    return Object.fromEntries([...this.#examples].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** `INVALID_DATE 98 (e.g. orders.csv:2 Created at: …)`, for the `n` most common codes. */
  describe(n: number): string {
    const examples = this.examples();
    return Object.entries(this.byCode())
      .slice(0, n)
      .map(([code, count]) => `${code} ${count} (e.g. ${describeExample(examples[code]!)})`)
      .join(', ');
  }
}

/** `orders.csv:2 (Created at): message` */
export function describeExample(e: RejectExample): string {
  const field = e.field === undefined || e.message.startsWith(`${e.field}:`) ? '' : ` (${e.field})`; // the message may name it
  return `${e.source}${e.line === undefined ? '' : `:${e.line}`}${field}: ${e.message}`;
}

/** A row of a CSV rejects file without our columns: the original columns, and `reject_extra`'s fields. */
export function csvRejectRow(record: Record<string, string | undefined>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (!isRejectColumn(k)) row[k] = v ?? '';
  const extra = parseJson(record.reject_extra);
  if (extra && typeof extra === 'object') Object.assign(row, extra);
  return row;
}

/** A CSV rejects file's record; also the columns of rejects files written before the original columns were kept. */
function csvKeyFields(r: Record<string, string | undefined>): RejectKeyFields & { line?: string; message?: string } {
  if (r.reject_code === undefined) {
    return { seq: r.seq, lastSeq: r.last_seq, stage: r.stage, code: r.code, source: r.source, line: r.line, message: r.message, field: r.field || undefined, row: parseJson(r.row) };
  }
  return {
    seq: r.reject_seq,
    lastSeq: r.reject_last_seq,
    stage: r.reject_stage,
    code: r.reject_code,
    source: r.reject_source,
    line: r.reject_line,
    message: r.reject_message,
    field: r.reject_field || undefined,
    row: csvRejectRow(r),
  };
}

function keyFieldsOf(text: string, format: 'csv' | 'ndjson'): Array<RejectKeyFields & { line?: unknown; message?: unknown }> {
  if (format === 'csv') {
    return (parseCsv(text, { columns: true, relax_column_count: true, bom: true }) as Record<string, string | undefined>[]).map(csvKeyFields);
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as RejectKeyFields];
      } catch {
        return []; // unreadable: its reject is written again
      }
    });
}

/**
 * The keys of every reject an interrupted run already wrote, so a resumed run does not repeat them, and the
 * rejected rows among them. A torn last line (the crash cut a write short) is cut off the file, so that what the
 * resumed run appends starts on a line of its own; its reject is written again.
 */
export async function readWrittenRejects(file: string, format: 'csv' | 'ndjson'): Promise<WrittenRejects> {
  const keys = new Set<string>();
  const seqs = new Set<number | string>();
  const tally = new RejectTally();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { keys, seqs, tally };
  }
  if (text !== '' && !text.endsWith('\n')) {
    text = text.slice(0, text.lastIndexOf('\n') + 1);
    await truncate(file, Buffer.byteLength(text));
  }
  for (const r of keyFieldsOf(text, format)) {
    const key = rejectKey(r);
    keys.add(key);
    const seq = Number(r.seq);
    const before = seqs.size;
    if (!(seq >= 0)) seqs.add(key);
    else for (const s of rejectedRowSeqs({ seq, lastSeq: r.lastSeq === undefined || r.lastSeq === '' ? undefined : Number(r.lastSeq) })) seqs.add(s);
    tally.add(String(r.code), seqs.size - before, r);
  }
  const columns = format === 'csv' && text !== '' ? csvHeaderColumns(text) : undefined;
  return { keys, seqs, tally, ...(columns ? { columns } : {}) };
}

/** The original columns named by a CSV rejects file's header (none for a file of the earlier layout). */
function csvHeaderColumns(text: string): string[] | undefined {
  const header = (parseCsv(text, { to_line: 1, relax_column_count: true, bom: true }) as string[][])[0];
  if (!header?.includes('reject_code')) return undefined;
  return header.filter((c) => !isRejectColumn(c));
}

// ---------------------------------------------------------------- policy

/** Rejects queued for the rejects file before the read loop waits for them to be written. */
const REJECTS_BACKLOG = 1000;

/** Options of {@link openRunRejects}. */
export interface RunRejectsOptions {
  path: string;
  format: 'csv' | 'ndjson';
  /** A resumed run appends, skipping rejects the interrupted run already wrote; a fresh run starts a new file. */
  resumed: boolean;
  /**
   * A fresh run removes a file already at the path (a list of the latest run only, such as the skipped rows). Not
   * for rejects: a run never replaces an earlier run's rejects. @default false
   */
  replace?: boolean;
  /** The checkpoint's tracker: rows stay held until their reject is in the file (see {@link RunRejects.rewind}). */
  tracker: AckTracker;
  /** seq of the first record this run reads (rejects before it are of rows the checkpoint already passed). */
  firstSeq: number;
  /** Load-stage reject codes of items the destination acknowledged earlier (the tracker settled them then). */
  settledBeforeReject?: readonly string[];
  /** `rejects.maxRejects`: the run fails once more rows than this are rejected. */
  maxRejects?: number;
  /** CSV: the columns of a source's rows (its header), when the run has seen them. */
  columnsOf?: (source: string) => readonly string[] | undefined;
  /** Called with an error that must fail the run (a failed write, too many rejects). */
  fail(error: EtlError): void;
}

/**
 * A run's rejects policy: deduplication (a resumed run skips rejects already written; a row rejected several times
 * counts once), holding the checkpoint until a reject is in the file, back-pressure on the read loop, and
 * `maxRejects`.
 */
export class RunRejects {
  readonly path: string;
  readonly #writer: RejectsWriter;
  readonly #previous: WrittenRejects;
  #options: RunRejectsOptions;
  readonly #settledBefore: ReadonlySet<string>;
  // Transform and extract rejects name each record once per run, so they are counted, not remembered: a run
  // rejecting millions of rows must not hold a key and a seq for each (~80 bytes per row, times V8's heap slack).
  // Load rejects can repeat (several items of one group) and are deduplicated through the sets.
  #onceRejects = 0;
  // Writes are chained; the read loop awaits the chain's tail every REJECTS_BACKLOG rejects, so a source whose
  // rows are mostly rejected cannot queue unbounded text in memory (5M rows, 80% rejected: OOM at 4 GB).
  #tail: Promise<void> | undefined;
  #unawaited = 0;
  #error: EtlError | undefined;

  constructor(writer: RejectsWriter, previous: WrittenRejects, options: RunRejectsOptions) {
    this.path = writer.path;
    this.#writer = writer;
    this.#previous = previous;
    this.#options = options;
    this.#settledBefore = new Set(options.settledBeforeReject ?? []);
  }

  /** Rows rejected so far (this run and the interrupted runs it continues). */
  get count(): number {
    return this.#previous.seqs.size + this.#onceRejects;
  }

  /** Rejected rows by code, with an example of each. */
  get tally(): RejectTally {
    return this.#previous.tally;
  }

  /** Rejects written to the file (this process). */
  get written(): number {
    return this.#writer.count;
  }

  /** The last write queued (resolved once it and every write before it are durable), if any. */
  get lastWrite(): Promise<void> | undefined {
    return this.#tail;
  }

  /** The write failure (REJECTS_WRITE) that fails the run, if any. */
  get error(): EtlError | undefined {
    return this.#error;
  }

  /**
   * Route rejects to the file. The checkpoint must not pass a rejected row before its reject is in the file (else a
   * failed write loses it for good): each write holds its first row in the tracker until the write succeeded. A
   * failed write fails the run (REJECTS_WRITE) and its hold is never released, so the next run re-reads those rows.
   */
  route(list: readonly Reject[]): void {
    const hold = this.#hold(list);
    const fresh = this.#fresh(list);
    if (fresh.length > 0) {
      try {
        const tail = (this.#tail = this.#writer.write(fresh));
        this.#unawaited += fresh.length;
        if (hold !== undefined) {
          void tail.then(() => {
            if (this.#writer.error) this.#failed(this.#writer.error);
            else this.#options.tracker.settled(hold);
          });
        }
      } catch (err) {
        this.#failed(err);
      }
    } else if (hold !== undefined) this.#options.tracker.settled(hold);
    const max = this.#options.maxRejects;
    if (max !== undefined && this.count > max) {
      // say what was rejected: the run stops for the rows' own reasons (INVALID_DATE…), not a Klaviyo refusal
      const message = `more than ${max} rows rejected (rejects.maxRejects: ${max}); stopping. Most common: ${this.tally.describe(3)}. All of them: ${this.path}`;
      this.#options.fail(new EtlError('TOO_MANY_REJECTS', message, { context: { file: this.path, byCode: this.tally.byCode() } }));
    }
  }

  /** Reading starts elsewhere (a resume moved back): route into this tracker, from this seq. */
  rewind(tracker: AckTracker, firstSeq: number): void {
    this.#options = { ...this.#options, tracker, firstSeq };
  }

  /** Back-pressure: a promise to await when too many rejects are queued unwritten, else undefined. */
  backlog(): Promise<void> | undefined {
    if (this.#unawaited < REJECTS_BACKLOG || !this.#tail) return undefined;
    this.#unawaited = 0;
    return this.#tail;
  }

  /** Write what is queued, fsync and close the file; a failure fails the run. */
  async close(): Promise<void> {
    await this.#writer.close().catch((err: unknown) => this.#failed(err));
  }

  /** Hold the first row the rejects name until they are written; undefined when there is nothing to hold. */
  #hold(list: readonly Reject[]): number | undefined {
    let hold: number | undefined;
    for (const r of list) {
      if (r.seq >= this.#options.firstSeq && !this.#settledBefore.has(r.code) && (hold === undefined || r.seq < hold)) hold = r.seq;
    }
    if (hold === undefined) return undefined;
    try {
      this.#options.tracker.produced(hold);
      return hold;
    } catch {
      return undefined; // already behind the checkpoint position
    }
  }

  /** Settle load rejects in the tracker and keep the rejects not written before, counting each row once. */
  #fresh(list: readonly Reject[]): Reject[] {
    const { keys, seqs, tally } = this.#previous;
    const fresh: Reject[] = [];
    for (const r of list) {
      if (r.stage === 'load' && !this.#settledBefore.has(r.code) && r.seq >= this.#options.firstSeq) this.#options.tracker.settled(r.seq);
      const key = rejectKey(r);
      if (keys.has(key)) continue; // written by the interrupted run before this resume
      fresh.push(r);
      if (r.stage !== 'load' && r.seq >= 0 && !seqs.has(r.seq)) {
        this.#onceRejects++;
        tally.add(r.code, 1, r);
        continue;
      }
      keys.add(key);
      const before = seqs.size;
      if (r.seq < 0) seqs.add(key); // an import error without a position counts on its own
      else for (const seq of rejectedRowSeqs(r)) seqs.add(seq); // every row of a multi-row item
      tally.add(r.code, seqs.size - before, r);
    }
    return fresh;
  }

  #failed(err: unknown): void {
    this.#error ??= isEtlError(err) ? err : new EtlError('REJECTS_WRITE', `Cannot write the rejects file: ${String(err)}`);
    this.#options.fail(this.#error);
  }
}

/**
 * Open a run's rejects file: a resumed run reads what the interrupted attempt wrote and appends; a fresh run creates
 * a new file at its first reject (its path is one no earlier run wrote: see src/core/rejects-path.ts).
 */
export async function openRunRejects(options: RunRejectsOptions): Promise<RunRejects> {
  const previous: WrittenRejects = options.resumed
    ? await readWrittenRejects(options.path, options.format)
    : { keys: new Set<string>(), seqs: new Set<number | string>(), tally: new RejectTally() };
  // a path that cannot be removed (its directory is a file…) fails the run when the first line is written
  if (options.replace && !options.resumed) await rm(options.path, { force: true }).catch(() => undefined);
  const writer = openRejects({
    path: options.path,
    format: options.format,
    append: options.resumed,
    replace: options.replace ?? false,
    ...(previous.columns ? { columns: previous.columns } : {}),
    columnsOf: options.columnsOf,
  });
  return new RunRejects(writer, previous, options);
}

/**
 * The records a reject makes rejected rows: `seq`, and for an item made of several rows (a grouped order's event)
 * every record up to `lastSeq`. A row counts as loaded only if every item it produced was accepted: one rejected
 * item of a group rejects each of its rows, even those whose other items were accepted.
 */
export function rejectedRowSeqs(reject: { seq: number; lastSeq?: number | undefined }): number[] {
  const last = reject.lastSeq !== undefined && reject.lastSeq > reject.seq ? reject.lastSeq : reject.seq;
  const seqs: number[] = [];
  for (let s = reject.seq; s <= last; s++) seqs.push(s);
  return seqs;
}
