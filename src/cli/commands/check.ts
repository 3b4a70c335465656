import { existsSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { checkPipeline, formatCheckReport } from '../../check/index.js';
import { EtlError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';

interface CheckArgs {
  pipeline: string;
  emulator: boolean;
  emulatorSeed?: string;
  stateDir?: string;
  redisUrl?: string;
  timeout: number;
  json: boolean;
}

/** `klaviyo-etl check <pipeline.yaml>`: reach every service the pipeline names. */
export const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check <pipeline>',
  describe: 'Reach every service a pipeline names (Klaviyo key and scopes, lists and segments, PostgreSQL query plan, S3, checkpoint store, Redis); one line per check with a fix; exit 1 if any fails',
  builder: (yargs: Argv) =>
    yargs
      .positional('pipeline', { type: 'string', demandOption: true, describe: 'Pipeline file (YAML)' })
      .option('emulator', { type: 'boolean', default: false, describe: 'Check Klaviyo against an embedded emulator (the other services are real)' })
      .option('emulator-seed', { type: 'string', describe: 'Seed the embedded emulator (lists, segments) from this JSON file' })
      .option('state-dir', { type: 'string', describe: 'As for run: directory of checkpoints and default rejects files (default $KLAVIYO_ETL_STATE_DIR)' })
      .option('redis-url', { type: 'string', describe: 'Redis shared for rate limits, to PING (default $KLAVIYO_ETL_REDIS_URL)' })
      .option('timeout', { type: 'number', default: 10, describe: 'Seconds one network check may take' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the checks as JSON' }) as unknown as Argv<CheckArgs>,
  handler: async (args: ArgumentsCamelCase<CheckArgs>) => {
    if (!(Number.isFinite(args.timeout) && args.timeout > 0)) throw new EtlError('USAGE', `Expected --timeout to be a positive number of seconds, got ${String(args.timeout)}`);
    if (args.emulatorSeed !== undefined && !args.emulator) throw new EtlError('USAGE', '--emulator-seed seeds the embedded emulator: use it with --emulator');
    if (args.emulatorSeed !== undefined && !existsSync(args.emulatorSeed)) throw new EtlError('USAGE', `--emulator-seed: no such file ${args.emulatorSeed}`);
    const report = await checkPipeline({
      pipelineFile: args.pipeline,
      emulator: args.emulator ? (args.emulatorSeed ? { seedFile: args.emulatorSeed } : true) : false,
      stateDir: args.stateDir,
      redisUrl: args.redisUrl,
      timeoutMs: Math.round(args.timeout * 1000),
    });
    process.stdout.write((args.json ? JSON.stringify(report, null, 2) : formatCheckReport(report)) + '\n');
    process.exitCode = report.ok ? EXIT.OK : EXIT.FAILED;
  },
};
