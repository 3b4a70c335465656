import { createInterface } from 'node:readline';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EXIT } from '../../core/exit-codes.js';
import { formatResetPlan, pipelineResetPlan, resetPipeline } from '../../reset.js';
import { ioOf } from '../io.js';

interface ResetArgs {
  pipeline: string;
  stateDir?: string;
  yes: boolean;
}

/** One line from stdin ('' when it ends first): the answer to a confirmation. */
function answer(): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!done) resolve('');
    });
  });
}

/** `klaviyo-etl reset <pipeline.yaml>`: forget a pipeline's state (watermark, unfinished run), after a confirmation. */
export const resetCommand: CommandModule<object, ResetArgs> = {
  command: 'reset <pipeline>',
  describe: "Forget a pipeline's state: the watermark (the next run reads every source in full) and an unfinished run; rejects files are kept. Asks for confirmation",
  builder: (yargs: Argv) =>
    yargs
      .positional('pipeline', { type: 'string', demandOption: true, describe: 'Pipeline file (YAML)' })
      .option('state-dir', { type: 'string', describe: 'As for run: directory of checkpoints (default $KLAVIYO_ETL_STATE_DIR)' })
      .option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'Do not ask for confirmation (scripts)' }) as unknown as Argv<ResetArgs>,
  handler: async (args: ArgumentsCamelCase<ResetArgs>) => {
    const io = ioOf(args);
    const options = { stateDir: args.stateDir };
    const plan = await pipelineResetPlan(args.pipeline, options);
    io.stdout(formatResetPlan(plan) + '\n');
    if (plan.state === 'never-run') return;
    if (!args.yes) {
      io.stdout(`Reset ${plan.pipeline}? [y/N] `);
      const reply = (await answer()).trim().toLowerCase();
      if (reply !== 'y' && reply !== 'yes') {
        io.stdout('\nNot reset: nothing changed (answer y, or pass --yes in scripts).\n');
        io.setExitCode(EXIT.FAILED);
        return;
      }
    }
    const done = await resetPipeline(args.pipeline, options);
    io.stdout(done.state === 'never-run' ? 'Nothing to reset.\n' : `Reset ${done.pipeline}: the next run starts from nothing.\n`);
  },
};
