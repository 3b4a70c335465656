/**
 * One error class for the whole tool. `code` is a closed union: tests and users match on codes, never on text.
 * Add new codes here (and to docs/errors.md) rather than inventing strings at call sites.
 */
export const ERROR_CODES = [
  // pipeline file problems (exit 2)
  'CONFIG_YAML_SYNTAX',
  'CONFIG_INVALID',
  'CONFIG_UNKNOWN_KEY',
  'CONFIG_ENV_MISSING',
  'CONFIG_RULE',
  'USAGE',
  // source / run problems (exit 1)
  'SOURCE_NOT_FOUND',
  'SOURCE_READ',
  'SOURCE_CHANGED',
  'SOURCE_COLUMN_MISSING',
  'SOURCE_HEADER_INVALID',
  'SOURCE_DELIMITER',
  'MISSING_API_KEY',
  'API_KEY_INVALID',
  'KLAVIYO_AUTH',
  'KLAVIYO_REQUEST_REJECTED',
  'KLAVIYO_UNAVAILABLE',
  'KLAVIYO_JOB_FAILED',
  'KLAVIYO_JOB_TIMEOUT',
  'CHECKPOINT_CORRUPT',
  'CHECKPOINT_MISMATCH',
  'LOCKED',
  'LOCK_LOST',
  'STATE_DIR_UNUSABLE',
  'INTERRUPTED',
  'DESTINATION_WRITE',
  'REJECTS_WRITE',
  'ALL_ROWS_REJECTED',
  'TOO_MANY_REJECTS',
  'RUN_LOST',
  'INTERNAL',
  // record problems (routed to the rejects file, never thrown out of a run)
  'CSV_RAGGED_ROW',
  'CSV_UNCLOSED_QUOTE',
  'CSV_PARSE_ERROR',
  'NDJSON_PARSE_ERROR',
  'INVALID_ENCODING',
  'INVALID_EMAIL',
  'INVALID_PHONE',
  'INVALID_DATE',
  'INVALID_NUMBER',
  'INVALID_INTEGER',
  'INVALID_BOOLEAN',
  'INVALID_VALUE',
  'MISSING_REQUIRED',
  'MISSING_IDENTIFIER',
  'RECORD_TOO_LARGE',
  'VALUE_TOO_DEEP',
  'KLAVIYO_REJECTED',
  'KLAVIYO_IMPORT_ERROR',
  'SMS_REGION_UNSUPPORTED',
  // rows a loader deliberately does not send (in the skipped file and counted in `rows.skipped`)
  'CONSENT_OPTED_OUT',
  'NOT_IN_LIST',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Codes of what a run reports in `warnings` (it still succeeds): a closed list, documented in docs/errors.md
 * ("Warnings"), so alerts and scripts can match on them.
 */
export const WARNING_CODES = [
  // a source file of 0 bytes (a nightly drop whose export failed upstream?)
  'SOURCE_FILE_EMPTY',
  // a source file with a header (or blank lines) and no row
  'SOURCE_FILE_NO_ROWS',
  // the first rows of a file read as UTF-8 hold bytes that are not UTF-8 (its rows with them are INVALID_ENCODING rejects)
  'SOURCE_NOT_UTF8',
  // a column the mapping reads is in none of the first rows of an NDJSON file (its keys may come later)
  'SOURCE_COLUMN_UNSEEN',
  // the mapping changed since the last successful run: every input is read again
  'SOURCE_REREAD_NEW_MAPPING',
  // bulk jobs Klaviyo no longer knew at a resume: their rows were sent again
  'KLAVIYO_JOBS_FORGOTTEN',
  // after the run (src/runner/after-run.ts): the run history could not be read / written, metrics not pushed
  'HISTORY_UNREADABLE',
  'HISTORY_NOT_RECORDED',
  'METRICS_NOT_PUSHED',
] as const;

export type WarningCode = (typeof WARNING_CODES)[number];

/** One entry of a run report's `warnings`. */
export interface RunWarning {
  code: WarningCode;
  /** For a person: what happened and what it means. */
  message: string;
  /** The source file (or object) it is about, when it is about one. */
  file?: string;
}

export interface EtlErrorContext {
  pipeline?: string;
  component?: string;
  file?: string;
  line?: number;
  column?: number;
  [key: string]: unknown;
}

export class EtlError extends Error {
  readonly code: ErrorCode;
  readonly context: EtlErrorContext;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: EtlErrorContext } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EtlError';
    this.code = code;
    this.context = options.context ?? {};
  }

  /** Attach HTTP details that must never be enumerated into logs (they may hold headers). */
  withHttp(details: { method: string; url: string; status?: number; body?: unknown }): this {
    Object.defineProperty(this, 'http', { value: redactHttp(details), enumerable: false });
    return this;
  }
}

export function isEtlError(error: unknown): error is EtlError {
  return error instanceof EtlError;
}

const SECRET_PATTERN = /\bpk_[A-Za-z0-9_]+/g;

/** Remove anything that looks like a Klaviyo private key from a string. */
export function redact(text: string): string {
  return text.replace(SECRET_PATTERN, 'pk_***');
}

function redactHttp<T extends { url: string }>(details: T): T {
  return { ...details, url: redact(details.url) };
}
