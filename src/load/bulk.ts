import { EtlError, isEtlError } from '../core/errors.js';
import type { ItemSpan, LoadItem, Reject, SourcePosition } from '../core/record.js';
import type { LoadContext } from './types.js';
import type { JsonApiError, KlaviyoClient, KlaviyoResponse } from '../klaviyo/client.js';

/**
 * What the three bulk loaders share: one serialized JSON:API entry per item, a request body made of an envelope
 * around the entries, and the partial-failure protocol for a 4xx naming entries by `source.pointer`:
 * reject the named entries, resubmit the rest once, and if that is refused too, bisect until each bad entry is
 * alone. 4xx responses are never retried as they are.
 */

/** One item with its serialized JSON:API entry. */
export interface Entry<I extends LoadItem = LoadItem> {
  item: I;
  json: string;
}

/**
 * What the sender needs of an entry: its item's kind and span (a loader may keep more, e.g. byte ranges of its
 * serialization, or less: the payload once it is serialized).
 */
export interface ItemEntry {
  item: ItemSpan;
}

/** The entries an error pointer names, and the pointer's rest below the entry (`/attributes/...`). */
export interface Located {
  indexes: number[];
  field: string;
}

export interface BulkEndpoint<E extends ItemEntry = Entry> {
  /** Endpoint key, e.g. `POST /api/event-bulk-create-jobs`. */
  key: string;
  /** JSON pointer of the entries array in the body, e.g. `/data/attributes/events-bulk-create/data`. */
  entriesPointer: string;
  /** The request body for these entries (text, or UTF-8 bytes). */
  body(entries: E[]): string | Uint8Array;
  /**
   * Which entries an error pointer names, when the body's array index is not the entry index (events of one profile
   * share one JSON:API entry). @default `pointerIndex` (one body entry per item)
   */
  locate?(pointer: string | undefined, entries: E[]): Located | undefined;
  /**
   * Whether an error naming an entry says Klaviyo already holds it (an event whose `unique_id` an earlier request
   * sent): such an entry is acknowledged as a duplicate, never rejected. @default none
   */
  alreadyHeld?(error: JsonApiError, field: string): boolean;
}

/** Statuses whose errors may name individual entries; anything else is a request-level refusal. */
const ITEM_LEVEL_STATUSES = new Set([400, 409, 413, 422]);

export function itemReject(item: ItemSpan | undefined, pos: SourcePosition, code: string, message: string, field?: string): Reject {
  return {
    stage: 'load',
    code,
    message,
    source: pos.source,
    ...(pos.line === undefined ? {} : { line: pos.line }),
    ...(pos.offset === undefined ? {} : { offset: pos.offset }),
    seq: pos.seq,
    ...(item !== undefined && item.last.seq > pos.seq ? { lastSeq: item.last.seq } : {}),
    ...(field === undefined ? {} : { field }),
    ...(item?.row === undefined ? {} : { row: item.row }),
    ...(item?.raw === undefined ? {} : { raw: item.raw }),
  };
}

/** `orders.csv:2-101 (seq 0-99)` for a batch, for error messages. */
export function describeRange(items: readonly ItemSpan[]): string {
  if (items.length === 0) return 'an empty batch';
  const first = items[0]!.first;
  const last = items[items.length - 1]!.last;
  const where =
    first.source === last.source
      ? `${first.source}${first.line === undefined ? '' : `:${first.line}-${last.line ?? first.line}`}`
      : `${first.source}${first.line === undefined ? '' : `:${first.line}`} to ${last.source}${last.line === undefined ? '' : `:${last.line}`}`;
  return `${where} (seq ${first.seq}-${last.seq})`;
}

/** Map a pointer inside the entries array to `{index, field}`; undefined for pointers elsewhere. */
export function pointerIndex(entriesPointer: string, pointer: string | undefined): { index: number; field: string } | undefined {
  if (pointer === undefined || !pointer.startsWith(entriesPointer + '/')) return undefined;
  const match = /^(\d+)(\/.*)?$/.exec(pointer.slice(entriesPointer.length + 1));
  if (!match) return undefined;
  return { index: Number(match[1]), field: match[2] ?? '' };
}

