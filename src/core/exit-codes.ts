import { isEtlError, type ErrorCode } from './errors.js';

/** Documented exit codes of the `klaviyo-etl` CLI (README, "Exit codes"). */
export const EXIT = {
  /** The command succeeded (a run: every row loaded). */
  OK: 0,
  /** The command or run failed. */
  FAILED: 1,
  /** Invalid pipeline file, or a usage error (unknown flag, missing argument). */
  INVALID: 2,
  /** A run completed, but some rows were rejected (see the rejects file). */
  COMPLETED_WITH_REJECTS: 3,
  /** Interrupted by SIGINT after a clean checkpoint. */
  SIGINT: 130,
  /** Interrupted by SIGTERM after a clean checkpoint. */
  SIGTERM: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const INVALID_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONFIG_YAML_SYNTAX',
  'CONFIG_INVALID',
  'CONFIG_UNKNOWN_KEY',
  'CONFIG_ENV_MISSING',
  'CONFIG_RULE',
  'USAGE',
]);

/** Exit code for an error code: pipeline-file and usage problems → 2, INTERRUPTED → 130/143, anything else → 1. */
export function exitCodeForErrorCode(code: ErrorCode, signal?: string): ExitCode {
  if (INVALID_CODES.has(code)) return EXIT.INVALID;
  if (code === 'INTERRUPTED') return signal === 'SIGTERM' ? EXIT.SIGTERM : EXIT.SIGINT;
  return EXIT.FAILED;
}

/** Exit code for anything thrown out of a command (`EtlError` by code, `context.signal` for INTERRUPTED; else 1). */
export function exitCodeForError(error: unknown): ExitCode {
  if (!isEtlError(error)) return EXIT.FAILED;
  const signal = typeof error.context.signal === 'string' ? error.context.signal : undefined;
  return exitCodeForErrorCode(error.code, signal);
}

/**
 * Exit code for a run report: as its status, except that a run whose rejects stay within the pipeline's `failOn`
 * thresholds exits 0.
 */
export function exitCodeForReport(report: { status: Parameters<typeof exitCodeForStatus>[0]; failOn?: { exceeded: boolean } }, signal?: string): ExitCode {
  if (report.status === 'completed_with_rejects' && report.failOn && !report.failOn.exceeded) return EXIT.OK;
  return exitCodeForStatus(report.status, signal);
}

/** Exit code for a run report status. */
export function exitCodeForStatus(
  status: 'succeeded' | 'completed_with_rejects' | 'failed' | 'interrupted',
  signal?: string,
): ExitCode {
  switch (status) {
    case 'succeeded':
      return EXIT.OK;
    case 'completed_with_rejects':
      return EXIT.COMPLETED_WITH_REJECTS;
    case 'interrupted':
      return signal === 'SIGTERM' ? EXIT.SIGTERM : EXIT.SIGINT;
    case 'failed':
      return EXIT.FAILED;
  }
}
