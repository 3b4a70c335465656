import { EtlError, isEtlError } from '../core/errors.js';
import type { ItemSpan, LoadItem, Reject, SourcePosition } from '../core/record.js';
import type { LoadContext } from './types.js';
import type { JsonApiError, KlaviyoClient, KlaviyoResponse } from '../klaviyo/client.js';

/**
 * What the three bulk loaders share: one serialized JSON:API entry per item, a request body made of an envelope
 * around the entries, and the partial-failure protocol (docs/loader.md, "When Klaviyo refuses a request"):
 * - a 4xx naming entries by `source.pointer`: reject the named entries, resubmit the rest once;
 * - a refusal that names no entry: split the entries into the first one and the rest and send both. If both are
 *   refused with the same error that names no entry, the refusal is about the request (key, scope, list id…), not
 *   its rows: the run fails at once (KLAVIYO_REQUEST_REJECTED), rejecting nothing. If they behave differently, the
 *   refusal depends on the rows: bisect until each bad entry is alone, and reject it;
 * - a refusal about the request itself (404, 405, 410, 415…, or errors pointing at a member outside the entries,
 *   such as a list relationship, or at a parameter) fails the run on the first request.
 * 4xx responses are never retried as they are.
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
  /** The request path, when the key's path has a parameter (`/api/lists/{id}/relationships/profiles`). @default the key's path */
  path?(entries: E[]): string;
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
  /**
   * Whether sending these entries twice does no harm (events that all carry `unique_id`, profile upserts): only then
   * does the client retry a 500 or 502. @default false
   */
  idempotent?(entries: E[]): boolean;
  /** What a request of these entries names besides them, for the likely cause of a refusal (e.g. `list XyZ123`). */
  names?(entries: E[]): string[];
}

/** Statuses whose errors may name individual entries; anything else is a request-level refusal. */
const ITEM_LEVEL_STATUSES = new Set([400, 409, 413, 422]);

/** Pointers that name no member in particular (Klaviyo's default `source` of an error about the whole body). */
const GENERIC_POINTERS = new Set(['', '/', '/data', '/data/']);

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

/** Whether an error names a member of the request outside its entries (a list relationship) or a parameter. */
function namesRequestMember(error: JsonApiError, entriesPointer: string): boolean {
  if (error.source?.parameter !== undefined) return true;
  const pointer = error.source?.pointer;
  return pointer !== undefined && !GENERIC_POINTERS.has(pointer) && pointer !== entriesPointer && !pointer.startsWith(entriesPointer + '/');
}

/** Two refusals alike: same status, same error codes, details and sources. */
function sameRefusal(a: KlaviyoResponse, b: KlaviyoResponse): boolean {
  const sign = (r: KlaviyoResponse) => JSON.stringify([r.status, r.errors.map((e) => [e.code, e.detail ?? e.title, e.source?.pointer, e.source?.parameter])]);
  return sign(a) === sign(b);
}

