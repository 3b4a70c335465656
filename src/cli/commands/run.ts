import { existsSync } from 'node:fs';
import v8 from 'node:v8';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { parseShard } from '../../core/shard.js';
import { EtlError } from '../../core/errors.js';
import { jsonLogger, silentLogger, type LogLevel } from '../../core/logger.js';
import { run } from '../../runner/index.js';
import { parseLatency, type LatencyOption } from '../../emulator/index.js';
import { formatSummary } from '../../runner/report.js';
import { EXIT, exitCodeForReport } from '../../core/exit-codes.js';
import { parseWindow } from '../../runner/plan.js';
import { createProgress } from '../progress.js';
import { RequestPreviews } from '../preview.js';

interface RunArgs {
  pipeline: string;
  emulator: boolean;
  emulatorLimits: string;
  emulatorSeed?: string;
  emulatorLatency?: string;
  shard?: string;
  dryRun: boolean;
  window?: string;
  report?: string;
  restart: boolean;
  fullRefresh: boolean;
  fromRejects?: string;
  stateDir?: string;
  redisUrl?: string;
  since?: string;
  until?: string;
  limit?: number;
  json: boolean;
  logLevel: LogLevel;
  progress: boolean;
  metricsPort?: number;
  metricsHost: string;
  show?: number;
}

