import type { SourceRecord, TransformOutput } from '../core/record.js';
import { extractReject, rejectOf } from './common.js';
import type { Row } from './field/compile.js';
import type { Transformer } from './types.js';

/*
 * Grouping consecutive rows (`group.by`): rows with the same key, one after the other, make one group (an order and
 * its line items). This unit decides where groups start and end; what a group becomes (its events, or the rejects of
 * its rows) is the {@link GroupBuilder}'s.
 *
 * - A row whose key is empty is rejected (MISSING_REQUIRED) and closes the open group.
 * - A row the source could not parse joins the open group when its key (as far as it could be read) is the open
 *   group's (the builder then rejects the whole group); otherwise it closes the open group and is rejected alone.
 */

/** The separator of the parts of a key of several columns. */
export const KEY_SEPARATOR = '\u001f';

/**
 * The group key of a row: the `by` columns' trimmed texts (Dates as ISO strings) joined by {@link KEY_SEPARATOR};
 * `''` when every part is empty.
 */
export function groupKeyOf(by: readonly string[]): (row: Row) => string {
  return (row) => {
    let key = '';
    let any = false;
    for (let i = 0; i < by.length; i++) {
      const raw = row[by[i]];
      const text = raw === undefined || raw === null ? '' : (raw instanceof Date ? raw.toISOString() : String(raw)).trim();
      if (text !== '') any = true;
      key = i === 0 ? text : `${key}${KEY_SEPARATOR}${text}`;
    }
    return any ? key : '';
  };
}

/** What becomes of the rows of one group at a time. */
export interface GroupBuilder {
  /** Open a group with its first row (a row the source parsed). */
  start(record: SourceRecord, key: string): void;
  /** Another row of the open group (it may carry a source `error`). */
  add(record: SourceRecord): void;
  /** Close the open group: its items, or a reject per row. */
  finish(): TransformOutput;
}

/** Splits a record stream into groups of consecutive rows with the same key, built by a {@link GroupBuilder}. */
export class ConsecutiveGroups implements Transformer {
  readonly #keyOf: (row: Row) => string;
  readonly #byName: string;
  readonly #builder: GroupBuilder;
  /** The open group's key and first seq; undefined when no group is open. */
  #key: string | undefined;
  #firstSeq = 0;

  /** `by`: the key columns. */
  constructor(by: readonly string[], builder: GroupBuilder) {
    this.#keyOf = groupKeyOf(by);
    this.#byName = by.join(', ');
    this.#builder = builder;
  }

  push(record: SourceRecord): TransformOutput {
    const key = this.#keyOf(record.row);
    if (record.error !== undefined) {
      if (this.#key !== undefined && key !== '' && key === this.#key) {
        this.#builder.add(record);
        return { items: [], rejects: [] };
      }
      return merge(this.#close(), { items: [], rejects: [extractReject(record)] });
    }
    if (key === '') {
      const reject = rejectOf(record, 'transform', 'MISSING_REQUIRED', `group.by: the group key (${this.#byName}) is empty`, 'group.by');
      return merge(this.#close(), { items: [], rejects: [reject] });
    }
    if (key === this.#key) {
      this.#builder.add(record);
      return { items: [], rejects: [] };
    }
    const closed = this.#close();
    this.#key = key;
    this.#firstSeq = record.pos.seq;
    this.#builder.start(record, key);
    return closed ?? { items: [], rejects: [] };
  }

  /** Close the open group (at the end of the stream). */
  flush(): TransformOutput {
    return this.#close() ?? { items: [], rejects: [] };
  }

  /** seq of the open group's first row (held back from the checkpoint), or undefined. */
  held(): number | undefined {
    return this.#key === undefined ? undefined : this.#firstSeq;
  }

  #close(): TransformOutput | undefined {
    if (this.#key === undefined) return undefined;
    this.#key = undefined;
    return this.#builder.finish();
  }
}

function merge(a: TransformOutput | undefined, b: TransformOutput): TransformOutput {
  return a === undefined ? b : { items: a.items.concat(b.items), rejects: a.rejects.concat(b.rejects) };
}
