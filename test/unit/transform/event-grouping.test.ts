import { describe, expect, it } from 'vitest';
import type { SourceRecord, TransformOutput } from '../../../src/core/record.js';
import { ConsecutiveGroups, groupKeyOf, type GroupBuilder } from '../../../src/transform/event-grouping.js';
import { rec } from './helpers.js';

/** A builder recording the calls; finish() gives one item per group spanning its rows (its keys in `row`). */
function recorder() {
  const calls: string[] = [];
  let rows: SourceRecord[] = [];
  let key = '';
  const builder: GroupBuilder = {
    start(record, k) {
      calls.push(`start ${record.pos.seq} ${k}`);
      rows = [record];
      key = k;
    },
    add(record) {
      calls.push(`add ${record.pos.seq}${record.error ? ' (error)' : ''}`);
      rows.push(record);
    },
    finish(): TransformOutput {
      calls.push(`finish ${key}`);
      const first = rows[0]!.pos;
      const last = rows[rows.length - 1]!.pos;
      return { items: [{ kind: 'export-row', payload: { key }, first, last }], rejects: [] };
    },
  };
  return { builder, calls };
}

const order = (seq: number, id: string, extra: Partial<SourceRecord> = {}) => rec(seq, { order: id, sku: `s${seq}` }, extra);

describe('groupKeyOf', () => {
  it('joins the trimmed texts of the key columns (Dates as ISO); every part empty is the empty key', () => {
    const key = groupKeyOf(['store', 'order']);
    expect(key({ store: ' A ', order: 7 })).toBe('A\u001f7');
    expect(key({ store: new Date('2024-01-02T03:04:05Z'), order: '' })).toBe('2024-01-02T03:04:05.000Z\u001f');
    expect(key({ store: ' ', order: null })).toBe('');
    expect(key({})).toBe('');
    expect(groupKeyOf(['order'])({ order: ' #1001 ' })).toBe('#1001');
  });
});

describe('ConsecutiveGroups', () => {
  it('consecutive rows with the same key make one group; a new key closes it; flush closes the last', () => {
    const { builder, calls } = recorder();
    const groups = new ConsecutiveGroups(['order'], builder);
    const outs = [order(0, 'A'), order(1, 'A'), order(2, 'B'), order(3, 'A')].map((r) => groups.push(r));
    expect(outs.map((o) => o.items.map((i) => [i.first.seq, i.last.seq]))).toEqual([[], [], [[0, 1]], [[2, 2]]]);
    expect(groups.flush().items.map((i) => [i.first.seq, i.last.seq])).toEqual([[3, 3]]);
    expect(calls).toEqual(['start 0 A', 'add 1', 'finish A', 'start 2 B', 'finish B', 'start 3 A', 'finish A']);
    expect(groups.flush()).toEqual({ items: [], rejects: [] });
  });

  it('held() is the first seq of the open group, undefined when none is open', () => {
    const groups = new ConsecutiveGroups(['order'], recorder().builder);
    expect(groups.held()).toBeUndefined();
    groups.push(order(4, 'A'));
    groups.push(order(5, 'A'));
    expect(groups.held()).toBe(4);
    groups.push(order(6, 'B'));
    expect(groups.held()).toBe(6);
    groups.flush();
    expect(groups.held()).toBeUndefined();
  });

  it('a row with an empty key is rejected (MISSING_REQUIRED, group.by) after the open group is closed', () => {
    const { builder, calls } = recorder();
    const groups = new ConsecutiveGroups(['store', 'order'], builder);
    groups.push(rec(0, { store: 's', order: 'A' }));
    const out = groups.push(rec(1, { store: '', order: ' ' }));
    expect(out.items.map((i) => i.first.seq)).toEqual([0]);
    expect(out.rejects).toEqual([
      expect.objectContaining({ stage: 'transform', code: 'MISSING_REQUIRED', field: 'group.by', seq: 1, line: 3, message: 'group.by: the group key (store, order) is empty' }),
    ]);
    expect(groups.held()).toBeUndefined();
    expect(calls).toEqual(['start 0 s\u001fA', 'finish s\u001fA']);
  });

  it('a row the source could not parse joins the open group when its key is the open key, else is rejected alone', () => {
    const { builder, calls } = recorder();
    const groups = new ConsecutiveGroups(['order'], builder);
    const error = { code: 'CSV_RAGGED_ROW', message: 'ragged' };
    groups.push(order(0, 'A'));
    expect(groups.push(order(1, 'A', { error }))).toEqual({ items: [], rejects: [] });
    const other = groups.push(order(2, 'B', { error }));
    expect(other.items.map((i) => [i.first.seq, i.last.seq])).toEqual([[0, 1]]);
    expect(other.rejects).toEqual([expect.objectContaining({ stage: 'extract', code: 'CSV_RAGGED_ROW', seq: 2 })]);
    // with no group open, an unparsable row is rejected alone and opens nothing
    const alone = groups.push(order(3, 'C', { error }));
    expect(alone).toEqual({ items: [], rejects: [expect.objectContaining({ stage: 'extract', seq: 3 })] });
    expect(groups.held()).toBeUndefined();
    expect(calls).toEqual(['start 0 A', 'add 1 (error)', 'finish A']);
  });
});
