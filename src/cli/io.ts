/**
 * Where CLI commands write and how they set the exit code. `main()` passes one through yargs' context object
 * (every command's `argv.io`), so tests can capture output without touching the process.
 */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Set the exit code the process ends with (the highest code set wins). */
  setExitCode(code: number): void;
}

/** The real process: writes to stdout/stderr, sets `process.exitCode`. */
export function processIo(): CliIo {
  // `klaviyo-etl schema | head` closes the pipe early: that is not an error
  if (process.stdout.listenerCount('error') === 0) {
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    setExitCode: (code) => {
      const current = typeof process.exitCode === 'number' ? process.exitCode : 0;
      if (code > current) process.exitCode = code;
    },
  };
}

/** The `io` main() put into a command's arguments, else the real process. */
export function ioOf(args: object): CliIo {
  const io = (args as { io?: unknown }).io;
  return io && typeof io === 'object' && 'stdout' in io ? (io as CliIo) : processIo();
}
