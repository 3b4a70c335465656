import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { EtlError } from '../../core/errors.js';
import { parseFaults, parseGenerate, parseLatency, parseRealism, startEmulator, type EmulatorOptions } from '../../emulator/index.js';
import { ioOf, type CliIo } from '../io.js';

interface EmulatorArgs {
  port: number | string;
  host: string;
  limits: string;
  apiKey?: string[];
  processingRate?: number | string;
  jobDelay?: number | string;
  duplicateEvents?: string;
  faults?: string;
  realism?: string;
  state?: string;
  seed?: string;
  subscriptionDelay?: number | string;
  smsRegions?: string;
  generate?: string;
  latency?: string;
}

const PRIVATE_KEY_RE = /^pk_[A-Za-z0-9_-]{4,}$/;
const HOST_RE = /^[A-Za-z0-9.:_%-]+$/;

/**
 * Turn the command's flags into `EmulatorOptions`. A bad value throws `USAGE` naming the flag; the seed and state
 * files are read (and refused with `USAGE`, never quoted) when the emulator starts.
 */
export function emulatorOptionsFromArgs(args: EmulatorArgs): EmulatorOptions {
  const single = { port: args.port, host: args.host, limits: args.limits, 'processing-rate': args.processingRate, 'job-delay': args.jobDelay, 'duplicate-events': args.duplicateEvents, faults: args.faults, state: args.state, seed: args.seed, 'subscription-delay': args.subscriptionDelay, 'sms-regions': args.smsRegions, generate: args.generate, latency: args.latency };
  for (const [flag, value] of Object.entries(single)) {
    if (Array.isArray(value)) throw new EtlError('USAGE', `--${flag} was given more than once`);
  }
  const options: EmulatorOptions = { port: parsePort(args.port), host: parseHost(args.host), limits: parseLimits(args.limits) };
  if (args.apiKey && args.apiKey.length > 0) {
    // never echo a key: a mistyped one may still be a real secret
    args.apiKey.forEach((k, i) => {
      if (!PRIVATE_KEY_RE.test(String(k))) throw new EtlError('USAGE', `Expected every --api-key to be a private key (pk_ followed by letters, digits, _ or -); value ${i + 1} is not`);
    });
    options.apiKeys = args.apiKey.map(String);
  }
  if (args.processingRate !== undefined) {
    const rate = Number(args.processingRate);
    if (String(args.processingRate).trim() === '' || !Number.isFinite(rate) || rate <= 0) {
      throw new EtlError('USAGE', `Expected --processing-rate to be a positive number of profiles per second, got ${JSON.stringify(String(args.processingRate))}`);
    }
    options.processingRate = rate;
  }
  if (args.jobDelay !== undefined) {
    const ms = Number(args.jobDelay);
    if (String(args.jobDelay).trim() === '' || !Number.isFinite(ms) || ms < 0) {
      throw new EtlError('USAGE', `Expected --job-delay to be a number of milliseconds ≥ 0, got ${JSON.stringify(String(args.jobDelay))}`);
    }
    options.jobDelayMs = ms;
  }
  if (args.duplicateEvents !== undefined) {
    if (args.duplicateEvents !== 'ignore' && args.duplicateEvents !== 'reject') {
      throw new EtlError('USAGE', `Expected --duplicate-events to be ignore or reject, got ${JSON.stringify(String(args.duplicateEvents))}`);
    }
    options.duplicateEvents = args.duplicateEvents;
  }
  if (args.faults !== undefined) {
    try {
      options.faults = parseFaults(args.faults);
    } catch (e) {
      throw new EtlError('USAGE', `Bad --faults: ${(e as Error).message}`);
    }
  }
  if (args.realism) {
    try {
      options.realism = parseRealism(args.realism);
    } catch (e) {
      throw new EtlError('USAGE', `Expected --realism to be JSON or k=v,… : ${(e as Error).message}`);
    }
  }
  if (args.state !== undefined) options.stateFile = filePath('--state', args.state);
  if (args.seed !== undefined) options.seedFile = filePath('--seed', args.seed);
  consentFlags(args, options);
  volumeFlags(args, options);
  return options;
}

/** `--generate` and `--latency` into `options`. */
function volumeFlags(args: EmulatorArgs, options: EmulatorOptions): void {
  if (args.generate !== undefined) {
    try {
      options.generate = parseGenerate(String(args.generate));
    } catch (e) {
      throw new EtlError('USAGE', `Bad --generate: ${(e as Error).message}`);
    }
  }
  if (args.latency !== undefined) {
    try {
      options.latency = parseLatency(String(args.latency));
    } catch (e) {
      throw new EtlError('USAGE', `Bad --latency: ${(e as Error).message}`);
    }
  }
}

