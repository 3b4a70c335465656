import { assertItemKind, type ItemKind, type LoadItem } from '../core/record.js';
import type { KlaviyoClient } from '../klaviyo/client.js';
import type { Batcher } from './batcher.js';
import { BulkSender, sendOrPlan, type BulkEndpoint, type Entry } from './bulk.js';
import type { LoadContext, Loader } from './types.js';

/** How an {@link AckedLoader} turns its items into requests. */
export interface AckedLoaderOptions<K extends ItemKind> {
  /** The one item kind it loads (another is an INTERNAL error). */
  kind: K;
  endpoint: BulkEndpoint<Entry<Extract<LoadItem, { kind: K }>>>;
  /** An item's batcher entry (its JSON in the request body). */
  entryOf(item: Extract<LoadItem, { kind: K }>): Entry<Extract<LoadItem, { kind: K }>>;
  /**
   * The batcher of the entries, given `send`: their request through the endpoint (or, in a dry run or without a
   * client, counted as planned and acknowledged).
   */
  batcher(send: (entries: Entry<Extract<LoadItem, { kind: K }>>[]) => Promise<void>): Batcher<Entry<Extract<LoadItem, { kind: K }>>>;
}

/**
 * A loader of one item kind whose items the 2xx of their request acknowledges (Klaviyo applies them asynchronously,
 * or at once: suppressions, unsubscribes, list removals): items → entries → batcher → {@link BulkSender}.
 */
export class AckedLoader<K extends ItemKind> implements Loader {
  readonly #batcher: Batcher<Entry<Extract<LoadItem, { kind: K }>>>;
  readonly #options: AckedLoaderOptions<K>;

  constructor(options: AckedLoaderOptions<K>, ctx: LoadContext, client: KlaviyoClient | undefined) {
    this.#options = options;
    type E = Entry<Extract<LoadItem, { kind: K }>>;
    const sender = client ? new BulkSender<E>(client, options.endpoint, ctx, (entries) => ctx.onAck(entries.map((e) => e.item))) : undefined;
    this.#batcher = options.batcher(sendOrPlan(ctx, sender));
  }

  async write(items: LoadItem[]): Promise<void> {
    for (const item of items) {
      assertItemKind(item, this.#options.kind);
      await this.#batcher.add(this.#options.entryOf(item));
    }
  }

  async close(): Promise<void> {
    await this.#batcher.close();
  }
}
