import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EXIT } from '../../core/exit-codes.js';
import { formatTestReport, testPipeline } from '../../pipeline-tests.js';
import { ioOf } from '../io.js';

interface TestArgs {
  pipelines: string[];
  json: boolean;
}

/** `klaviyo-etl test <pipeline…>`: run the mapping tests (`tests:`) of pipeline files; exit 1 on a mismatch. */
export const testCommand: CommandModule<object, TestArgs> = {
  command: 'test <pipelines..>',
  describe: "Run a pipeline's mapping tests (its tests: section): rows in, expected items, rejects and skipped rows out; exit 1 on a mismatch, with a diff",
  builder: (yargs: Argv) =>
    yargs
      .positional('pipelines', { type: 'string', array: true, demandOption: true, describe: 'Pipeline files (YAML) with a tests: section' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the results as JSON: [{pipeline, file, passed, tests}]' })
      .example('$0 test pipelines/orders.yaml', 'Run the mapping tests of one pipeline (in CI: every pipeline)') as unknown as Argv<TestArgs>,
  handler: async (args: ArgumentsCamelCase<TestArgs>) => {
    const io = ioOf(args);
    const reports = [];
    for (const file of args.pipelines.map(String)) reports.push(await testPipeline(file));
    if (args.json) io.stdout(JSON.stringify(reports, null, 2) + '\n');
    else io.stdout(reports.map(formatTestReport).join('\n\n') + '\n');
    if (reports.some((r) => !r.passed)) io.setExitCode(EXIT.FAILED);
  },
};
