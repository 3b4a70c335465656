import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EtlError } from '../../core/errors.js';
import { initPipeline } from '../../init/index.js';

interface InitArgs {
  csv?: string;
  table?: string;
  databaseUrl?: string;
  type?: 'profile' | 'event';
  name?: string;
  output?: string;
  force: boolean;
}

/** `klaviyo-etl init <file.csv> | --table <table>`: write a starter pipeline. */
export const initCommand: CommandModule<object, InitArgs> = {
  command: 'init [csv]',
  describe: 'Write a starter pipeline from a CSV file\'s header (or a PostgreSQL table): recognised columns (email, phone, names, dates with their format, order ids) mapped, the rest commented',
  builder: (yargs: Argv) =>
    yargs
      .positional('csv', { type: 'string', describe: 'CSV file whose header and first rows describe the columns (its encoding detected: a BOM, else UTF-8, else Windows-1252, written as encoding: when not UTF-8)' })
      .option('table', { type: 'string', describe: 'Instead of a CSV file: a PostgreSQL table (schema.table) read through $DATABASE_URL' })
      .option('database-url', { type: 'string', describe: 'With --table: the connection URL (default $DATABASE_URL; the file says ${DATABASE_URL})' })
      .option('type', { choices: ['profile', 'event'] as const, describe: 'Profiles, or Placed Order events (default: events when an order id and a date are recognised)' })
      .option('name', { type: 'string', describe: 'Pipeline name (default: from the file or table name)' })
      .option('output', { alias: 'o', type: 'string', describe: 'Pipeline file to write (default <name>.yaml); - prints it' })
      .option('force', { type: 'boolean', default: false, describe: 'Overwrite an existing output file' }) as unknown as Argv<InitArgs>,
  handler: async (args: ArgumentsCamelCase<InitArgs>) => {
    const toStdout = args.output === '-';
    const result = await initPipeline({
      csv: args.csv,
      table: args.table,
      databaseUrl: args.databaseUrl,
      type: args.type,
      name: args.name,
      output: toStdout ? undefined : args.output,
    });
    if (toStdout) {
      process.stdout.write(result.text);
      return;
    }
    const output = args.output ?? `${result.name}.yaml`;
    if (existsSync(output) && !args.force) throw new EtlError('USAGE', `${output} exists: choose another --output, or --force to overwrite it`);
    // without --output the file goes to the current directory, which the source path was made relative to
    await writeFile(output, result.text);
    const mapped = result.columns.filter((c) => c.role || (c.date && !c.date.ambiguous)).length;
    process.stdout.write(
      `wrote ${output}: ${result.type === 'event' ? 'an' : 'a'} ${result.type} pipeline, ${mapped} of ${result.columns.length} columns mapped, the others commented\n` +
        `next: klaviyo-etl validate ${output} && klaviyo-etl run ${output} --dry-run\n`,
    );
  },
};