/** `--subscription-delay` and `--sms-regions` into `options`. */
function consentFlags(args: EmulatorArgs, options: EmulatorOptions): void {
  if (args.subscriptionDelay !== undefined) {
    const ms = Number(args.subscriptionDelay);
    if (String(args.subscriptionDelay).trim() === '' || !Number.isFinite(ms) || ms < 0) {
      throw new EtlError('USAGE', `Expected --subscription-delay to be a number of milliseconds ≥ 0, got ${JSON.stringify(String(args.subscriptionDelay))}`);
    }
    options.subscriptionDelayMs = ms;
  }
  if (args.smsRegions !== undefined) {
    const regions = String(args.smsRegions).split(',').map((r) => r.trim()).filter(Boolean);
    const bad = regions.find((r) => !/^[A-Z]{2}$/.test(r));
    if (regions.length === 0 || bad !== undefined) {
      throw new EtlError('USAGE', `Expected --sms-regions to be upper-case ISO 3166 region codes separated by commas (e.g. US,CA,GB), got ${JSON.stringify(String(args.smsRegions))}`);
    }
    options.smsRegions = regions;
  }
}

function parsePort(value: number | string): number {
  const text = String(value).trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new EtlError('USAGE', `Expected --port to be an integer from 0 to 65535 (0 = a free port), got ${JSON.stringify(String(value))}`);
  return port;
}

function parseHost(value: string): string {
  if (!HOST_RE.test(String(value))) throw new EtlError('USAGE', `Expected --host to be a host name or an IP address (e.g. 127.0.0.1, ::1, localhost), got ${JSON.stringify(String(value))}`);
  return String(value);
}

function filePath(flag: string, value: string): string {
  if (String(value).trim() === '') throw new EtlError('USAGE', `Expected ${flag} to name a file, got an empty value`);
  return String(value);
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
      .option('port', { type: 'string', default: '0', describe: 'Port to listen on, 0-65535 (0 = a free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to bind' })
      .option('limits', { type: 'string', default: 'klaviyo', describe: "Rate limits: 'klaviyo', 'off', or a factor multiplying every allowance" })
      .option('api-key', { type: 'string', array: true, describe: 'Accept only these private keys (each key is its own account)' })
      .option('processing-rate', { type: 'string', describe: 'Bulk-import profiles processed per second (default 20000)' })
      .option('job-delay', { type: 'string', describe: 'Milliseconds a bulk import job stays queued before it is processed (e.g. 300000: five minutes; default 0)' })
      .option('duplicate-events', {
        type: 'string',
        describe: "A bulk event repeating a unique_id the profile already holds: 'ignore' (202, dropped: Klaviyo's documented answer; default) or 'reject' (400 naming it)",
      })
      .option('faults', { type: 'string', describe: 'Fault injection: JSON or k=v,… of seed, rate500, rate502, rate503, rate429, resetRate, slowRate, timeoutRate (probabilities 0-1), slowMs, noRetryAfter (0 or 1); other names are refused' })
      .option('realism', {
        type: 'string',
        describe: "Answers Klaviyo gives besides its spec's: JSON or k=v,… (authStatus=400, unknownListStatus=400, invalidProfile=request; see docs/emulator.md)",
      })
      .option('state', { type: 'string', describe: 'State file (JSON): loaded on start if it exists, saved on exit; its directory must be writable' })
      .option('seed', { type: 'string', describe: 'Seed file (JSON: lists, segments with member emails, profiles; metrics, templates, campaigns, flows)' })
      .option('subscription-delay', {
        type: 'string',
        describe: 'Milliseconds after its 202 a subscribe job is applied (Klaviyo applies subscriptions asynchronously; default 3000, 0: at once)',
      })
      .option('sms-regions', {
        type: 'string',
        describe: 'Regions the account can send SMS to, e.g. US,CA (SMS consent for others is answered 400; default: every region Klaviyo SMS is available in)',
      })
      .option('generate', {
        type: 'string',
        describe:
          'Generate data at volume in every account, exactly reproducible from its seed: k=v,… of profiles (default 1000), events (default 10000; metrics Placed Order, Ordered Product, Viewed Product, Active on Site), members (of the list "Generated list"; default 0 = no list), years (period, default 2), seed (default 1), end (RFC 3339 end of the period; default midnight UTC today), campaigns, flows, templates (a catalog over the same period; default 0)',
      })
      .option('latency', { type: 'string', describe: 'Delay every /api answer: milliseconds (250) or a range drawn uniformly per request, seeded (100-400)' })
      .example('$0 emulator --generate profiles=200000,events=1000000,members=200000 --latency 250', 'Serve a large generated account with 250 ms per answer')
      .example('$0 emulator --port 4010 --limits off', 'Serve on port 4010 without rate limits') as unknown as Argv<EmulatorArgs>,
  handler: async (args: ArgumentsCamelCase<EmulatorArgs>) => {
    await serveEmulator(emulatorOptionsFromArgs(args), ioOf(args));
  },
};