/** `klaviyo-etl run <pipeline.yaml>`: run a pipeline. */
export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <pipeline>',
  describe: 'Run a pipeline file (resumes an interrupted run from its checkpoint)',
  builder: (yargs: Argv) =>
    yargs
      .positional('pipeline', { type: 'string', demandOption: true, describe: 'Pipeline file (YAML)' })
      .option('emulator', {
        type: 'boolean',
        default: false,
        describe: 'Run against an embedded Klaviyo emulator on a free loopback port instead of the real API (its checkpoint is temporary unless --state-dir is given: the emulator forgets everything when the run ends; the pipeline’s own checkpoint store, S3 destinations and PostgreSQL tables are never touched: an S3 export becomes a local file under emulator-output/ in the state directory, a postgres export goes to <table>_emulator)',
      })
      .option('emulator-limits', {
        type: 'string',
        default: 'klaviyo',
        describe: "Rate limits of the embedded emulator: 'klaviyo', 'off', or a speed-up factor",
      })
      .option('emulator-seed', {
        type: 'string',
        describe: 'Seed the embedded emulator from this JSON file (lists, segments, profiles) before the run, e.g. for export examples',
      })
      .option('emulator-latency', {
        type: 'string',
        describe: 'Delay every answer of the embedded emulator: milliseconds (250) or a range drawn uniformly per request (100-400), to see the run under real-world latency',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'Read, transform and validate everything, send nothing; report the requests a real run would make',
      })
      .option('window', {
        type: 'string',
        describe: 'With --dry-run: the time the run must fit in (e.g. 2h, 90m, 1h30m); exit 1 when the least wall time the account\'s rate-limit tiers allow exceeds it',
      })
      .option('show', {
        type: 'number',
        describe: 'With --dry-run: print the first N requests a real run would send (URL, headers, body), exactly as they would be sent, the API key redacted; combine with --limit to keep bodies short',
      })
      .option('report', { type: 'string', describe: 'Write the run report as JSON to this file' })
      .option('restart', { type: 'boolean', default: false, describe: "Discard an unfinished run's checkpoint and start over" })
      .option('full-refresh', {
        type: 'boolean',
        default: false,
        describe: 'Read every source in full, also files and rows earlier runs read (as a new run: an unfinished one is discarded); the watermark is replaced once the run succeeds',
      })
      .option('from-rejects', {
        type: 'string',
        describe: 'Send the rows of this rejects file (NDJSON or CSV, e.g. fixed in a spreadsheet) through the mapping again instead of reading the source; writes its own rejects file, touches no checkpoint',
      })
      .option('state-dir', {
        type: 'string',
        describe: 'Directory for checkpoints and default rejects files (<dir>/<pipeline name>/); default $KLAVIYO_ETL_STATE_DIR, else .klaviyo-etl/ beside the pipeline file',
      })
      .option('redis-url', {
        type: 'string',
        describe: 'Share rate limits with other processes (several pipelines on one Klaviyo account) through Redis; default $KLAVIYO_ETL_REDIS_URL',
      })
      .option('since', { type: 'string', describe: 'Backfill (postgres and klaviyo sources): lower bound (inclusive) of the first cursor column (klaviyo: the resource time, ISO 8601 with an offset, or a date) for this run; the stored watermark does not move' })
      .option('until', { type: 'string', describe: 'Backfill (postgres and klaviyo sources): upper bound (exclusive) of the first cursor column (klaviyo: the resource time) for this run' })
      .option('limit', { type: 'number', describe: 'Read at most N records (sample run)' })
      .option('shard', {
        type: 'string',
        describe:
          'Read only part i of n of the source (csv, ndjson, s3: whole files by name hash; postgres: rows by source.shardKey hash), with its own checkpoint (<name>.shard-i-of-n); run the n shards with one --redis-url so they share the account’s limits',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print the run report as JSON instead of a summary' })
      .option('log-level', {
        choices: ['debug', 'info', 'warn', 'error'] as const,
        default: 'warn' as LogLevel,
        describe: 'Structured (JSON lines) log level on stderr',
      })
      .option('metrics-port', {
        type: 'number',
        describe: 'Serve the run\'s Prometheus metrics at http://<host>:<port>/metrics while it runs (0: a free port, printed on stderr)',
      })
      .option('metrics-host', { type: 'string', default: '0.0.0.0', describe: 'Address --metrics-port listens on' })
      .option('progress', {
        type: 'boolean',
        default: process.stderr.isTTY ?? false,
        describe: 'Show live progress on stderr (default: when stderr is a terminal)',
      }) as unknown as Argv<RunArgs>,
  handler: async (args: ArgumentsCamelCase<RunArgs>) => {
    const { window, previews, emulatorLimits, emulatorLatency } = checkRunArgs(args);
    limitHeapGrowth();
    const controller = new AbortController();
    let signal: NodeJS.Signals | undefined;
    const onSignal = (name: NodeJS.Signals) => {
      if (signal) process.exit(name === 'SIGTERM' ? 143 : 130); // second signal: stop now
      signal = name;
      process.stderr.write(`\n${name}: stopping, draining in-flight requests and writing the checkpoint…\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const logger = args.logLevel ? jsonLogger({ level: args.logLevel }) : silentLogger;
    const progress = args.progress ? createProgress(process.stderr) : undefined;
    try {
      const report = await run({
        pipelineFile: args.pipeline,
        emulator: args.emulator
          ? { limits: emulatorLimits, ...(args.emulatorSeed ? { seedFile: args.emulatorSeed } : {}), ...(emulatorLatency !== undefined ? { latency: emulatorLatency } : {}) }
          : false,
        dryRun: args.dryRun,
        window,
        reportFile: args.report,
        restart: args.restart,
        fullRefresh: args.fullRefresh,
        ...(args.fromRejects !== undefined ? { fromRejects: args.fromRejects } : {}),
        stateDir: args.stateDir,
        redisUrl: args.redisUrl,
        since: args.since,
        until: args.until,
        limit: args.limit,
        shard: args.shard === undefined ? undefined : parseShard(args.shard),
        logger,
        signal: controller.signal,
        onProgress: progress?.update,
        metricsPort: args.metricsPort,
        metricsHost: args.metricsHost,
        onMetricsServed: (url) => {
          if (url) process.stderr.write(`metrics: ${url}\n`);
        },
        onPlannedRequest: previews?.add,
      });
      progress?.done();
      if (args.json) process.stdout.write(JSON.stringify(previews ? { ...report, preview: previews } : report, null, 2) + '\n');
      else {
        if (previews) process.stdout.write(previews.format() + '\n\n');
        process.stdout.write(formatSummary(report) + '\n');
        if (report.emulator) process.stdout.write(formatEmulatorState(report.emulator) + '\n');
      }
      // a plan that cannot fit its window fails the dry run (a scheduler must not start a night it cannot finish)
      process.exitCode = report.plan?.window && !report.plan.window.fits && report.status !== 'interrupted' ? EXIT.FAILED : exitCodeForReport(report, signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

/** The run options whose values yargs cannot check: a bad one is a usage error before anything starts. */
function checkRunArgs(args: ArgumentsCamelCase<RunArgs>): {
  window: number | undefined;
  previews: RequestPreviews | undefined;
  emulatorLimits: 'klaviyo' | 'off' | number;
  emulatorLatency: LatencyOption | undefined;
} {
  // a bad value is a usage error, never a run that quietly reads nothing (0, -3) or everything (NaN)
  if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0)) {
    throw new EtlError('USAGE', `Expected --limit to be a positive integer, got ${String(args.limit)}`);
  }
  if (args.metricsPort !== undefined && !(Number.isInteger(args.metricsPort) && args.metricsPort >= 0 && args.metricsPort <= 65535)) {
    throw new EtlError('USAGE', `Expected --metrics-port to be a port number (0-65535), got ${String(args.metricsPort)}`);
  }
  const window = args.window === undefined ? undefined : parseWindow(String(args.window));
  if (args.window !== undefined && window === undefined) throw new EtlError('USAGE', `Expected --window to be a duration like 2h, 90m or 1h30m, got ${String(args.window)}`);
  if (window !== undefined && !args.dryRun) throw new EtlError('USAGE', '--window is the time a dry run checks the plan against: use it with --dry-run');
  if (args.show !== undefined && !(Number.isInteger(args.show) && args.show > 0)) {
    throw new EtlError('USAGE', `Expected --show to be a positive integer, got ${String(args.show)}`);
  }
  if (args.show !== undefined && !args.dryRun) throw new EtlError('USAGE', '--show prints the requests of a dry run: use it with --dry-run');
  const previews = args.show === undefined ? undefined : new RequestPreviews(args.show);
  const emulatorLimits = parseLimits(args.emulatorLimits);
  if (args.emulatorSeed !== undefined && !existsSync(args.emulatorSeed)) {
    throw new EtlError('USAGE', `--emulator-seed: no such file ${args.emulatorSeed}`);
  }
  if (args.emulatorSeed !== undefined && !args.emulator) {
    throw new EtlError('USAGE', '--emulator-seed seeds the embedded emulator: use it with --emulator');
  }
  let emulatorLatency: LatencyOption | undefined;
  if (args.emulatorLatency !== undefined) {
    if (!args.emulator) throw new EtlError('USAGE', '--emulator-latency delays the embedded emulator: use it with --emulator');
    try {
      emulatorLatency = parseLatency(String(args.emulatorLatency));
    } catch (e) {
      throw new EtlError('USAGE', `Bad --emulator-latency: ${(e as Error).message}`);
    }
  }
  return { window, previews, emulatorLimits, emulatorLatency };
}

function parseLimits(value: string): 'klaviyo' | 'off' | number {
  if (value === 'klaviyo' || value === 'off') return value;
  const factor = Number(value);
  if (!Number.isFinite(factor) || factor <= 0) throw new EtlError('USAGE', `Expected --emulator-limits to be klaviyo, off or a positive number, got ${value}`);
  return factor;
}

function formatEmulatorState(emulator: { url: string; state: unknown }): string {
  const s = emulator.state as {
    profiles?: number;
    events?: number;
    eventsByMetric?: Record<string, number>;
    duplicateEventsIgnored?: number;
    lists?: { id: string; name: string; members: number }[];
  };
  const lines = [`emulator (${emulator.url}) now holds:`, `  profiles  ${s.profiles ?? 0}`, `  events    ${s.events ?? 0}`];
  for (const [metric, count] of Object.entries(s.eventsByMetric ?? {})) lines.push(`    ${metric}: ${count}`);
  if (s.duplicateEventsIgnored) lines.push(`  duplicate events ignored  ${s.duplicateEventsIgnored}`);
  for (const list of s.lists ?? []) lines.push(`  list ${list.name} (${list.id}): ${list.members} members`);
  return lines.join('\n');
}

/** V8 heap growing factor of a run, in percent (the old space may grow to (1 + x/100) × the live heap before a full GC). */
const HEAP_GROWING_PERCENT = 75;

/**
 * A run's live heap is small (in-flight batches: ~21–30 MB after a full GC) but allocates fast, and V8's default
 * growing factor lets the old space reach ~4× the live heap before a full GC (peak RSS ~400 MB on a 1M-row CSV). A
 * fixed factor of 1.75 keeps it near that (see docs/performance.md, section 4). Set in-process (V8 reads this flag
 * at every GC), so no wrapper process; a value given by the user (NODE_OPTIONS / node flags) wins.
 */
function limitHeapGrowth(): void {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => /heap[-_]growing[-_]percent/.test(a));
  if (!given) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
