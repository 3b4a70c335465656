import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { jsonLogger, silentLogger, type LogLevel } from '../../core/logger.js';
import { schedule, type ScheduleEvent } from '../../scheduler/index.js';
import { ioOf } from '../io.js';

interface ScheduleArgs {
  pipelines: string[];
  stateDir?: string;
  redisUrl?: string;
  json: boolean;
  logLevel?: LogLevel;
}

/** One plain line per scheduler event. */
function line(e: ScheduleEvent & { time: string }): string {
  switch (e.event) {
    case 'scheduled':
      return `${e.time} scheduled ${e.pipeline} (${e.file}): "${e.cron}" ${e.timezone}, next ${e.next ?? 'never'}`;
    case 'start':
      return `${e.time} start ${e.pipeline}`;
    case 'skip':
      return `${e.time} skip ${e.pipeline}: ${e.reason}`;
    case 'end': {
      const rows = e.rows ? ` read ${e.rows.read}, loaded ${e.rows.loaded}, rejected ${e.rows.rejected}` : '';
      const error = e.error ? ` [${e.error.code}] ${e.error.message.split('\n')[0]}` : '';
      return `${e.time} end ${e.pipeline} ${e.status} in ${(e.durationMs / 1000).toFixed(1)} s:${rows}${error}`;
    }
  }
}

/** `klaviyo-etl schedule <pipelines…>`: run each pipeline at the times of its `schedule:` until SIGTERM/SIGINT. */
export const scheduleCommand: CommandModule<object, ScheduleArgs> = {
  command: 'schedule <pipelines..>',
  describe: 'Run pipelines at the times their schedule: section names (cron + time zone), one process, until SIGTERM',
  builder: (yargs: Argv) =>
    yargs
      .positional('pipelines', { type: 'string', array: true, demandOption: true, describe: 'Pipeline files, each with a schedule: section' })
      .option('state-dir', { type: 'string', describe: 'As run --state-dir (default $KLAVIYO_ETL_STATE_DIR)' })
      .option('redis-url', { type: 'string', describe: 'Share the account’s rate limits between the pipelines through Redis (default $KLAVIYO_ETL_REDIS_URL)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print each start, end and skip as a JSON line' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, describe: 'Also write the runs’ structured log (JSON lines) to stderr at this level' })
      .example('$0 schedule pipelines/*.yaml', 'Run every pipeline at its times; stop with SIGTERM (the running pipelines checkpoint)')
      .epilogue('A firing while the same pipeline is still running is skipped (logged), never run in parallel. On SIGTERM/SIGINT the running pipelines stop as `run` does (checkpoint written); exit 143/130.') as unknown as Argv<ScheduleArgs>,
  handler: async (args: ArgumentsCamelCase<ScheduleArgs>) => {
    const io = ioOf(args);
    const scheduler = await schedule({
      pipelineFiles: args.pipelines.map(String),
      stateDir: args.stateDir,
      redisUrl: args.redisUrl,
      logger: args.logLevel ? jsonLogger({ level: args.logLevel }) : silentLogger,
      onEvent: (e) => io.stdout((args.json ? JSON.stringify(e) : line(e)) + '\n'),
    });
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    const exitCode = signal === 'SIGTERM' ? 143 : 130;
    // a second signal stops at once (checkpoints as last written)
    const again = (): void => process.exit(exitCode);
    process.once('SIGTERM', again);
    process.once('SIGINT', again);
    io.stderr(`${signal}: stopping the schedule; running pipelines write their checkpoint…\n`);
    await scheduler.stop();
    io.setExitCode(exitCode);
  },
};
