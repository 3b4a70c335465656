import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../../src/core/logger.js';
import type { SourceRecord } from '../../../src/core/record.js';
import type { ExtractContext, SourceReader } from '../../../src/extract/types.js';

export const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function context(baseDir: string, extra: Partial<ExtractContext> = {}): ExtractContext {
  return { baseDir, env: {}, logger: memoryLogger(), ...extra };
}

export async function collect(reader: SourceReader): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of reader.records()) out.push(r);
  return out;
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ketl-extract-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 1-based line of a byte offset in a buffer (LF counted). */
export function lineAt(buf: Buffer, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset; i++) if (buf[i] === 10) n++;
  return n;
}
