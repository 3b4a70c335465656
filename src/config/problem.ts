import type { ErrorCode } from '../core/errors.js';

/**
 * Codes a pipeline-file problem can carry (all of them make `validate` exit 2; a run stops before it starts): the
 * pipeline file's own (CONFIG_*), and those the pre-flight check finds in the source's data (`validate --with-data`
 * and the start of a run: src/runner/preflight.ts).
 */
export type ProblemCode = Extract<
  ErrorCode,
  | 'CONFIG_YAML_SYNTAX'
  | 'CONFIG_INVALID'
  | 'CONFIG_UNKNOWN_KEY'
  | 'CONFIG_ENV_MISSING'
  | 'CONFIG_RULE'
  | 'SOURCE_COLUMN_MISSING'
  | 'SOURCE_HEADER_INVALID'
  | 'SOURCE_DELIMITER'
  | 'SOURCE_NOT_FOUND'
  | 'SOURCE_READ'
>;

/** One problem found in a pipeline file. */
export interface Problem {
  /** The pipeline file as given by the caller (or `<text>` for in-memory text). */
  file: string;
  /** 1-based line of the offending YAML node (the key itself for unknown keys). */
  line: number;
  /** 1-based column. */
  column: number;
  code: ProblemCode;
  /** Human-readable; never contains the value of an environment variable. */
  message: string;
  /** YAML path of the offending node, e.g. `transform.profile.email` or `source.path[1]`; `""` for the root. */
  path: string;
}

/** A path segment as used by zod and the YAML AST. */
export type PathSegment = string | number;

/** `['source', 'path', 1]` → `source.path[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += (out === '' ? '' : '.') + String(seg);
  }
  return out;
}

/** `file:line:col  CODE  path: message` (one line); also a pre-flight warning, which has the same shape. */
export function formatProblem(problem: Omit<Problem, 'code'> & { code: string }): string {
  const where = problem.path === '' ? '' : `${problem.path}: `;
  return `${problem.file}:${problem.line}:${problem.column}  ${problem.code}  ${where}${problem.message}`;
}

/** Sort by file, then line, then column (stable otherwise). */
export function sortProblems<P extends Pick<Problem, 'file' | 'line' | 'column'>>(problems: readonly P[]): P[] {
  return [...problems].sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}
