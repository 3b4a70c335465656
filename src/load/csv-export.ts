/**
 * Export writers: exported rows → a CSV file (local, or an S3 object), atomically and resumably.
 *
 * - The file is written as `<file>.partial` and renamed to `<file>` only when the run completes, so a reader never
 *   sees half an export. `.gz` paths are gzip-compressed.
 * - Rows are written in chunks. After each chunk is written and fsync'ed, one line `<lastSeq> <bytes>` is appended
 *   (and fsync'ed) to `<file>.partial.progress`; only then are the chunk's rows acknowledged (so the checkpoint
 *   never covers a row that is not durably in the file). A resumed run truncates the partial file back to the
 *   last chunk the checkpoint covers and appends from there: every member ends up in the file exactly once.
 * - A gzip file is a series of gzip members (one per chunk; gunzip, zcat and Node read them as one stream), so it
 *   can be truncated at a chunk boundary and appended to.
 * - S3: the same partial file is staged locally (in the pipeline's state directory) and uploaded with
 *   `@aws-sdk/lib-storage` `Upload` (a multipart stream) when the run completes; the object appears only then.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import type * as libStorage from '@aws-sdk/lib-storage';
import { stringify } from 'csv-stringify/sync';
import { EtlError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { assertItemKind, type ExportRowItem, type LoadItem } from '../core/record.js';
import type { LoadContext, Loader } from './types.js';

const libStorageSdk = lazyModule<typeof libStorage>('@aws-sdk/lib-storage');

/** Options of {@link ExportFile.open}. */
export interface ExportFileOptions {
  /** Where the partial file is written (`<final>.partial`); its progress log is `<partialPath>.progress`. */
  partialPath: string;
  /** Output columns, in order (the header line). */
  columns: readonly string[];
  /** Field delimiter. @default "," */
  delimiter?: string;
  /** Gzip-compress. @default partialPath ends with `.gz.partial` */
  gzip?: boolean;
  /**
   * Resume an interrupted export: keep the rows of the chunks whose last seq is ≤ `afterSeq` (the checkpoint's
   * position; undefined when nothing was acknowledged) and drop the rest. Without `resume` the file starts over.
   */
  resume?: { afterSeq: number | undefined };
}

/** A durable, append-only CSV partial file with a progress log. */
export class ExportFile {
  readonly partialPath: string;
  readonly #progressPath: string;
  readonly #columns: readonly string[];
  readonly #delimiter: string;
  readonly #gzip: boolean;
  #handle: FileHandle | undefined;
  #progress: FileHandle | undefined;
  #bytes = 0;
  #rows = 0;

  private constructor(options: ExportFileOptions) {
    this.partialPath = options.partialPath;
    this.#progressPath = options.partialPath + '.progress';
    this.#columns = options.columns;
    this.#delimiter = options.delimiter ?? ',';
    this.#gzip = options.gzip ?? /\.gz\.partial$/i.test(options.partialPath);
  }

  /** Open (create, or truncate to the resume point) the partial file. */
  static async open(options: ExportFileOptions): Promise<ExportFile> {
    const file = new ExportFile(options);
    await file.#open(options.resume);
    return file;
  }

  /** Bytes in the partial file. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Rows appended by this process. */
  get rows(): number {
    return this.#rows;
  }

