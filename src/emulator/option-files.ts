/**
 * The files an emulator is started with (`seedFile`, `stateFile`), checked before it listens. A problem is a
 * `USAGE` error (exit 2 from the CLI) that names the file and what is wrong with it, and never quotes the file's
 * bytes (a wrong path can name a file full of secrets).
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { EtlError } from '../core/errors.js';

/** What the file is, for messages: `seed file` or `state file`. */
export type OptionFileKind = 'seed file' | 'state file';

/** A usage error about `file`. */
export function fileProblem(kind: OptionFileKind, file: string, problem: string): EtlError {
  return new EtlError('USAGE', `The emulator's ${kind} ${file} ${problem}`, { context: { file } });
}

/** The text of `file`, or undefined when it does not exist and `missingOk`. */
export function readOptionFile(kind: OptionFileKind, file: string, missingOk: boolean): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missingOk) return undefined;
    throw fileProblem(kind, file, code === 'ENOENT' ? 'does not exist.' : code === 'EISDIR' ? 'is a directory.' : `cannot be read (${code ?? 'error'}).`);
  }
  return text;
}

/** `text` parsed as JSON; a syntax error names its line and column when the parser gives a position, never the text. */
export function parseOptionFile(kind: OptionFileKind, file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const at = /at position (\d+)/.exec((e as Error).message);
    let where = '';
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      where = ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`;
    }
    throw fileProblem(kind, file, `is not valid JSON${where}.`);
  }
}

/**
 * Throw unless the emulator can write `file` on close (atomically: a temporary file in the same directory, then a
 * rename): its directory exists and is writable, and the file, when it exists, is not a directory.
 */
export function checkWritable(kind: OptionFileKind, file: string): void {
  const dir = dirname(file);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw fileProblem(kind, file, `cannot be written: its directory ${dir} does not exist.`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw fileProblem(kind, file, `cannot be written: its directory ${dir} is not writable.`);
  }
  try {
    if (statSync(file).isDirectory()) throw fileProblem(kind, file, 'is a directory.');
  } catch (e) {
    if (e instanceof EtlError) throw e;
  }
}
