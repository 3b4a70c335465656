import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EtlError } from '../../core/errors.js';
import { parseFaults, startEmulator, type EmulatorOptions } from '../../emulator/index.js';
import { ioOf, type CliIo } from '../io.js';

interface EmulatorArgs {
  port: number;
  host: string;
  limits: string;
  apiKey?: string[];
  processingRate?: number;
  jobDelay?: number;
  duplicateEvents?: string;
  faults?: string;
  state?: string;
  seed?: string;
}

/** Turn the command's flags into `EmulatorOptions` (throws `USAGE` on bad values). */
export function emulatorOptionsFromArgs(args: EmulatorArgs): EmulatorOptions {
  const options: EmulatorOptions = { port: args.port, host: args.host, limits: parseLimits(args.limits) };
  if (args.apiKey && args.apiKey.length > 0) options.apiKeys = args.apiKey.map(String);
  if (args.processingRate !== undefined) {
    if (!(args.processingRate > 0)) throw new EtlError('USAGE', `Expected --processing-rate to be a positive number, got ${args.processingRate}`);
    options.processingRate = args.processingRate;
  }
  if (args.jobDelay !== undefined) {
    if (!(args.jobDelay >= 0)) throw new EtlError('USAGE', `Expected --job-delay to be a number of milliseconds ≥ 0, got ${args.jobDelay}`);
    options.jobDelayMs = args.jobDelay;
  }
  if (args.duplicateEvents !== undefined) {
    if (args.duplicateEvents !== 'ignore' && args.duplicateEvents !== 'reject') {
      throw new EtlError('USAGE', `Expected --duplicate-events to be ignore or reject, got ${args.duplicateEvents}`);
    }
    options.duplicateEvents = args.duplicateEvents;
  }
  if (args.faults) {
    try {
      options.faults = parseFaults(args.faults);
    } catch (e) {
      throw new EtlError('USAGE', `Expected --faults to be JSON or k=v,… : ${(e as Error).message}`);
    }
  }
  if (args.state) options.stateFile = args.state;
  if (args.seed) options.seedFile = args.seed;
  return options;
}

function parseLimits(value: string): 'klaviyo' | 'off' | number {
  if (value === 'klaviyo' || value === 'off') return value;
  const factor = Number(value);
  if (!Number.isFinite(factor) || factor <= 0) throw new EtlError('USAGE', `Expected --limits to be klaviyo, off or a positive number, got ${value}`);
  return factor;
}

/**
 * Start the emulator, print its base URL as the first line of stdout, serve until `signal` aborts or the process
 * gets SIGINT/SIGTERM, then close (saving `stateFile`).
 */
export async function serveEmulator(options: EmulatorOptions, io: CliIo, signal?: AbortSignal): Promise<void> {
  const handle = await startEmulator(options);
  io.stdout(handle.url + '\n');
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop);
    if (signal?.aborted) stop();
  });
  await handle.close();
  io.stderr('emulator stopped\n');
}

/** `klaviyo-etl emulator`: a local Klaviyo emulator (see docs/emulator.md). */
export const emulatorCommand: CommandModule<object, EmulatorArgs> = {
  command: 'emulator',
  describe: 'Run the Klaviyo emulator as a local HTTP server (prints its base URL on the first line of stdout)',
  builder: (yargs: Argv) =>
    yargs
      .option('port', { type: 'number', default: 0, describe: 'Port to listen on (0 = a free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to bind' })
      .option('limits', { type: 'string', default: 'klaviyo', describe: "Rate limits: 'klaviyo', 'off', or a factor multiplying every allowance" })
      .option('api-key', { type: 'string', array: true, describe: 'Accept only these private keys (each key is its own account)' })
      .option('processing-rate', { type: 'number', describe: 'Bulk-import profiles processed per second (default 20000)' })
      .option('job-delay', { type: 'number', describe: 'Milliseconds a bulk import job stays queued before it is processed (e.g. 300000: five minutes; default 0)' })
      .option('duplicate-events', {
        type: 'string',
        describe: "A bulk event repeating a unique_id the profile already holds: 'ignore' (202, dropped: Klaviyo's documented answer; default) or 'reject' (400 naming it)",
      })
      .option('faults', { type: 'string', describe: 'Fault injection: JSON or k=v,… (seed, rate500, rate503, rate429, resetRate, slowRate, slowMs, timeoutRate)' })
      .option('state', { type: 'string', describe: 'State file: loaded on start, saved on exit' })
      .option('seed', { type: 'string', describe: 'Seed file (JSON: lists, segments with member emails, profiles)' })
      .example('$0 emulator --port 4010 --limits off', 'Serve on port 4010 without rate limits') as unknown as Argv<EmulatorArgs>,
  handler: async (args: ArgumentsCamelCase<EmulatorArgs>) => {
    await serveEmulator(emulatorOptionsFromArgs(args), ioOf(args));
  },
};