  async #open(resume: ExportFileOptions['resume']): Promise<void> {
    await mkdir(dirname(this.partialPath), { recursive: true });
    if (resume) {
      const entries = await readProgress(this.#progressPath);
      if (entries === undefined || !(await exists(this.partialPath))) {
        throw new EtlError(
          'CHECKPOINT_MISMATCH',
          `cannot resume the export: its partial file ${this.partialPath} (or its .progress log) is missing; run again with --restart to export from the start`,
          { context: { component: 'destination', file: this.partialPath } },
        );
      }
      const after = resume.afterSeq ?? -1;
      const kept = entries.filter((e) => e.seq <= after);
      const last = kept.at(-1);
      if (last === undefined) {
        await this.#fresh();
        return;
      }
      this.#handle = await open(this.partialPath, 'r+');
      await this.#handle.truncate(last.bytes);
      await this.#handle.sync();
      this.#bytes = last.bytes;
      await writeFile(this.#progressPath + '.tmp', kept.map((e) => `${e.seq} ${e.bytes}\n`).join(''));
      await rename(this.#progressPath + '.tmp', this.#progressPath);
      this.#progress = await open(this.#progressPath, 'a');
      return;
    }
    await this.#fresh();
  }

  async #fresh(): Promise<void> {
    await this.#handle?.close();
    this.#handle = await open(this.partialPath, 'w');
    await writeFile(this.#progressPath, '');
    this.#progress = await open(this.#progressPath, 'a');
    this.#bytes = 0;
    // the header is its own chunk, logged at seq -1
    await this.#appendChunk(stringify([[...this.#columns]], { delimiter: this.#delimiter }), -1);
  }

  /** Append rows durably; `lastSeq` is the seq of the last record they cover. */
  async append(rows: readonly Record<string, unknown>[], lastSeq: number): Promise<void> {
    if (rows.length === 0) return;
    const text = stringify(
      rows.map((r) => this.#columns.map((c) => cell(r[c]))),
      { delimiter: this.#delimiter },
    );
    await this.#appendChunk(text, lastSeq);
    this.#rows += rows.length;
  }

  async #appendChunk(text: string, lastSeq: number): Promise<void> {
    const handle = this.#handle;
    const progress = this.#progress;
    if (!handle || !progress) throw new EtlError('INTERNAL', `export file ${this.partialPath} is closed`);
    const data = this.#gzip ? gzipSync(text) : Buffer.from(text, 'utf8');
    await handle.write(data, 0, data.length, this.#bytes);
    await handle.sync();
    this.#bytes += data.length;
    await progress.write(`${lastSeq} ${this.#bytes}\n`);
    await progress.sync();
  }

  /** Close the partial file, keeping it (an interrupted run resumes from it). */
  async close(): Promise<void> {
    const h = this.#handle;
    const p = this.#progress;
    this.#handle = undefined;
    this.#progress = undefined;
    await h?.close();
    await p?.close();
  }

  /** Close, and move the finished file to `finalPath` (atomic rename on one filesystem). */
  async commitTo(finalPath: string): Promise<void> {
    await this.close();
    await mkdir(dirname(finalPath), { recursive: true });
    await rename(this.partialPath, finalPath);
    await rm(this.#progressPath, { force: true });
  }

  /** Close and delete the partial file and its progress log (after it was uploaded). */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.partialPath, { force: true });
    await rm(this.#progressPath, { force: true });
  }
}

/** A CSV cell: strings as they are, booleans `true`/`false`, dates ISO, objects/arrays JSON, null/undefined empty. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The progress log, or undefined when there is none; a torn last line (crash while writing it) is ignored. */
async function readProgress(path: string): Promise<{ seq: number; bytes: number }[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const out: { seq: number; bytes: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(-?\d+) (\d+)$/.exec(line);
    if (m) out.push({ seq: Number(m[1]), bytes: Number(m[2]) });
  }
  return out;
}

// ---------------------------------------------------------------- targets

/** Where a finished export goes. */
export type ExportTarget =
  | { type: 'file'; /** Final path of the CSV file. */ path: string }
  | {
      type: 's3';
      client: S3Client;
      bucket: string;
      key: string;
      /** Local staging file (`….partial`) uploaded when the run completes. */
      stagingPath: string;
    };

/** Options of {@link createExportLoader}. */
export interface ExportLoaderOptions {
  target: ExportTarget;
  columns: readonly string[];
  /** @default "," */
  delimiter?: string;
  /** Rows per durable chunk (one fsync each). @default 100 */
  chunkRows?: number;
  /** Resume an interrupted export from the checkpoint's position (see {@link ExportFileOptions.resume}). */
  resume?: { afterSeq: number | undefined };
  /** Whether the run was interrupted: `close()` then keeps the partial file instead of publishing it. */
  interrupted?: () => boolean;
}

/** An export loader: also tells where the export went once it is published. */
export interface ExportLoader extends Loader {
  /** `file path` or `s3://bucket/key` once published; undefined before. */
  readonly published: string | undefined;
  /** Rows written (this process). */
  readonly rows: number;
  /** Close without publishing (after a failure); the partial file stays for a resume. */
  abort(): Promise<void>;
}

/**
 * A Loader over export rows (`export-row` items): `items[i].payload` is the output row (column → value). Rows are buffered, written
 * in durable chunks and acknowledged (`onAck`) once their chunk is on disk. `close()` writes the rest and, unless
 * the run was interrupted, publishes the file (rename / upload). In `dryRun` nothing is written; rows are acked.
 */
export function createExportLoader(options: ExportLoaderOptions, ctx: LoadContext): ExportLoader {
  return new ExportRowLoader(options, ctx);
}

class ExportRowLoader implements ExportLoader {
  readonly #options: ExportLoaderOptions;
  readonly #ctx: LoadContext;
  readonly #chunkRows: number;
  #file: Promise<ExportFile> | undefined;
  #buffer: ExportRowItem[] = [];
  #published: string | undefined;
  #rows = 0;
  #closed = false;

  constructor(options: ExportLoaderOptions, ctx: LoadContext) {
    this.#options = options;
    this.#ctx = ctx;
    this.#chunkRows = options.chunkRows ?? 100;
    if (!ctx.dryRun) {
      this.#file = ExportFile.open({
        partialPath: options.target.type === 'file' ? options.target.path + '.partial' : options.target.stagingPath,
        columns: options.columns,
        delimiter: options.delimiter,
        gzip: /\.gz$/i.test(options.target.type === 'file' ? options.target.path : options.target.key),
        resume: options.resume,
      });
      this.#file.catch(() => {}); // surfaced by write()/close()
    }
  }

  get published(): string | undefined {
    return this.#published;
  }

  get rows(): number {
    return this.#rows;
  }

  async write(items: LoadItem[]): Promise<void> {
    if (this.#closed) throw new EtlError('INTERNAL', 'export loader is closed');
    for (const item of items) {
      assertItemKind(item, 'export-row');
      this.#buffer.push(item);
    }
    if (this.#buffer.length >= this.#chunkRows) await this.#flush();
  }

  async #flush(): Promise<void> {
    const items = this.#buffer;
    if (items.length === 0) return;
    this.#buffer = [];
    if (this.#file) {
      const file = await this.#file;
      await file.append(
        items.map((i) => i.payload),
        items.at(-1)!.last.seq,
      );
    }
    this.#rows += items.length;
    this.#ctx.onAck(items);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#flush();
    this.#closed = true;
    if (!this.#file) return;
    const file = await this.#file;
    if (this.#options.interrupted?.()) {
      await file.close();
      return;
    }
    const target = this.#options.target;
    if (target.type === 'file') {
      await file.commitTo(target.path);
      this.#published = target.path;
      return;
    }
    await file.close();
    try {
      const upload = new (libStorageSdk().Upload)({
        client: target.client,
        params: {
          Bucket: target.bucket,
          Key: target.key,
          Body: createReadStream(file.partialPath),
          ContentType: 'text/csv',
        },
      });
      await upload.done();
    } catch (error) {
      throw new EtlError('DESTINATION_WRITE', `uploading the export to s3://${target.bucket}/${target.key} failed: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
        context: { component: 'destination' },
      });
    }
    this.#published = `s3://${target.bucket}/${target.key}`;
    await file.discard();
  }

  async abort(): Promise<void> {
    this.#closed = true;
    const file = await this.#file?.catch(() => undefined);
    await file?.close();
  }

  pendingJobs(): string[] {
    return [];
  }
}