export function errorMessage(error: JsonApiError): string {
  return [error.code ?? 'error', error.detail ?? error.title ?? ''].filter((s) => s !== '').join(': ');
}

/**
 * Send entries to a bulk endpoint with the partial-failure protocol. `onAccepted` gets each accepted sub-batch with
 * its (2xx) response. Run errors (5xx past retries, auth, request-level 4xx) are thrown naming the batch's range.
 */
export class BulkSender<E extends ItemEntry = Entry> {
  readonly #client: KlaviyoClient;
  readonly #endpoint: BulkEndpoint<E>;
  readonly #ctx: LoadContext;
  readonly #onAccepted: (entries: E[], response: KlaviyoResponse) => void;
  #warnedHeld = false;

  constructor(
    client: KlaviyoClient,
    endpoint: BulkEndpoint<E>,
    ctx: LoadContext,
    onAccepted: (entries: E[], response: KlaviyoResponse) => void,
  ) {
    this.#client = client;
    this.#endpoint = endpoint;
    this.#ctx = ctx;
    this.#onAccepted = onAccepted;
  }

  /** The entries `pointer` names (by the endpoint's `locate`, or one body entry per item). */
  #locate(pointer: string | undefined, entries: E[]): Located | undefined {
    if (this.#endpoint.locate) return this.#endpoint.locate(pointer, entries);
    const mapped = pointerIndex(this.#endpoint.entriesPointer, pointer);
    return mapped === undefined ? undefined : { indexes: [mapped.index], field: mapped.field };
  }

  async send(entries: E[]): Promise<void> {
    const first = await this.#post(entries);
    if (first.ok) return this.#onAccepted(entries, first);
    const bad = this.#badEntries(entries, first);
    if (bad.size === 0) return this.#bisect(entries, first);
    const held = this.#ackHeld(entries, bad, first);
    this.#rejectMapped(entries, bad);
    const rest = entries.filter((_, i) => !bad.has(i) && !held.has(i));
    if (rest.length === 0) return;
    const second = await this.#post(rest);
    if (second.ok) return this.#onAccepted(rest, second);
    this.#badEntries(rest, second); // throws on a request-level refusal
    return this.#bisect(rest, second);
  }

  /** `response` is the refusal of exactly these entries. */
  async #bisect(entries: E[], response: KlaviyoResponse): Promise<void> {
    if (entries.length === 1) {
      const entry = entries[0]!;
      const errors = response.errors.length > 0 ? response.errors : [{ code: `http_${response.status}`, detail: 'refused without details' }];
      const mapped = errors.map((e) => this.#locate(e.source?.pointer, entries));
      const held = this.#endpoint.alreadyHeld;
      if (held && errors.every((e, k) => mapped[k] !== undefined && held(e, mapped[k].field))) return this.#acceptHeld([entry], response);
      const field = mapped.find((m) => m !== undefined)?.field;
      this.#ctx.onReject([
        itemReject(entry.item, entry.item.first, 'KLAVIYO_REJECTED', errors.map(errorMessage).join('; '), field || undefined),
      ]);
      return;
    }
    const middle = Math.ceil(entries.length / 2);
    for (const half of [entries.slice(0, middle), entries.slice(middle)]) {
      const answer = await this.#post(half);
      if (answer.ok) this.#onAccepted(half, answer);
      else {
        this.#badEntries(half, answer);
        await this.#bisect(half, answer);
      }
    }
  }

  /** Entry index → its errors. Throws when the refusal is about the request, not its entries. */
  #badEntries(entries: E[], response: KlaviyoResponse): Map<number, { field: string; error: JsonApiError }[]> {
    if (!ITEM_LEVEL_STATUSES.has(response.status)) {
      throw new EtlError(
        'KLAVIYO_REQUEST_REJECTED',
        `Klaviyo refused ${this.#endpoint.key} (${response.status}) for ${describeRange(entries.map((e) => e.item))}: ${
          response.errors.map(errorMessage).join('; ') || 'no error details'
        }`,
        { context: { component: 'loader', endpoint: this.#endpoint.key, status: response.status } },
      );
    }
    const bad = new Map<number, { field: string; error: JsonApiError }[]>();
    for (const error of response.errors) {
      const located = this.#locate(error.source?.pointer, entries);
      if (!located) continue;
      for (const index of located.indexes) {
        if (index >= entries.length) continue;
        const list = bad.get(index) ?? [];
        list.push({ field: located.field, error });
        bad.set(index, list);
      }
    }
    return bad;
  }

  /**
   * Acknowledge the entries whose every error says Klaviyo already holds them (a replayed event: its `unique_id` was
   * sent by an earlier request), and take them out of `bad`: they are duplicates, not rejects. Returns their indexes.
   */
  #ackHeld(entries: E[], bad: Map<number, { field: string; error: JsonApiError }[]>, response: KlaviyoResponse): Set<number> {
    const indexes = new Set<number>();
    const held = this.#endpoint.alreadyHeld;
    if (!held) return indexes;
    for (const [index, errors] of bad) {
      if (!errors.every((e) => held(e.error, e.field))) continue;
      indexes.add(index);
      bad.delete(index);
    }
    if (indexes.size > 0) this.#acceptHeld([...indexes].sort((a, b) => a - b).map((i) => entries[i]!), response);
    return indexes;
  }

  #acceptHeld(entries: E[], response: KlaviyoResponse): void {
    if (!this.#warnedHeld) {
      this.#warnedHeld = true;
      this.#ctx.logger.warn('Klaviyo already holds items of this batch (a replay of an earlier request); they are acknowledged as duplicates', {
        endpoint: this.#endpoint.key,
        batch: describeRange(entries.map((e) => e.item)),
      });
    }
    this.#ctx.stats.items.duplicates += entries.length;
    this.#onAccepted(entries, response);
  }

  #rejectMapped(entries: E[], bad: Map<number, { field: string; error: JsonApiError }[]>): void {
    const rejects: Reject[] = [];
    for (const [index, errors] of [...bad].sort((a, b) => a[0] - b[0])) {
      const item = entries[index]!.item;
      const field = errors[0]!.field;
      rejects.push(
        itemReject(item, item.first, 'KLAVIYO_REJECTED', errors.map((e) => errorMessage(e.error)).join('; '), field || undefined),
      );
    }
    this.#ctx.onReject(rejects);
  }

  async #post(entries: E[]): Promise<KlaviyoResponse> {
    try {
      return await this.#client.request(this.#endpoint.key, { body: this.#endpoint.body(entries) });
    } catch (error) {
      if (isEtlError(error) && error.code === 'KLAVIYO_UNAVAILABLE') {
        const items = entries.map((e) => e.item);
        const first = items[0]?.first;
        const last = items[items.length - 1]?.last;
        throw new EtlError('KLAVIYO_UNAVAILABLE', `${error.message}; batch ${describeRange(items)} was not loaded`, {
          cause: error,
          context: {
            ...error.context,
            component: 'loader',
            file: first?.source,
            line: first?.line,
            firstSeq: first?.seq,
            lastSeq: last?.seq,
            lastLine: last?.line,
          },
        });
      }
      throw error;
    }
  }
}

/**
 * A batcher's `send`: through `sender`, or — in a dry run — count the request a real run would make and acknowledge
 * its items (a dry run batches exactly like a real one).
 */
export function sendOrPlan<E extends ItemEntry>(ctx: LoadContext, sender: BulkSender<E> | undefined): (entries: E[]) => Promise<void> {
  return async (entries) => {
    if (ctx.dryRun || !sender) {
      ctx.stats.plannedRequests++;
      ctx.onAck(entries.map((e) => e.item));
      return;
    }
    await sender.send(entries);
  };
}

/** Join strings into the body: `prefix + entries joined by ',' + suffix`. */
export function envelope(prefix: string, entries: readonly Entry<LoadItem>[], suffix: string): string {
  return prefix + entries.map((e) => e.json).join(',') + suffix;
}
