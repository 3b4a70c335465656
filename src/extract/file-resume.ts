/**
 * What makes a resumed file source read exactly what the interrupted attempt did not:
 * - the run's plan: the files a run covers, fixed when it starts and saved in the checkpoint (`sourcePlan`), with the
 *   files read completely so far and what the parser learned from the start of the file being read (CSV: record
 *   delimiter, header). A resume reads the planned files; a file that appeared since is left to the next run.
 * - the file's identity in every record's position (`pos.cursor`, a {@link FileCursor}): size and modification time
 *   when it was opened, and the sha256 of its first bytes. A resume compares them with the file as it is now, and
 *   refuses (SOURCE_CHANGED) or re-reads the file from its start (`onChangedFile: reread`) when they differ.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { EtlError } from '../core/errors.js';
import type { SourcePosition } from '../core/record.js';

/** One file of a run's plan. */
export interface PlannedFile {
  /** The file's `pos.source` name. */
  source: string;
  /** Set once the file was read completely (or skipped as unchanged): its watermark entry. */
  size?: number;
  mtimeMs?: number;
  sha256?: string;
  /** What the parser learned from the start of the file (CSV: record delimiter, columns), while it is being read. */
  learned?: unknown;
}

/** The run state of the local file sources (checkpoint `sourcePlan`). */
export interface FilePlan {
  files: PlannedFile[];
}

export function isFilePlan(value: unknown): value is FilePlan {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as FilePlan).files) &&
    (value as FilePlan).files.every((f) => typeof f === 'object' && f !== null && typeof f.source === 'string')
  );
}

/** `pos.cursor` of a file record: the file as the reader saw it when it yielded the record. */
export interface FileCursor {
  /** Size (bytes on disk) and modification time when the file was opened. */
  size: number;
  mtimeMs: number;
  /** sha256 (hex) of the file's first `hashed` bytes on disk (compressed bytes for `.gz`). */
  hashed: number;
  sha256: string;
}

export function isFileCursor(value: unknown): value is FileCursor {
  const c = value as FileCursor | undefined;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.size === 'number' &&
    typeof c.mtimeMs === 'number' &&
    typeof c.hashed === 'number' &&
    typeof c.sha256 === 'string'
  );
}

/** Absolute path of a planned file (its `source` is relative to the pipeline directory, or absolute). */
export const plannedPath = (source: string, baseDir: string): string => (isAbsolute(source) ? source : resolve(baseDir, source));

/**
 * Feed the first `feedEnd` bytes of a file into `feed` (the hash a seek continues), and hash its first `checkEnd`
 * bytes on the side: one read of the longer prefix. Returns the side hash (hex; undefined when `checkEnd` is 0) and
 * how many bytes went into `feed`.
 */
export async function hashPrefix(path: string, feed: Hash, feedEnd: number, checkEnd: number): Promise<{ fed: number; check?: string }> {
  const end = Math.max(feedEnd, checkEnd);
  const check = checkEnd > 0 ? createHash('sha256') : undefined;
  let at = 0;
  if (end > 0) {
    for await (const data of createReadStream(path, { end: end - 1, highWaterMark: 256 * 1024 })) {
      const chunk = data as Buffer;
      if (at < feedEnd) feed.update(at + chunk.length <= feedEnd ? chunk : chunk.subarray(0, feedEnd - at));
      if (check && at < checkEnd) check.update(at + chunk.length <= checkEnd ? chunk : chunk.subarray(0, checkEnd - at));
      at += chunk.length;
    }
  }
  const checked = check && at >= checkEnd ? check.digest('hex') : undefined;
  return { fed: Math.min(at, feedEnd), ...(check ? { check: checked ?? '(file shorter)' } : {}) };
}

/**
 * Why the file to resume in is not the file the interrupted attempt read (empty: it is the same as far as can be
 * told). `checkDigest` is the sha256 of the file's first `cursor.hashed` bytes now.
 */
export function resumeMismatch(
  file: { size: number; mtimeMs: number; gzip: boolean },
  at: SourcePosition,
  cursor: FileCursor | undefined,
  checkDigest: string | undefined,
): string[] {
  const reasons: string[] = [];
  if (!file.gzip && at.offset !== undefined && at.offset >= file.size) {
    reasons.push(`the checkpoint's offset ${at.offset} is past its end (${file.size} bytes)`);
  }
  if (!cursor) return reasons;
  if (cursor.size !== file.size) reasons.push(`its size changed (${cursor.size} → ${file.size} bytes)`);
  if (cursor.mtimeMs !== file.mtimeMs) {
    reasons.push(`its modification time changed (${new Date(cursor.mtimeMs).toISOString()} → ${new Date(file.mtimeMs).toISOString()})`);
  }
  if (reasons.length === 0 && checkDigest !== cursor.sha256) reasons.push(`its first ${cursor.hashed} bytes changed`);
  return reasons;
}

/** SOURCE_CHANGED: the file to resume in is not the one the interrupted attempt read. */
export function sourceChanged(source: string, reasons: string[], component: string): EtlError {
  return new EtlError(
    'SOURCE_CHANGED',
    `${source} changed since the interrupted run read it: ${reasons.join('; ')}. Resuming would read the new content from ` +
      'the old position. Set `onChangedFile: reread` on the source to read it again from its start, or run with --restart.',
    { context: { component, file: source } },
  );
}
