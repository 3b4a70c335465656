/**
 * One durable, append-only partial file of an export and its progress log (see file-export.ts for the protocol):
 * chunks are written and fsync'ed, then `<lastSeq> <bytes>` is appended (and fsync'ed) to `<partial>.progress`;
 * a resumed run truncates the file back to the last chunk the checkpoint covers.
 */
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ExportRow } from '../core/record.js';
import { EtlError } from '../core/errors.js';
import type { RowEncoder } from './export-format.js';

/** Options of {@link ExportFile.open}. */
export interface ExportFileOptions {
  /** Where the partial file is written; its progress log is `<partialPath>.progress`. */
  partialPath: string;
  /** How rows become text. */
  encoder: RowEncoder;
  /** Write the encoder's header (CSV) as the file's first chunk. @default true */
  header?: boolean;
  /** Gzip-compress (each chunk is one gzip member). @default false */
  gzip?: boolean;
  /**
   * Close the file and its log after each chunk and open them again for the next (parts: an export with hundreds
   * of parts must not hold two descriptors for each). @default false
   */
  closeBetweenChunks?: boolean;
  /**
   * Resume an interrupted export: keep the rows of the chunks whose last seq is ≤ `afterSeq` (the checkpoint's
   * position; undefined when nothing was acknowledged) and drop the rest. Without `resume` the file starts over.
   */
  resume?: { afterSeq: number | undefined };
}

/** A durable, append-only partial file with a progress log. */
export class ExportFile {
  readonly partialPath: string;
  readonly progressPath: string;
  readonly #encoder: RowEncoder;
  readonly #header: boolean;
  readonly #gzip: boolean;
  readonly #closeBetweenChunks: boolean;
  /** Between open() and close(): chunks may be appended (the handles may be closed between chunks). */
  #writable = false;
  #handle: FileHandle | undefined;
  #progress: FileHandle | undefined;
  #bytes = 0;

  private constructor(options: ExportFileOptions) {
    this.partialPath = options.partialPath;
    this.progressPath = options.partialPath + '.progress';
    this.#encoder = options.encoder;
    this.#header = options.header ?? true;
    this.#gzip = options.gzip ?? false;
    this.#closeBetweenChunks = options.closeBetweenChunks ?? false;
  }

  /** Open (create, or truncate to the resume point) the partial file. */
  static async open(options: ExportFileOptions): Promise<ExportFile> {
    const file = new ExportFile(options);
    await file.#open(options.resume);
    file.#writable = true;
    if (file.#closeBetweenChunks) await file.#release();
    return file;
  }

  /** Bytes in the partial file. */
  get bytes(): number {
    return this.#bytes;
  }

  async #open(resume: ExportFileOptions['resume']): Promise<void> {
    await mkdir(dirname(this.partialPath), { recursive: true });
    if (!resume) return this.#fresh();
    const entries = await readProgress(this.progressPath);
    const after = resume.afterSeq ?? -1;
    const kept = entries?.filter((e) => e.seq <= after) ?? [];
    const last = kept.at(-1);
    if (entries !== undefined && last === undefined) return this.#fresh();
    if (last === undefined || !(await exists(this.partialPath))) {
      throw new EtlError(
        'CHECKPOINT_MISMATCH',
        `cannot resume the export: its partial file ${this.partialPath} (or its .progress log) is missing; run again with --restart to export from the start`,
        { context: { component: 'destination', file: this.partialPath } },
      );
    }
    this.#handle = await open(this.partialPath, 'r+');
    await this.#handle.truncate(last.bytes);
    await this.#handle.sync();
    this.#bytes = last.bytes;
    await writeFile(this.progressPath + '.tmp', kept.map((e) => `${e.seq} ${e.bytes}\n`).join(''));
    await rename(this.progressPath + '.tmp', this.progressPath);
    this.#progress = await open(this.progressPath, 'a');
  }

  async #fresh(): Promise<void> {
    await this.#handle?.close();
    // the progress log first: a part file is found on resume by its log
    await writeFile(this.progressPath, '');
    this.#handle = await open(this.partialPath, 'w');
    this.#progress = await open(this.progressPath, 'a');
    this.#bytes = 0;
    // the header is its own chunk, logged at seq -1
    const header = this.#encoder.header;
    if (this.#header && header !== undefined) await this.#appendChunk(header, -1);
  }

  /** Append rows durably; `lastSeq` is the seq of the last record the chunk covers. */
  async append(rows: readonly ExportRow[], lastSeq: number): Promise<void> {
    if (rows.length === 0) return;
    await this.#appendChunk(this.#encoder.encode(rows), lastSeq);
  }

  async #appendChunk(text: string, lastSeq: number): Promise<void> {
    if (!this.#handle && this.#writable) {
      this.#handle = await open(this.partialPath, 'r+');
      this.#progress = await open(this.progressPath, 'a');
    }
    const handle = this.#handle;
    const progress = this.#progress;
    if (!handle || !progress) throw new EtlError('INTERNAL', `export file ${this.partialPath} is closed`);
    const data = this.#gzip ? gzipSync(text) : Buffer.from(text, 'utf8');
    await handle.write(data, 0, data.length, this.#bytes);
    await handle.sync();
    this.#bytes += data.length;
    await progress.write(`${lastSeq} ${this.#bytes}\n`);
    await progress.sync();
    if (this.#closeBetweenChunks && this.#writable) await this.#release();
  }

  /** Close the partial file, keeping it (an interrupted run resumes from it). */
  async close(): Promise<void> {
    this.#writable = false;
    await this.#release();
  }

  /** Close the handles (they are opened again for the next chunk while the file is writable). */
  async #release(): Promise<void> {
    const h = this.#handle;
    const p = this.#progress;
    this.#handle = undefined;
    this.#progress = undefined;
    await h?.close();
    await p?.close();
  }

  /** Close and delete the partial file and its progress log. */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.partialPath, { force: true });
    await rm(this.progressPath, { force: true });
  }
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
