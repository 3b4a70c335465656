import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { formatStatus, pipelineStatus } from '../../status.js';

interface StatusArgs {
  pipeline: string;
  stateDir?: string;
  json: boolean;
}

/** `klaviyo-etl status <pipeline.yaml>`: where a pipeline stands. */
export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status <pipeline>',
  describe: 'Show where a pipeline stands: last run, checkpoint position, pending bulk jobs, what the next run will do',
  builder: (yargs: Argv) =>
    yargs
      .positional('pipeline', { type: 'string', demandOption: true, describe: 'Pipeline file (YAML)' })
      .option('state-dir', { type: 'string', describe: 'As for run: directory of checkpoints (default $KLAVIYO_ETL_STATE_DIR)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON' }) as unknown as Argv<StatusArgs>,
  handler: async (args: ArgumentsCamelCase<StatusArgs>) => {
    const status = await pipelineStatus(args.pipeline, { stateDir: args.stateDir });
    process.stdout.write((args.json ? JSON.stringify(status, null, 2) : formatStatus(status)) + '\n');
  },
};
