import type { KlaviyoDestinationConfig } from '../config/schema.js';
import { EtlError } from '../core/errors.js';
import { assertItemKind, type LoadItem, type ProfileItem, type Reject, type SourcePosition } from '../core/record.js';
import { Batcher } from './batcher.js';
import { BulkSender, envelope, errorMessage, itemReject, pointerIndex, type BulkEndpoint, type Entry, sendOrPlan } from './bulk.js';
import type { JsonApiError, KlaviyoClient, KlaviyoResponse } from '../klaviyo/client.js';
import { ProfileClearer } from './profile-clears.js';
import type { CloseOptions, LoadContext, Loader } from './types.js';

/** The parts of the destination config the profile loader reads. */
export type ProfileLoaderConfig = Pick<KlaviyoDestinationConfig, 'concurrency' | 'lists'> &
  Partial<Pick<KlaviyoDestinationConfig, 'jobTimeoutMs'>> & {
    batch: Pick<KlaviyoDestinationConfig['batch'], 'profiles' | 'maxBytes'>;
  };

/** How long a job may stay queued or processing before the run stops (KlaviyoDestination.jobTimeoutMs). */
const DEFAULT_JOB_TIMEOUT_MS = 3_600_000;

/** How bulk import jobs are polled. */
export interface JobPollOptions {
  /** First delay before polling a new job, in ms (doubles up to `maxIntervalMs`). @default 1000 */
  intervalMs?: number;
  /** Longest delay between two polls of one job, in ms. @default 30000 */
  maxIntervalMs?: number;
}

export const PROFILES_ENDPOINT_KEY = 'POST /api/profile-bulk-import-jobs';
const JOB_KEY = 'GET /api/profile-bulk-import-jobs/{job_id}';
const ERRORS_KEY = 'GET /api/profile-bulk-import-jobs/{id}/import-errors';
const ENTRIES_POINTER = '/data/attributes/profiles/data';
/** Klaviyo's per-profile cap. */
export const MAX_PROFILE_BYTES = 100_000;
const PREFIX = '{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":[';

interface Job {
  id: string;
  /** Source position of the profile at each index of the job's request (no payloads). */
  positions: SourcePosition[] | undefined;
  nextPollAt: number;
  intervalMs: number;
  /** When this run began following the job: submitted, or registered from the interrupted run's checkpoint. */
  since: number;
}

/**
 * Reject codes of profiles this loader acknowledged before rejecting them: a job's items are acknowledged when
 * Klaviyo accepts the job (202), and its import errors (or its failure) arrive later.
 */
export const SETTLED_BEFORE_REJECT: readonly string[] = ['KLAVIYO_IMPORT_ERROR', 'KLAVIYO_JOB_FAILED'];

/**
 * Loads profile items through `POST /api/profile-bulk-import-jobs`. A 202 acknowledges the items (with the job
 * id) and the job is polled in the background while later batches are submitted; when it completes its
 * import-errors are joined back to source positions and rejected (`KLAVIYO_IMPORT_ERROR`). `close` waits for
 * every job.
 */
export class KlaviyoProfileLoader implements Loader {
  readonly #ctx: LoadContext;
  readonly #client: KlaviyoClient | undefined;
  readonly #batcher: Batcher<Entry<ProfileItem>>;
  /** Items with fields to clear (`clear: true`) are patched first, then handed to the batcher. */
  readonly #clearer: ProfileClearer;
  readonly #jobs = new Map<string, Job>();
  readonly #intervalMs: number;
  readonly #maxIntervalMs: number;
  readonly #jobTimeoutMs: number;
  #poller: Promise<void> | undefined;
  /** Jobs of an interrupted run (LoadContext.resumeJobs) not yet probed by `forgottenJobs()`. */
  #unprobed: string[] = [];
  /** Aborted through close({stopWaitingForJobs}): the poll loop stops and leaves its jobs pending. */
  readonly #stopPolling = new AbortController();
  #error: unknown;

