/**
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
 * Formats: NDJSON, one object per reject with all `Reject` fields (absent fields omitted); CSV with the columns
 * `source,line,offset,seq,stage,code,field,message,row` (`row` as JSON), header written when the file is created
 * (or when appending to an empty file).
 */
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EtlError, redact } from './errors.js';
import type { Reject } from './record.js';

/** Options of {@link openRejects}. */
export interface RejectsOptions {
  /** Absolute path of the rejects file. */
  path: string;
  /** @default ndjson */
  format?: 'ndjson' | 'csv';
  /** Append to an existing file instead of replacing it (resumed runs). @default false */
  append?: boolean;
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

export const REJECT_CSV_COLUMNS = ['source', 'line', 'offset', 'seq', 'stage', 'code', 'field', 'message', 'row'] as const;

const NDJSON_KEYS = ['stage', 'code', 'message', 'source', 'line', 'offset', 'seq', 'field', 'row', 'raw'] as const;

/** One reject as an NDJSON line (with the trailing newline). */
export function rejectToNdjson(reject: Reject): string {
  const out: Record<string, unknown> = {};
  for (const key of NDJSON_KEYS) {
    const value = reject[key];
    if (value !== undefined) out[key] = key === 'message' ? redact(value as string) : value;
  }
  return JSON.stringify(out) + '\n';
}

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const s = typeof value === 'string' ? value : String(value);
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** One reject as a CSV line (with the trailing newline). */
export function rejectToCsv(reject: Reject): string {
  return (
    [
      reject.source,
      reject.line,
      reject.offset,
      reject.seq,
      reject.stage,
      reject.code,
      reject.field,
      redact(reject.message),
      reject.row === undefined ? undefined : JSON.stringify(reject.row),
    ]
      .map(csvCell)
      .join(',') + '\n'
  );
}

class Rejects implements RejectsWriter {
  readonly path: string;
  readonly #format: 'ndjson' | 'csv';
  readonly #append: boolean;
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
    const format = this.#format === 'csv' ? rejectToCsv : rejectToNdjson;
    let text = '';
    for (const r of rejects) text += format(r);
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

  async #open(): Promise<FileHandle> {
    await mkdir(dirname(this.path), { recursive: true });
    const handle = await open(this.path, this.#append ? 'a' : 'w');
    if (this.#format === 'csv') {
      const size = this.#append ? (await stat(this.path)).size : 0;
      if (size === 0) await writeFully(handle, Buffer.from(REJECT_CSV_COLUMNS.join(',') + '\n'));
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
