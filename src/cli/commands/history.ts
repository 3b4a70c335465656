import { writeFile } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EtlError } from '../../core/errors.js';
import { formatHistory, historyHtml, pipelineHistory } from '../../history/index.js';

interface HistoryArgs {
  pipeline: string;
  stateDir?: string;
  limit?: number;
  json: boolean;
  html?: string;
}

/** `klaviyo-etl history <pipeline.yaml>`: the pipeline's last runs. */
export const historyCommand: CommandModule<object, HistoryArgs> = {
  command: 'history <pipeline>',
  describe: "Show a pipeline's last runs (status, rows, rejects by code, requests, 429s, duration) from its run history",
  builder: (yargs: Argv) =>
    yargs
      .positional('pipeline', { type: 'string', demandOption: true, describe: 'Pipeline file (YAML)' })
      .option('state-dir', { type: 'string', describe: 'As for run: directory of checkpoints and history (default $KLAVIYO_ETL_STATE_DIR)' })
      .option('limit', { type: 'number', describe: 'The last N runs (default 20; 100 with --html)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the run reports as a JSON array, newest last' })
      .option('html', { type: 'string', describe: 'Write a self-contained HTML page with charts of the runs to this file' }) as unknown as Argv<HistoryArgs>,
  handler: async (args: ArgumentsCamelCase<HistoryArgs>) => {
    if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0)) {
      throw new EtlError('USAGE', `Expected --limit to be a positive integer, got ${String(args.limit)}`);
    }
    const limit = args.limit ?? (args.html !== undefined ? 100 : 20);
    const { pipeline: name, location, runs } = await pipelineHistory(args.pipeline, { stateDir: args.stateDir, limit });
    if (args.html !== undefined) {
      await writeFile(args.html, historyHtml(name, runs));
      if (!args.json) process.stdout.write(`${args.html}: ${runs.length} run(s) of ${name}\n`);
    }
    if (args.json) process.stdout.write(JSON.stringify(runs, null, 2) + '\n');
    else if (args.html === undefined) process.stdout.write(formatHistory(name, location, runs) + '\n');
  },
};
