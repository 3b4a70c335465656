import { EtlError } from '../core/errors.js';
import type { ItemSpan, LoadItem, Reject, SubscriptionItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import { KlaviyoProfileLoader, type JobPollOptions, type ProfileLoaderConfig } from './klaviyo-profiles.js';
import { KlaviyoSubscriptionLoader, type SubscriptionLoaderConfig } from './klaviyo-subscriptions.js';
import type { CloseOptions, LoadContext, Loader } from './types.js';

/**
 * Profiles and their consent from one pipeline (a profile transform with `subscribe:`), the profile first: each
 * row's subscription item waits until Klaviyo has processed the bulk import job holding its profile (the job
 * completed; in a dry run, once the profile's request is planned), and is then handed to the subscription loader.
 * A row whose profile Klaviyo refused (a 400 pointer, an import error, a failed job) is not subscribed: the row is
 * in the rejects file already, and its subscription item is settled without being sent, so the checkpoint moves on.
 * A subscription still waiting when the run stops (an interrupt, a job timeout) is never sent, and the checkpoint
 * stays before its row: the next run imports and subscribes it again.
 */
export class KlaviyoProfileConsentLoader implements Loader {
  readonly #ctx: LoadContext;
  readonly #profiles: KlaviyoProfileLoader;
  readonly #subscriptions: KlaviyoSubscriptionLoader;
  /** Subscription items waiting for their profile, by the seq of their row. */
  readonly #waiting = new Map<number, SubscriptionItem>();
  /** The rows of each profile import job this run submitted. */
  readonly #rowsOfJob = new Map<string, number[]>();
  /** Subscriptions handed on, one write after the other (the subscription loader applies back-pressure). */
  #handing: Promise<void> = Promise.resolve();
  #error: unknown;

  constructor(config: ProfileLoaderConfig & SubscriptionLoaderConfig, ctx: LoadContext, client: KlaviyoClient | undefined, poll?: JobPollOptions) {
    this.#ctx = ctx;
    this.#subscriptions = new KlaviyoSubscriptionLoader(config, ctx, client);
    const profileEvents: Pick<LoadContext, 'onAck' | 'onReject' | 'onJobDone'> = {
      onAck: (items, info) => {
        ctx.onAck(items, info);
        const seqs = items.map((i) => i.first.seq);
        if (info?.jobId === undefined) this.#handOn(seqs); // a dry run: nothing to wait for
        else this.#rowsOfJob.set(info.jobId, seqs);
      },
      onReject: (rejects) => {
        ctx.onReject(rejects);
        this.#notSubscribed(rejects);
      },
      onJobDone: (jobId) => {
        ctx.onJobDone?.(jobId);
        this.#handOn(this.#rowsOfJob.get(jobId) ?? []);
        this.#rowsOfJob.delete(jobId);
      },
    };
    this.#profiles = new KlaviyoProfileLoader(config, { ...ctx, ...profileEvents }, client, poll);
  }

  async write(items: LoadItem[]): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    // a row's subscription is registered before its profile is written: a dry run acknowledges the profile at once
    for (const item of items) if (item.kind === 'subscription') this.#waiting.set(item.first.seq, item);
    const profiles = items.filter((item) => item.kind !== 'subscription');
    if (profiles.length > 0) await this.#profiles.write(profiles);
  }

  async close(options: CloseOptions = {}): Promise<void> {
    try {
      await this.#profiles.close(options); // every job waited for (unless interrupted): their subscriptions handed on
    } finally {
      await this.#handing;
      await this.#subscriptions.close();
    }
    if (this.#error !== undefined) throw this.#error;
  }

  pendingJobs(): string[] {
    return this.#profiles.pendingJobs();
  }

  forgottenJobs(): Promise<string[]> {
    return this.#profiles.forgottenJobs();
  }

  dropJobs(ids: readonly string[]): void {
    this.#profiles.dropJobs(ids);
  }

  /** Hand the waiting subscriptions of these rows to the subscription loader (their profiles are processed). */
  #handOn(seqs: readonly number[]): void {
    const items: SubscriptionItem[] = [];
    for (const seq of seqs) {
      const item = this.#waiting.get(seq);
      if (item === undefined) continue;
      this.#waiting.delete(seq);
      items.push(item);
    }
    if (items.length === 0) return;
    this.#handing = this.#handing
      .then(() => this.#subscriptions.write(items))
      .catch((error: unknown) => {
        this.#error ??= error instanceof EtlError ? error : new EtlError('INTERNAL', String(error));
      });
  }

  /** Rows whose profile Klaviyo refused are not subscribed: their subscription items are settled, never sent. */
  #notSubscribed(rejects: readonly Reject[]): void {
    const settled: ItemSpan[] = [];
    for (const r of rejects) {
      const item = this.#waiting.get(r.seq);
      if (item === undefined) continue;
      this.#waiting.delete(r.seq);
      settled.push(item);
    }
    if (settled.length > 0) {
      this.#ctx.logger.warn('rows whose profile Klaviyo refused are not subscribed (they are in the rejects file)', { rows: settled.length });
      this.#ctx.onAck(settled);
    }
  }
}
