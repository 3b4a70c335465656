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
import { testCommand } from './commands/test.js';
import { validateCommand } from './commands/validate.js';
import { closest } from '../config/suggest.js';
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
  const json = argv.includes('--json');
  try {
    const cli = yargs()
      .scriptName('klaviyo-etl')
      .usage('$0 <command> [options]\n\nBulk import into and export out of Klaviyo from declarative pipeline files.')
      .command(runCommand)
      .command(validateCommand)
      .command(statusCommand)
      .command(historyCommand)
      .command(resetCommand)
      .command(checkCommand)
      .command(initCommand)
      .command(testCommand)
      .command(schemaCommand)
      .command(emulatorCommand)
      .command(scheduleCommand)
      .option('debug', { type: 'boolean', default: false, global: true, describe: 'Print stack traces of errors' })
      .demandCommand(1, 'Name a command (see --help)')
      .recommendCommands()
      .strict()
      .help()
      .alias('h', 'help')
      .version(packageVersion())
      .alias('v', 'version')
      .epilogue('Exit codes: 0 succeeded, 1 failed, 2 invalid pipeline file or usage, 3 completed with rejected rows (above failOn in the pipeline), 130/143 interrupted.')
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .exitProcess(false)
      .fail((message: string | undefined, error: Error | undefined, usage: unknown) => {
        // yargs hands its usage instance here: the options of the command at hand, by their described names
        const known = (usage as { getDescriptions?: () => Record<string, unknown> } | undefined)?.getDescriptions?.() ?? {};
        throw error ?? new EtlError('USAGE', withFlagSuggestion(message ?? 'invalid usage', Object.keys(known)));
      });
    skipHelpCaching(cli);
    await cli.parseAsync(argv, { io });
  } catch (error) {
    report(error, io, debug, json);
  }
}

/** The part of yargs' internal usage instance that `skipHelpCaching` replaces. */
interface YargsInternals {
  getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } };
}

/**
 * yargs formats a command's whole help text (every option through cliui, wrap-ansi and string-width) each time it
 * calls the command's handler, right after the call, so that a handler still running could show it later (yargs
 * PR #1865). No handler here shows help: errors go through `.fail` and `report`, which print none. Formatting it took
 * ~150 ms of every `run` on the bench host (profiled 2026-12-02; non-ASCII descriptions take string-width's slow
 * path), and it fell after the run had started and before its first request: `run`'s first await hands control
 * back to yargs, which formats the help then. It is skipped here as the Angular CLI skips it (angular/angular-cli
 * PR #34087); `--help` formats the help when asked, as before.
 */
export function skipHelpCaching(cli: unknown): void {
  const usage = (cli as YargsInternals).getInternalMethods?.().getUsageInstance?.();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};
}

/** yargs' "Unknown argument: dryrun" with the closest known option: "(did you mean --dry-run?)". */
function withFlagSuggestion(message: string, known: string[]): string {
  const match = /^Unknown arguments?: (.+)$/.exec(message);
  if (!match) return message;
  const flags = known.filter((k) => k.length > 1 && !k.includes('_')).map(kebab);
  const hints = match[1]!.split(', ').flatMap((arg) => {
    const name = arg.replace(/^-+/, '');
    const guess = closest(name, flags, Math.max(2, Math.floor(name.length / 3))) ?? flags.find((f) => f.replaceAll('-', '') === name.replaceAll('-', ''));
    return guess === undefined ? [] : [`--${guess} for ${arg}`];
  });
  return hints.length === 0 ? message : `${message} (did you mean ${hints.join(', ')}?)`;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

function report(error: unknown, io: CliIo, debug: boolean, json: boolean): void {
  const code = isEtlError(error) ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    // `--json` callers parse stdout: an error is JSON there too (with the pipeline file's problems, when it has some)
    const problems = isEtlError(error) ? (error.context as { problems?: unknown } | undefined)?.problems : undefined;
    io.stdout(redact(JSON.stringify({ error: { code, message, ...(problems === undefined ? {} : { problems }) } }, null, 2)) + '\n');
  }
  io.stderr(redact(`error [${code}]: ${message}`) + '\n');
  if (code === 'USAGE') io.stderr('Run klaviyo-etl --help for usage.\n');
  if (debug && error instanceof Error && error.stack) io.stderr(redact(error.stack) + '\n');
  io.setExitCode(isEtlError(error) ? exitCodeForError(error) : EXIT.FAILED);
}
