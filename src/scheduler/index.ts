/**
 * `klaviyo-etl schedule`: one long-running process that runs each pipeline at the times its `schedule:` names
 * (croner), never two runs of one pipeline at once, and stops cleanly: `stop()` interrupts the runs in progress,
 * which checkpoint as on SIGTERM, and resolves when they have.
 */
import path from 'node:path';
import { Cron } from 'croner';
import type { Components } from '../components/types.js';
import { loadPipelineFileOrThrow } from '../config/load.js';
import { EtlError, isEtlError, redact } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { run } from '../runner/index.js';
import type { RunReport } from '../runner/report.js';

/** One line of the scheduler's log: a pipeline scheduled, a run started, ended (a run that could not start, e.g. LOCKED, ends `failed` with its error), or a firing skipped. */
export type ScheduleEvent =
  | { event: 'scheduled'; pipeline: string; file: string; cron: string; timezone: string; next: string | null }
  | { event: 'start'; pipeline: string; file: string }
  | { event: 'end'; pipeline: string; file: string; status: RunReport['status']; rows?: RunReport['rows']; durationMs: number; error?: RunReport['error'] }
  | { event: 'skip'; pipeline: string; file: string; reason: string };

export interface ScheduleOptions {
  /** Pipeline files; each must have a `schedule:` section. */
  pipelineFiles: string[];
  /** As `run --state-dir`. */
  stateDir?: string;
  /** As `run --redis-url`: share the account's rate limits between pipelines that run at the same time. */
  redisUrl?: string;
  env?: NodeJS.ProcessEnv;
  /** The runs' structured log. @default silent */
  logger?: Logger;
  /** Called with every start, end and skip. */
  onEvent?: (event: ScheduleEvent & { time: string }) => void;
  components?: Components;
}

/** A running schedule. */
export interface Scheduler {
  /** Pipeline names, in the order given. */
  readonly pipelines: string[];
  /** Stop firing; interrupt the runs in progress (they checkpoint) and wait for them. */
  stop(): Promise<void>;
}

interface Entry {
  name: string;
  file: string;
  cron: string;
  timezone: string;
}

async function entryOf(file: string, options: ScheduleOptions): Promise<Entry> {
  const { config } = await loadPipelineFileOrThrow(path.resolve(file), { env: options.env, components: options.components, stateDir: options.stateDir });
  if (!config.schedule) {
    throw new EtlError('USAGE', `${file}: pipeline ${config.name} has no schedule: section (e.g. schedule: { cron: "0 2 * * *", timezone: UTC })`);
  }
  return { name: config.name, file, cron: config.schedule.cron, timezone: config.schedule.timezone };
}

/**
 * Start the schedule: every pipeline file is loaded and checked first (a missing `schedule:` or an invalid file
 * throws before anything fires), then each fires at its times. A firing while the pipeline's previous run is still
 * going is skipped (logged), never queued or run in parallel.
 */
export async function schedule(options: ScheduleOptions): Promise<Scheduler> {
  const entries: Entry[] = [];
  for (const file of options.pipelineFiles) entries.push(await entryOf(file, options));
  const names = entries.map((e) => e.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new EtlError('USAGE', `pipeline ${twice} is named twice: one schedule per pipeline (they share a checkpoint)`);
  const emit = (event: ScheduleEvent): void => options.onEvent?.({ time: new Date().toISOString(), ...event });
  const stopping = new AbortController();
  const running = new Map<string, Promise<void>>();

  const fire = async (entry: Entry): Promise<void> => {
    emit({ event: 'start', pipeline: entry.name, file: entry.file });
    const started = Date.now();
    try {
      const report = await run({
        pipelineFile: entry.file,
        stateDir: options.stateDir,
        redisUrl: options.redisUrl,
        env: options.env,
        logger: options.logger ?? silentLogger,
        signal: stopping.signal,
        components: options.components,
      });
      emit({ event: 'end', pipeline: entry.name, file: entry.file, status: report.status, rows: report.rows, durationMs: report.durationMs, ...(report.error ? { error: report.error } : {}) });
    } catch (error) {
      // LOCKED (a run started by hand or on another host), an edited file that no longer validates…
      const code = isEtlError(error) ? error.code : 'INTERNAL';
      const message = redact(error instanceof Error ? error.message : String(error));
      emit({ event: 'end', pipeline: entry.name, file: entry.file, status: 'failed', durationMs: Date.now() - started, error: { code, message } });
    }
  };

  const jobs = entries.map(
    (entry) =>
      new Cron(entry.cron, { timezone: entry.timezone, name: entry.name }, () => {
        if (stopping.signal.aborted) return;
        if (running.has(entry.name)) {
          emit({ event: 'skip', pipeline: entry.name, file: entry.file, reason: 'the previous run is still running' });
          return;
        }
        const done = fire(entry).finally(() => running.delete(entry.name));
        running.set(entry.name, done);
      }),
  );
  entries.forEach((entry, i) =>
    emit({ event: 'scheduled', pipeline: entry.name, file: entry.file, cron: entry.cron, timezone: entry.timezone, next: jobs[i]!.nextRun()?.toISOString() ?? null }),
  );

  return {
    pipelines: names,
    async stop() {
      for (const job of jobs) job.stop();
      stopping.abort();
      await Promise.all(running.values());
    },
  };
}
