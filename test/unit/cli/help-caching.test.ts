import { describe, expect, it } from 'vitest';
import yargs, { type Argv } from 'yargs';
import { skipHelpCaching } from '../../../src/cli/main.js';

/** The part of yargs' usage instance the test reads (internal to yargs, as the method the CLI replaces). */
type Usage = { hasCachedHelpMessage(): boolean };

/** Whether yargs had formatted the command's help by the time the command's async handler got control back. */
async function helpFormattedDuringHandler(skip: boolean): Promise<boolean> {
  let formatted: boolean | undefined;
  const cli: Argv = yargs()
    .command({
      command: 'go',
      describe: 'A command with options (one described with non-ASCII text, like the CLI’s)',
      builder: (y: Argv) => y.option('plenty', { type: 'string', describe: 'An option’s description' }),
      handler: async () => {
        await Promise.resolve(); // the first await of `run` hands control back to yargs
        formatted = (cli as unknown as { getInternalMethods(): { getUsageInstance(): Usage } }).getInternalMethods().getUsageInstance().hasCachedHelpMessage();
      },
    })
    .exitProcess(false);
  if (skip) skipHelpCaching(cli);
  await cli.parseAsync(['go']);
  return formatted!;
}

describe('skipHelpCaching', () => {
  it('yargs formats a command’s help while its handler runs; the CLI skips that', async () => {
    // the control: if a yargs upgrade stops caching (or renames what is replaced), this says so
    expect(await helpFormattedDuringHandler(false)).toBe(true);
    expect(await helpFormattedDuringHandler(true)).toBe(false);
  });

  it('--help still prints the command’s help', async () => {
    let out = '';
    const cli = yargs()
      .command({ command: 'go', describe: 'go somewhere', builder: (y: Argv) => y.option('plenty', { type: 'string', describe: 'An option’s description' }), handler: () => {} })
      .exitProcess(false);
    skipHelpCaching(cli);
    await cli.parseAsync(['go', '--help'], {}, (_err, _argv, output) => {
      out = output;
    });
    expect(out).toContain('--plenty');
    expect(out).toContain('An option’s description');
  });
});