  constructor(config: ProfileLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined, poll: JobPollOptions = {}) {
    this.#ctx = ctx;
    this.#client = client;
    this.#intervalMs = poll.intervalMs ?? 1000;
    this.#maxIntervalMs = poll.maxIntervalMs ?? 30_000;
    this.#jobTimeoutMs = config.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    const lists = config.lists ?? [];
    const suffix =
      ']}}' +
      (lists.length > 0 ? `,"relationships":{"lists":{"data":${JSON.stringify(lists.map((id) => ({ type: 'list', id })))}}}` : '') +
      '}}';
    const endpoint: BulkEndpoint<Entry<ProfileItem>> = {
      key: PROFILES_ENDPOINT_KEY,
      entriesPointer: ENTRIES_POINTER,
      body: (entries) => envelope(PREFIX, entries, suffix),
      // an import upserts: sending it twice leaves the same profiles
      idempotent: () => true,
      names: () => lists.map((id) => `list ${id}`),
    };
    const sender = client ? new BulkSender(client, endpoint, ctx, (entries, response) => this.#accepted(entries, response)) : undefined;
    this.#batcher = new Batcher<Entry<ProfileItem>>({
      maxItems: config.batch.profiles,
      maxBytes: config.batch.maxBytes,
      envelopeBytes: Buffer.byteLength(PREFIX + suffix),
      maxItemBytes: MAX_PROFILE_BYTES,
      concurrency: config.concurrency,
      sizeOf: (entry) => Buffer.byteLength(entry.json),
      send: sendOrPlan(ctx, sender, endpoint),
      onTooLarge: (entry, bytes) =>
        ctx.onReject([
          itemReject(entry.item, entry.item.first, 'RECORD_TOO_LARGE', `profile is ${bytes} bytes serialized, Klaviyo accepts at most ${MAX_PROFILE_BYTES}`),
        ]),
    });
    this.#clearer = new ProfileClearer(client, ctx, config.concurrency, (item) => this.#add(item));
    if (!ctx.dryRun && client) {
      // Registered now, polled once forgottenJobs() has asked Klaviyo about them (or at the first job or close).
      for (const id of ctx.resumeJobs ?? []) this.#jobs.set(id, this.#newJob(id, undefined));
      this.#unprobed = [...(ctx.resumeJobs ?? [])];
    }
  }

  /**
   * Ask Klaviyo once about each job of the interrupted run (`resumeJobs`) and return those it no longer knows
   * (404: Klaviyo forgets jobs 7 days after they end). They are no longer followed and are counted in
   * `stats.jobs.forgotten`: the runner sends their rows again (an upsert, safe to repeat). Call before the first write.
   */
  async forgottenJobs(): Promise<string[]> {
    const forgotten: string[] = [];
    for (const id of this.#unprobed.splice(0)) {
      const response = await this.#client!.request(JOB_KEY, { path: `/api/profile-bulk-import-jobs/${encodeURIComponent(id)}` });
      if (response.status !== 404) continue; // anything else is for the poll loop to judge
      this.#jobs.delete(id);
      this.#ctx.stats.jobs.forgotten++;
      this.#ctx.logger.warn('Klaviyo no longer knows a profile import job of the interrupted run; its rows are sent again', { jobId: id });
      forgotten.push(id);
    }
    this.#startPolling();
    return forgotten;
  }

  /** Stop following these jobs (the runner sends their rows again). */
  dropJobs(ids: readonly string[]): void {
    for (const id of ids) this.#jobs.delete(id);
  }

  async write(items: LoadItem[]): Promise<void> {
    this.#throwIfFailed();
    for (const item of items) {
      assertItemKind(item, 'profile');
      if (item.clear !== undefined && item.clear.length > 0) await this.#clearer.add(item);
      else await this.#add(item);
    }
  }

  #add(item: ProfileItem): Promise<void> {
    return this.#batcher.add({ item, json: JSON.stringify({ type: 'profile', attributes: item.payload }) });
  }

  async close(options: CloseOptions = {}): Promise<void> {
    try {
      await this.#clearer.flush();
      await this.#batcher.close();
    } finally {
      this.#startPolling();
      // On an interrupt, unfinished jobs are left in pendingJobs() for the checkpoint; the next run polls them.
      const stop = options.stopWaitingForJobs;
      const onStop = () => this.#stopPolling.abort();
      if (stop?.aborted) onStop();
      else stop?.addEventListener('abort', onStop, { once: true });
      try {
        while (this.#poller) await this.#poller;
      } finally {
        stop?.removeEventListener('abort', onStop);
      }
    }
    this.#throwIfFailed();
  }

  pendingJobs(): string[] {
    return [...this.#jobs.keys()];
  }

  #accepted(entries: Entry<ProfileItem>[], response: KlaviyoResponse): void {
    const items = entries.map((e) => e.item);
    const data = isRecord(response.body) && isRecord(response.body.data) ? response.body.data : undefined;
    const jobId = typeof data?.id === 'string' ? data.id : undefined;
    if (jobId === undefined) {
      throw new EtlError('KLAVIYO_JOB_FAILED', `Klaviyo accepted a profile import (${response.status}) without a job id`);
    }
    this.#ctx.stats.jobs.submitted++;
    // Track the job before acknowledging its items: the runner checkpoints on onAck, and that checkpoint must
    // list this job in pendingJobs (else a crash after it loses the job's import-errors on resume).
    this.#track(
      jobId,
      items.map((i) => compact(i.first)),
    );
    this.#ctx.onAck(items, { jobId });
  }

  #track(id: string, positions: SourcePosition[] | undefined): void {
    this.#jobs.set(id, this.#newJob(id, positions));
    this.#startPolling();
  }

  #newJob(id: string, positions: SourcePosition[] | undefined): Job {
    const now = Date.now();
    return { id, positions, nextPollAt: now + Math.min(this.#intervalMs, this.#jobTimeoutMs), intervalMs: this.#intervalMs, since: now };
  }

  #startPolling(): void {
    if (this.#jobs.size === 0 || this.#error !== undefined) return;
    this.#poller ??= this.#pollLoop().finally(() => {
      this.#poller = undefined;
    });
  }

  async #pollLoop(): Promise<void> {
    try {
      while (this.#jobs.size > 0 && !this.#stopPolling.signal.aborted) {
        let job: Job | undefined;
        for (const candidate of this.#jobs.values()) if (!job || candidate.nextPollAt < job.nextPollAt) job = candidate;
        const stopped = await sleep(job!.nextPollAt - Date.now(), this.#ctx.signal, this.#stopPolling.signal);
        if (stopped) break;
        await this.#poll(job!);
      }
    } catch (error) {
      this.#error ??= error;
    }
  }

  async #poll(job: Job): Promise<void> {
    const client = this.#client!;
    const response = await client.request(JOB_KEY, { path: `/api/profile-bulk-import-jobs/${encodeURIComponent(job.id)}` });
    if (!response.ok) {
      // The job stays in pendingJobs: the next run asks again (and sends its rows again if Klaviyo forgot it).
      throw new EtlError('KLAVIYO_JOB_FAILED', `could not read profile import job ${job.id} (${response.status}): ${describe(response.errors)}; the next run asks about it again`, {
        context: { component: 'loader', jobId: job.id },
      });
    }
    const attributes = isRecord(response.body) && isRecord(response.body.data) && isRecord(response.body.data.attributes)
      ? response.body.data.attributes
      : {};
    const status = attributes.status;
    if (status === 'complete') {
      await this.#collectErrors(job);
      this.#jobs.delete(job.id);
      this.#ctx.stats.jobs.completed++;
      this.#ctx.onJobDone?.(job.id);
      return;
    }
    if (status === 'cancelled' || status === 'failed') {
      // Its rows were acknowledged when the job was created (the checkpoint may be past them): each goes to the
      // rejects file, so none is counted as loaded or lost without a trace.
      const message = `profile import job ${job.id} ended ${String(status)}; its profiles were not imported`;
      this.#ctx.onReject(
        job.positions?.map((pos) => itemReject(undefined, pos, 'KLAVIYO_JOB_FAILED', message)) ?? [
          itemReject(undefined, { seq: -1, source: `klaviyo:profile-bulk-import-job/${job.id}` }, 'KLAVIYO_JOB_FAILED', message),
        ],
      );
      this.#jobs.delete(job.id);
      throw new EtlError('KLAVIYO_JOB_FAILED', `profile import job ${job.id} ended ${String(status)}`, {
        context: { component: 'loader', jobId: job.id },
      });
    }
    const now = Date.now();
    const deadline = job.since + this.#jobTimeoutMs;
    if (now >= deadline) throw this.#timeout(job, String(status));
    job.nextPollAt = Math.min(now + job.intervalMs, deadline);
    job.intervalMs = Math.min(this.#maxIntervalMs, job.intervalMs * 2);
  }

  /**
   * A job still queued or processing past `jobTimeoutMs`: the run stops, and every job not finished stays in
   * pendingJobs() (the checkpoint), for the next run to poll again.
   */
  #timeout(job: Job, status: string): EtlError {
    const pending = [...this.#jobs.keys()];
    this.#ctx.logger.warn('profile import job still unfinished past jobTimeoutMs; stopping the run', { jobId: job.id, status, pending });
    return new EtlError(
      'KLAVIYO_JOB_TIMEOUT',
      `profile import job ${job.id} is still ${status} after ${Math.round(this.#jobTimeoutMs / 1000)} s (destination.jobTimeoutMs); ` +
        `pending jobs: ${pending.join(', ')}. They stay in the checkpoint: the next run polls them again`,
      { context: { component: 'loader', jobId: job.id, pendingJobs: pending } },
    );
  }

  async #collectErrors(job: Job): Promise<void> {
    const client = this.#client!;
    let path: string | undefined = `/api/profile-bulk-import-jobs/${encodeURIComponent(job.id)}/import-errors`;
    let query: Record<string, string> | undefined = { 'page[size]': '100' };
    while (path) {
      const response: KlaviyoResponse = await client.request(ERRORS_KEY, { path, query });
      if (!response.ok) {
        throw new EtlError('KLAVIYO_JOB_FAILED', `could not read import errors of job ${job.id} (${response.status}): ${describe(response.errors)}`, {
          context: { component: 'loader', jobId: job.id },
        });
      }
      const body = isRecord(response.body) ? response.body : {};
      const data = Array.isArray(body.data) ? body.data : [];
      const rejects: Reject[] = [];
      for (const entry of data) {
        const attrs = isRecord(entry) && isRecord(entry.attributes) ? entry.attributes : {};
        const error: JsonApiError = {
          code: typeof attrs.code === 'string' ? attrs.code : undefined,
          title: typeof attrs.title === 'string' ? attrs.title : undefined,
          detail: typeof attrs.detail === 'string' ? attrs.detail : undefined,
        };
        const pointer = isRecord(attrs.source) && typeof attrs.source.pointer === 'string' ? attrs.source.pointer : undefined;
        const mapped = pointerIndex(ENTRIES_POINTER, pointer);
        const pos = mapped !== undefined ? job.positions?.[mapped.index] : undefined;
        const original = isRecord(attrs.original_payload) ? attrs.original_payload : undefined;
        const reject = itemReject(
          undefined,
          pos ?? { seq: -1, source: `klaviyo:profile-bulk-import-job/${job.id}` },
          'KLAVIYO_IMPORT_ERROR',
          errorMessage(error),
          mapped?.field || pointer,
        );
        if (original && !pos) reject.row = original;
        rejects.push(reject);
      }
      if (rejects.length > 0) {
        this.#ctx.stats.jobs.importErrors += rejects.length;
        this.#ctx.onReject(rejects);
      }
      const links = isRecord(body.links) ? body.links : {};
      path = typeof links.next === 'string' && links.next.length > 0 ? links.next : undefined;
      query = undefined;
    }
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }
}

function compact(pos: SourcePosition): SourcePosition {
  return {
    seq: pos.seq,
    source: pos.source,
    ...(pos.line === undefined ? {} : { line: pos.line }),
    ...(pos.offset === undefined ? {} : { offset: pos.offset }),
  };
}

function describe(errors: JsonApiError[]): string {
  return errors.map(errorMessage).join('; ') || 'no error details';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sleep `ms`; rejects INTERRUPTED when `signal` aborts; resolves `true` early when `stop` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return Promise.resolve(true);
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      stop.removeEventListener('abort', onStop);
    };
    const timer = setTimeout(() => {
      done();
      resolve(false);
    }, ms);
    const onAbort = () => {
      done();
      reject(new EtlError('INTERRUPTED', 'interrupted while waiting for profile import jobs'));
    };
    const onStop = () => {
      done();
      resolve(true);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stop.addEventListener('abort', onStop, { once: true });
  });
}
