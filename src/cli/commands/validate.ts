import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { validatePipelineFiles } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';
import { EXIT } from '../../core/exit-codes.js';
import { validatePipelineData } from '../../runner/preflight.js';
import { ioOf } from '../io.js';

interface ValidateArgs {
  files: string[];
  json: boolean;
  withData: boolean;
  stateDir?: string;
}

/** `klaviyo-etl validate <files…>`: every problem of every pipeline file at once, then a summary; exit 2 if any. */
export const validateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate <files..>',
  describe: 'Check pipeline files and print every problem with file:line:col and a code (exit 2 if any)',
  builder: (yargs: Argv) =>
    yargs
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'Pipeline files (YAML)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print {valid, files, problems} as JSON (with --with-data: and warnings)' })
      .option('with-data', {
        type: 'boolean',
        default: false,
        describe:
          "Also read the start of the source's files or S3 objects (CSV headers, NDJSON keys) and check them against the mapping: missing columns (did you mean…), duplicate or empty header names, the wrong delimiter, empty files. Nothing is sent",
      })
      .option('state-dir', {
        type: 'string',
        describe: 'The state directory the runs will use (as run --state-dir; default $KLAVIYO_ETL_STATE_DIR), to check the rejects file against its state files',
      })
      .example('$0 validate pipelines/*.yaml', 'Validate every pipeline file')
      .example('$0 validate nightly.yaml --with-data', "Also check tonight's files against the mapping") as unknown as Argv<ValidateArgs>,
  handler: async (args: ArgumentsCamelCase<ValidateArgs>) => {
    const io = ioOf(args);
    const files = args.files.map(String);
    const options = { stateDir: args.stateDir };
    const { problems, warnings } = args.withData ? await validatePipelineData(files, options) : { problems: await validatePipelineFiles(files, options), warnings: undefined };
    if (args.json) {
      io.stdout(JSON.stringify({ valid: problems.length === 0, files, problems, ...(warnings ? { warnings } : {}) }, null, 2) + '\n');
    } else {
      for (const problem of problems) io.stdout(formatProblem(problem) + '\n');
      for (const warning of warnings ?? []) io.stdout(`${formatProblem(warning)} (warning)\n`);
      const warned = warnings && warnings.length > 0 ? `, ${plural(warnings.length, 'warning')}` : '';
      io.stdout(summary(files.length, problems.length, new Set(problems.map((p) => p.file)).size) + warned + '\n');
    }
    if (problems.length > 0) io.setExitCode(EXIT.INVALID);
  },
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function summary(files: number, problems: number, badFiles: number): string {
  if (problems === 0) return `${plural(files, 'pipeline file')} valid`;
  return `${plural(problems, 'problem')} in ${badFiles} of ${plural(files, 'pipeline file')}`;
}