/** What most likely makes Klaviyo refuse a whole request, for the error message. */
export function likelyCause(response: KlaviyoResponse, names: readonly string[]): string {
  const text = response.errors.map((e) => `${e.detail ?? ''} ${e.title ?? ''} ${e.source?.pointer ?? ''}`).join(' ');
  const lists = names.filter((n) => n.startsWith('list '));
  if (/\blists?\b/i.test(text) || (response.status === 404 && lists.length > 0)) {
    return `Likely cause: the list id${lists.length > 0 ? ` (${lists.join(', ')})` : ''}: check that the list exists in this Klaviyo account.`;
  }
  if (response.status === 404) return 'Likely cause: something the request names does not exist in this Klaviyo account.';
  if (response.status === 400) {
    return `Likely cause: the request, not its rows: the API key (Klaviyo documents 400 for a missing or invalid key), its scopes${lists.length > 0 ? `, the list id (${lists.join(', ')})` : ''}, or the revision. If the rows themselves are at fault (several that Klaviyo refuses without saying which), a smaller batch size lets the loader isolate them.`;
  }
  return `Likely cause: the request, not its rows (Klaviyo answered ${response.status}).`;
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
    await this.#settle(entries, await this.#post(entries), false);
  }

  /**
   * `answer` is Klaviyo's answer to exactly these entries. `proven`: an earlier answer showed that this refusal
   * depends on the entries (a pointer named some, or two parts of the batch were answered differently).
   */
  async #settle(entries: E[], answer: KlaviyoResponse, proven: boolean): Promise<void> {
    if (answer.ok) return this.#onAccepted(entries, answer);
    if (answer.status === 413) return this.#isolate(entries, answer, true); // too large: halves go through
    const bad = this.#badEntries(entries, answer); // throws on a request-level refusal
    if (bad.size === 0) return this.#isolate(entries, answer, proven);
    const held = this.#ackHeld(entries, bad, answer);
    this.#rejectMapped(entries, bad);
    const rest = entries.filter((_, i) => !bad.has(i) && !held.has(i));
    if (rest.length === 0) return;
    const again = await this.#post(rest);
    if (again.ok) return this.#onAccepted(rest, again);
    // refused again: pointed → the rows are at fault, bisect; unpointed → it may be the request (a list checked
    // after the rows), so probe before bisecting
    return this.#isolate(rest, again, this.#badEntries(rest, again).size > 0);
  }

  /** Entries refused without a pointer to any of them: find the bad ones, or prove the request is at fault. */
  async #isolate(entries: E[], answer: KlaviyoResponse, proven: boolean): Promise<void> {
    if (entries.length === 1) {
      if (!proven) throw this.#requestRejected(entries, answer);
      return this.#rejectAlone(entries[0]!, answer);
    }
    // unproven: the first entry alone and the rest, which a request-level refusal answers alike (3 requests in all)
    const cut = proven ? Math.ceil(entries.length / 2) : 1;
    const parts = [entries.slice(0, cut), entries.slice(cut)];
    const answers: KlaviyoResponse[] = [];
    for (const part of parts) answers.push(await this.#post(part));
    const [a, b] = answers as [KlaviyoResponse, KlaviyoResponse];
    if (!proven && !a.ok && !b.ok && this.#unpointed(parts[0]!, a) && this.#unpointed(parts[1]!, b) && sameRefusal(a, b)) {
      throw this.#requestRejected(entries, b, 'its first entry alone and the rest');
    }
    for (let i = 0; i < 2; i++) await this.#settle(parts[i]!, answers[i]!, true);
  }

  /** Whether a refusal names no entry (a request-level one throws). */
  #unpointed(entries: E[], answer: KlaviyoResponse): boolean {
    return answer.status !== 413 && this.#badEntries(entries, answer).size === 0;
  }

  #rejectAlone(entry: E, response: KlaviyoResponse): void {
    const errors = response.errors.length > 0 ? response.errors : [{ code: `http_${response.status}`, detail: 'refused without details' }];
    const mapped = errors.map((e) => this.#locate(e.source?.pointer, [entry]));
    const held = this.#endpoint.alreadyHeld;
    if (held && errors.every((e, k) => mapped[k] !== undefined && held(e, mapped[k].field))) return this.#acceptHeld([entry], response);
    const field = mapped.find((m) => m !== undefined)?.field;
    this.#ctx.onReject([itemReject(entry.item, entry.item.first, 'KLAVIYO_REJECTED', errors.map(errorMessage).join('; '), field || undefined)]);
  }

  /** Entry index → its errors. Throws when the refusal is about the request, not its entries. */
  #badEntries(entries: E[], response: KlaviyoResponse): Map<number, { field: string; error: JsonApiError }[]> {
    if (!ITEM_LEVEL_STATUSES.has(response.status)) throw this.#requestRejected(entries, response);
    const bad = new Map<number, { field: string; error: JsonApiError }[]>();
    let aboutRequest = false;
    for (const error of response.errors) {
      const located = this.#locate(error.source?.pointer, entries);
      if (!located) {
        aboutRequest ||= namesRequestMember(error, this.#endpoint.entriesPointer);
        continue;
      }
      for (const index of located.indexes) {
        if (index >= entries.length) continue;
        const list = bad.get(index) ?? [];
        list.push({ field: located.field, error });
        bad.set(index, list);
      }
    }
    if (bad.size === 0 && aboutRequest) throw this.#requestRejected(entries, response);
    return bad;
  }

  /** KLAVIYO_REQUEST_REJECTED for a refusal of the request; `probed`: which parts were refused alike. */
  #requestRejected(entries: E[], response: KlaviyoResponse, probed?: string): EtlError {
    const items = entries.map((e) => e.item);
    const first = items[0]?.first;
    const last = items[items.length - 1]?.last;
    const said = response.errors.map(errorMessage).join('; ') || 'no error details';
    const how = probed ? `; ${probed} were refused the same way, so the request is at fault, not its rows` : '';
    return new EtlError(
      'KLAVIYO_REQUEST_REJECTED',
      `Klaviyo refused ${this.#endpoint.key} (${response.status}: ${said}) for ${describeRange(items)}${how}. ${likelyCause(response, this.#endpoint.names?.(entries) ?? [])} Nothing was rejected: the next run resumes from this batch.`,
      {
        context: {
          component: 'loader',
          endpoint: this.#endpoint.key,
          status: response.status,
          file: first?.source,
          line: first?.line,
          firstSeq: first?.seq,
          lastSeq: last?.seq,
          lastLine: last?.line,
        },
      },
    );
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
      return await this.#client.request(this.#endpoint.key, {
        ...(this.#endpoint.path === undefined ? {} : { path: this.#endpoint.path(entries) }),
        body: this.#endpoint.body(entries),
        idempotent: this.#endpoint.idempotent?.(entries) ?? false,
      });
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
 * A batcher's `send`: through `sender`, or — in a dry run — count the request a real run would make (in total and
 * under `endpointKey`, for the plan's least wall time) and acknowledge its items (a dry run batches exactly like a
 * real one).
 */
export function sendOrPlan<E extends ItemEntry>(
  ctx: LoadContext,
  sender: BulkSender<E> | undefined,
  endpoint?: Pick<BulkEndpoint<E>, 'key' | 'body'>,
): (entries: E[]) => Promise<void> {
  return async (entries) => {
    if (ctx.dryRun || !sender) {
      ctx.stats.plannedRequests++;
      if (endpoint) ctx.stats.plannedByEndpoint[endpoint.key] = (ctx.stats.plannedByEndpoint[endpoint.key] ?? 0) + 1;
      // the body a real run would send (built only when someone looks: `--dry-run --show N`)
      if (ctx.onPlanned && endpoint) {
        const body = endpoint.body(entries);
        ctx.onPlanned({ endpoint: endpoint.key, body: typeof body === 'string' ? body : Buffer.from(body).toString('utf8') });
      }
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
