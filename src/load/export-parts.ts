/**
 * The partial files of one export: the main file (the CSV header, and the rows of records without a part) and one
 * file per output part (records of a partitioned source, {@link ExportRowItem.part}), each durable and resumable on
 * its own ({@link ExportFile}). Published, they are joined in order: the main file, then the parts in ascending
 * part-key order (a CSV header once; gzip members concatenate into one valid gzip stream).
 *
 * A part's files are `<partial>.part-<base64url of the key>` and its `.progress` log, beside the main partial
 * file; a resumed run finds them by their logs and truncates each to the chunks the checkpoint covers. Every part's
 * log carries the global seq of the flush its chunk belongs to, and a flush is acknowledged only once every part's
 * chunk is durable, so the checkpoint (the last record of a contiguous acknowledged prefix) never falls inside a
 * flush: truncating every part at it keeps exactly the rows the resumed source will not read again.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExportRow } from '../core/record.js';
import { ExportFile } from './export-file.js';
import type { RowEncoder } from './export-format.js';

/** Options of {@link ExportParts.open}. */
export interface ExportPartsOptions {
  /** The main partial file; parts are written beside it. */
  partialPath: string;
  encoder: RowEncoder;
  /** Gzip-compress. @default false */
  gzip?: boolean;
  /** Resume from the checkpoint's position (see {@link ExportFileOptions.resume}); without it every file starts over. */
  resume?: { afterSeq: number | undefined };
}

const PART_INFIX = '.part-';

/** The partial files of an export, by part. */
export class ExportParts {
  readonly #options: ExportPartsOptions;
  readonly #main: ExportFile;
  readonly #parts = new Map<string, Promise<ExportFile>>();

  private constructor(options: ExportPartsOptions, main: ExportFile) {
    this.#options = options;
    this.#main = main;
  }

  /** Open the main file and (resuming) every part file an earlier run left; a fresh export removes stale parts. */
  static async open(options: ExportPartsOptions): Promise<ExportParts> {
    const main = await ExportFile.open({ partialPath: options.partialPath, encoder: options.encoder, gzip: options.gzip, resume: options.resume });
    const parts = new ExportParts(options, main);
    const found = await findParts(options.partialPath);
    for (const key of found) {
      if (options.resume) await parts.#part(key, true);
      else await removePart(partPath(options.partialPath, key));
    }
    return parts;
  }

  /** The main partial file. */
  get partialPath(): string {
    return this.#main.partialPath;
  }

  /** Whether the export has parts (it is then joined when published, else the main file is published as it is). */
  get parted(): boolean {
    return this.#parts.size > 0;
  }

  /**
   * The file of a part. `left`: an earlier attempt left it (resumed from the checkpoint); a part first met in this
   * attempt starts empty even in a resumed run (a range of a partitioned source that had written nothing yet).
   */
  #part(key: string, left = false): Promise<ExportFile> {
    let file = this.#parts.get(key);
    if (!file) {
      const { encoder, gzip } = this.#options;
      const resume = left ? this.#options.resume : undefined;
      file = ExportFile.open({ partialPath: partPath(this.#options.partialPath, key), encoder, gzip, resume, header: false, closeBetweenChunks: true });
      file.catch(() => {}); // surfaced by the caller's await
      this.#parts.set(key, file);
    }
    return file;
  }

  /**
   * Append one flush durably: the rows of each part (key undefined: the main file), all logged at `lastSeq`. Resolves
   * once every part's chunk is on disk.
   */
  async append(groups: ReadonlyMap<string | undefined, readonly ExportRow[]>, lastSeq: number): Promise<void> {
    await Promise.all(
      [...groups].map(async ([key, rows]) => {
        const file = key === undefined ? this.#main : await this.#part(key);
        await file.append(rows, lastSeq);
      }),
    );
  }

  /** The partial files in publishing order: the main file, then the parts by ascending key. */
  files(): string[] {
    const keys = [...this.#parts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return [this.#main.partialPath, ...keys.map((k) => partPath(this.#options.partialPath, k))];
  }

  /** The published bytes: every file in {@link files} order, one after the other. */
  stream(): Readable {
    const files = this.files();
    return Readable.from(
      (async function* () {
        for (const f of files) yield* createReadStream(f);
      })(),
    );
  }

  /** Close every file, keeping them (an interrupted run resumes from them). */
  async close(): Promise<void> {
    await this.#main.close();
    for (const file of this.#parts.values()) await (await file).close();
  }

  /**
   * Publish to `finalPath` atomically: the main file is renamed into place, or (with parts) the files are joined into
   * `<partial>.joined`, fsync'ed and that is renamed; then the partial files are removed.
   */
  async publishTo(finalPath: string): Promise<void> {
    await this.close();
    await mkdir(dirname(finalPath), { recursive: true });
    if (!this.parted) {
      await rename(this.#main.partialPath, finalPath);
    } else {
      const joined = this.#main.partialPath + '.joined';
      await pipeline(this.stream(), createWriteStream(joined));
      const handle = await open(joined, 'r');
      await handle.sync().finally(() => handle.close());
      await rename(joined, finalPath);
    }
    await this.discard();
  }

  /** Close and delete every partial file and progress log. */
  async discard(): Promise<void> {
    await this.#main.discard();
    for (const file of this.#parts.values()) await (await file).discard();
  }
}

function partPath(partialPath: string, key: string): string {
  return partialPath + PART_INFIX + Buffer.from(key, 'utf8').toString('base64url');
}

async function removePart(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(path + '.progress', { force: true });
}

/** The keys of the part files beside `partialPath` (found by their progress logs). */
async function findParts(partialPath: string): Promise<string[]> {
  const prefix = basename(partialPath) + PART_INFIX;
  let names: string[];
  try {
    names = await readdir(dirname(partialPath));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && n.endsWith('.progress'))
    .map((n) => Buffer.from(n.slice(prefix.length, -'.progress'.length), 'base64url').toString('utf8'));
}

