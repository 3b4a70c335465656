import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { EtlError, isEtlError, redact } from '../core/errors.js';
import { checkCommand } from './commands/check.js';
import { emulatorCommand } from './commands/emulator.js';
import { resetCommand } from './commands/reset.js';
import { initCommand } from './commands/init.js';
import { runCommand } from './commands/run.js';
import { scheduleCommand } from './commands/schedule.js';
import { historyCommand } from './commands/history.js';
import { statusCommand } from './commands/status.js';
import { schemaCommand } from './commands/schema.js';
import { validateCommand } from './commands/validate.js';
import { EXIT, exitCodeForError } from '../core/exit-codes.js';
import { processIo, type CliIo } from './io.js';

/** The package version (dist/cli/main.js and src/cli/main.ts both sit two levels below package.json). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * The `klaviyo-etl` CLI. Commands are registered explicitly. Every error ends here: it is printed as
 * `error [CODE]: message` on stderr (the stack only with `--debug`) and mapped to an exit code (src/core/exit-codes.ts).
 *
 * @param argv arguments after the executable, e.g. `process.argv.slice(2)`
 * @param io where output goes and how the exit code is set. @default the real process
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<void> {
  const debug = argv.includes('--debug');
  try {
    await yargs()
      .scriptName('klaviyo-etl')
      .usage('$0 <command> [options]\n\nBulk import into and export out of Klaviyo from declarative pipeline files.')
      .command(runCommand)
      .command(validateCommand)
      .command(statusCommand)
      .command(historyCommand)
      .command(resetCommand)
      .command(checkCommand)
      .command(initCommand)
      .command(schemaCommand)
      .command(emulatorCommand)
      .command(scheduleCommand)
      .option('debug', { type: 'boolean', default: false, global: true, describe: 'Print stack traces of errors' })
      .demandCommand(1, 'Name a command (see --help)')
      .strict()
      .help()
      .alias('h', 'help')
      .version(packageVersion())
      .alias('v', 'version')
      .epilogue('Exit codes: 0 succeeded, 1 failed, 2 invalid pipeline file or usage, 3 completed with rejected rows (above failOn in the pipeline), 130/143 interrupted.')
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .exitProcess(false)
      .fail((message: string | undefined, error: Error | undefined) => {
        throw error ?? new EtlError('USAGE', message ?? 'invalid usage');
      })
      .parseAsync(argv, { io });
  } catch (error) {
    report(error, io, debug);
  }
}

function report(error: unknown, io: CliIo, debug: boolean): void {
  const code = isEtlError(error) ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(redact(`error [${code}]: ${message}`) + '\n');
  if (code === 'USAGE') io.stderr('Run klaviyo-etl --help for usage.\n');
  if (debug && error instanceof Error && error.stack) io.stderr(redact(error.stack) + '\n');
  io.setExitCode(isEtlError(error) ? exitCodeForError(error) : EXIT.FAILED);
}
