import type { FieldInput } from '../config/field.js';
import { EventTransform } from '../config/schema.js';
import type { EventTransformConfig } from '../config/schema.js';
import type { EventAttributes, EventItem, EventPayload, Reject, SourceRecord, TransformOutput } from '../core/record.js';
import { compileMap, compileMerge, compileProfile, extractReject, failuresReject, rejectOf, runField } from './common.js';
import type { FieldFailure } from './common.js';
import { showValue } from './field/coercion.js';
import { compileField, type Row } from './field/compile.js';
import type { TransformContext, TransformDefinition, Transformer } from './types.js';

/*
 * Rows → Klaviyo events. Payload: `{ profile, event: { metric, properties, time?, value?, value_currency?,
 * unique_id?, backfill? } }` (the loader wraps it into the JSON:API bulk structure).
 *
 * - `time` is always coerced as a datetime (type `string` means `datetime`, format `iso`); a `date` time is midnight
 *   in its `zone` (UTC by default). Klaviyo only accepts times after 1990 and at most one year ahead: others are
 *   INVALID_DATE here rather than a 400 for the whole batch.
 * - `value` is always a number (type `string` means `number`).
 * - `unique_id`, when configured, is required per event (MISSING_REQUIRED when empty); non-strings become strings.
 *
 * Grouping (`group.by`): consecutive rows with the same key make one event.
 * - Order-level fields (profile, unique_id, time, value_currency, properties) come from the group's FIRST row only;
 *   later rows are not evaluated for them (Shopify leaves them empty).
 * - `value`: `group.value: sum` (default) adds each row's non-empty value (rounded to 6 decimals);
 *   `first` takes the first row's value.
 * - `properties[itemsProperty]` is the array of `group.items`, one object per row (empty values omitted).
 * - `group.itemEvents` adds one event per row after the group event, with the group's profile, time and currency,
 *   the row's unique_id / value, and properties = item fields + `itemEvents.properties`.
 * - Every item of a group (group event and item events) spans the group's first..last rows, so a checkpoint never
 *   falls inside a group.
 * - Any failure in a group (a field of any row, a missing identifier, an extract error of a row with the same key)
 *   rejects the WHOLE group: every row gets a Reject; failing rows carry their own codes, the others the first
 *   failure's code and a message naming the failing row. A partial order would load a wrong total.
 * - A row whose group key is empty is rejected (MISSING_REQUIRED). A row the source could not parse closes the open
 *   group unless its key (when readable) equals the open group's key.
 */

const MIN_EVENT_MS = Date.UTC(1990, 0, 1);
const YEAR_MS = 366 * 24 * 3600 * 1000;

interface Header {
  profile: Record<string, unknown>;
  uniqueId?: string;
  time?: string;
  currency?: string;
  properties?: Record<string, unknown>;
}

/** The group being built (one at a time); its rows, items and item events are in the transformer's scratch arrays. */
interface OpenGroup {
  key: string;
  first: SourceRecord;
  header: Header;
  failed: boolean;
  sum: number;
  hasValue: boolean;
  firstValue: number | undefined;
}

function timeSpec(spec: FieldInput): FieldInput {
  const obj = typeof spec === 'string' ? { column: spec } : spec;
  const type = obj.type ?? 'string';
  if (type === 'string') return { ...obj, type: 'datetime' };
  if (type === 'date') return { ...obj, type: 'datetime', zone: obj.zone ?? 'UTC' };
  return obj;
}

function where(record: SourceRecord): string {
  return record.pos.line !== undefined ? `line ${record.pos.line}` : `record ${record.pos.seq}`;
}

export const eventTransform: TransformDefinition<EventTransformConfig> = {
  kind: 'event',
  summary: 'One Klaviyo event per row, or per group of consecutive rows (orders with line items).',
  config: EventTransform,
  create(config, ctx: TransformContext): Transformer {
    const now = ctx.now ?? (() => new Date());
    const metric = config.metric;
    const backfill = config.backfill === true;
    const profile = compileProfile(config.profile, 'profile.');
    const uniqueId = config.unique_id === undefined ? undefined : compileField(config.unique_id, 'unique_id', { required: true });
    const time = config.time === undefined ? undefined : compileField(timeSpec(config.time), 'time');
    const value = config.value === undefined ? undefined : compileField(config.value, 'value', { defaultType: 'number' });
    const currency = config.value_currency === undefined ? undefined : compileField(config.value_currency, 'value_currency');
    const properties = compileMap(config.properties, 'properties.');

    const run = runField;
    /** Failures of the row being transformed (emptied per row; copied only when a row fails). */
    const failures: FieldFailure[] = [];

    const header = (row: Row): Header => {
      const h: Header = { profile: profile(row, failures) };
      const id = run(uniqueId, 'unique_id', row, failures);
      if (id !== undefined) h.uniqueId = typeof id === 'string' ? id : String(id);
      const t = run(time, 'time', row, failures) as string | undefined;
      if (t !== undefined) {
        const ms = Date.parse(t);
        if (ms < MIN_EVENT_MS || ms > now().getTime() + YEAR_MS) {
          failures.push({
            field: 'time',
            code: 'INVALID_DATE',
            message: `time: ${t} is outside what Klaviyo accepts (after 1990, at most one year ahead)`,
          });
        } else h.time = t;
      }
      const c = run(currency, 'value_currency', row, failures) as string | undefined;
      if (c !== undefined) h.currency = c;
      const p = properties.size > 0 ? properties.run(row, failures) : undefined;
      if (p !== undefined) h.properties = p;
      return h;
    };

    const eventOf = (h: Header, metricName: string, props: Record<string, unknown>, v: number | undefined, id: string | undefined): EventPayload => {
      const { time: t, currency: c } = h;
      if (t !== undefined && v !== undefined && c !== undefined && id !== undefined) {
        // every attribute present (the usual event): one literal, same keys in the same order as below
        const event = backfill
          ? { metric: metricName, properties: props, time: t, value: v, value_currency: c, unique_id: id, backfill: true }
          : { metric: metricName, properties: props, time: t, value: v, value_currency: c, unique_id: id };
        return { profile: h.profile, event };
      }
      const event: EventAttributes = { metric: metricName, properties: props };
      if (h.time !== undefined) event.time = h.time;
      if (v !== undefined) event.value = v;
      if (h.currency !== undefined) event.value_currency = h.currency;
      if (id !== undefined) event.unique_id = id;
      if (backfill) event.backfill = true;
      return { profile: h.profile, event };
    };

    const group = config.group;
    if (group === undefined) {
      return {
        push(record) {
          if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
          if (failures.length !== 0) failures.length = 0;
          const h = header(record.row);
          const v = run(value, 'value', record.row, failures) as number | undefined;
          if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };
          const payload = eventOf(h, metric, h.properties ?? {}, v, h.uniqueId);
          return { items: [{ kind: 'event', payload, first: record.pos, last: record.pos, row: record.row, raw: record.raw }], rejects: [] };
        },
        flush: () => ({ items: [], rejects: [] }),
        held: () => undefined,
      };
    }

    // ---------------------------------------------------------------- grouping
    const by = typeof group.by === 'string' ? [group.by] : group.by;
    const byName = by.join(', ');
    const valueMode = group.value ?? 'sum';
    const itemsProperty = group.itemsProperty ?? 'Items';
    const items = compileMap(group.items, 'group.items.');
    const itemEvents = group.itemEvents;
    const itemUniqueId =
      itemEvents === undefined
        ? undefined
        : compileField(itemEvents.unique_id, 'group.itemEvents.unique_id', { required: true, itemColumn: '_item' });
    const itemValue =
      itemEvents?.value === undefined
        ? undefined
        : compileField(itemEvents.value, 'group.itemEvents.value', { defaultType: 'number' });
    const itemProps = compileMap(itemEvents?.properties, 'group.itemEvents.properties.');
    /** An item event's properties: the item's fields, then `itemEvents.properties` (which win). */
    const itemEventProperties = compileMerge(items, itemProps);
    const itemValues: unknown[] = [];
    const extraValues: unknown[] = [];

    const keyOf = (row: Row): string => {
      let key = '';
      let any = false;
      for (let i = 0; i < by.length; i++) {
        const raw = row[by[i]];
        const text = raw === undefined || raw === null ? '' : (raw instanceof Date ? raw.toISOString() : String(raw)).trim();
        if (text !== '') any = true;
        key = i === 0 ? text : `${key}\u001f${text}`;
      }
      return any ? key : '';
    };

    let open: OpenGroup | undefined;
    // The open group's rows, in scratch arrays reused from group to group (finish() reads them before the next
    // start()): records and their failures (undefined for a row without), items, and item event payloads (from
    // index 1; finish() puts the group event at 0 and copies the exact-size output array out).
    let rowCount = 0;
    let itemCount = 0;
    const groupRecords: SourceRecord[] = [];
    const groupFailures: (FieldFailure[] | undefined)[] = [];
    const groupItems: Record<string, unknown>[] = [];
    const groupOut: EventItem[] = [];
    const groupPayloads: EventPayload[] = [];

    /** Add a row to the open group; the first row's failures also hold the header's (start() evaluated it). */
    const addRow = (g: OpenGroup, record: SourceRecord, first: boolean): void => {
      const index = rowCount++;
      groupRecords[index] = record;
      if (record.error !== undefined) {
        groupFailures[index] = undefined;
        g.failed = true;
        return;
      }
      if (!first && failures.length !== 0) failures.length = 0;
      const row = record.row;
      if (value !== undefined && (first || valueMode === 'sum')) {
        const v = run(value, 'value', row, failures);
        if (typeof v === 'number') {
          g.sum += v;
          g.hasValue = true;
          if (first) g.firstValue = v;
        }
      }
      items.evaluate(row, failures, itemValues);
      groupItems[itemCount++] = items.build(itemValues) ?? {};
      if (itemEvents !== undefined) {
        // `{{_item}}`: the 1-based position of this row's item in its group, so line items with the same SKU stay
        // distinct. Only the unique_id reads it (as its `itemColumn`); the row is not touched.
        const id = run(itemUniqueId, 'group.itemEvents.unique_id', row, failures, itemCount);
        const v = run(itemValue, 'group.itemEvents.value', row, failures) as number | undefined;
        itemProps.evaluate(row, failures, extraValues);
        const props = itemEventProperties(itemValues, extraValues);
        groupPayloads[itemCount] = eventOf(g.header, itemEvents.metric, props, v, id === undefined ? undefined : String(id));
      }
      if (failures.length > 0) {
        groupFailures[index] = failures.slice();
        g.failed = true;
      } else groupFailures[index] = undefined;
    };

    const start = (record: SourceRecord, key: string): OpenGroup => {
      if (failures.length !== 0) failures.length = 0;
      rowCount = 0;
      itemCount = 0;
      const h = header(record.row);
      const g: OpenGroup = { key, first: record, header: h, failed: false, sum: 0, hasValue: false, firstValue: undefined };
      addRow(g, record, true);
      return g;
    };

    const rejectGroup = (g: OpenGroup): Reject[] => {
      let badIndex = 0;
      while (groupRecords[badIndex].error === undefined && groupFailures[badIndex] === undefined) badIndex++;
      const bad = groupRecords[badIndex];
      const badFailures = groupFailures[badIndex];
      const badError = bad.error;
      const code = badError !== undefined ? badError.code : (badFailures as FieldFailure[])[0].code;
      const reason =
        badError !== undefined
          ? `${badError.message} [${badError.code}]`
          : (badFailures as FieldFailure[]).map((f) => `${f.message} [${f.code}]`).join('; ');
      const title = `group ${showValue(g.key.replaceAll('\u001f', ', '))} (${rowCount} rows) rejected`;
      const rejects: Reject[] = [];
      for (let i = 0; i < rowCount; i++) {
        const record = groupRecords[i];
        const rowFailures = groupFailures[i];
        if (record.error !== undefined) rejects.push(extractReject(record));
        else if (rowFailures !== undefined) rejects.push(failuresReject(record, rowFailures, `${title}: `));
        else rejects.push(rejectOf(record, 'transform', code, `${title} because ${where(bad)} failed: ${reason}`, badFailures?.[0]?.field));
      }
      return rejects;
    };

    const finish = (g: OpenGroup): TransformOutput => {
      if (g.failed) return { items: [], rejects: rejectGroup(g) };
      const first = g.first.pos;
      const last = groupRecords[rowCount - 1].pos;
      const row = g.first.row;
      const raw = g.first.raw;
      const h = g.header;
      let v: number | undefined;
      if (valueMode === 'first') v = g.firstValue;
      else if (g.hasValue) v = Math.round(g.sum * 1e6) / 1e6;
      const groupItemsOut = groupItems.slice(0, itemCount);
      let props: Record<string, unknown>;
      if (h.properties === undefined) props = { [itemsProperty]: groupItemsOut };
      else if (itemsProperty === '__proto__') props = { ...h.properties, [itemsProperty]: groupItemsOut };
      else {
        // the header's properties object belongs to this group: adding the key is what the spread did
        props = h.properties;
        props[itemsProperty] = groupItemsOut;
      }
      groupOut[0] = { kind: 'event', payload: eventOf(h, metric, props, v, h.uniqueId), first, last, row, raw };
      let count = 1;
      if (itemEvents !== undefined) {
        for (let i = 1; i <= itemCount; i++) {
          groupOut[count++] = { kind: 'event', payload: groupPayloads[i], first, last, row, raw };
        }
      }
      const out = groupOut.slice(0, count);
      return { items: out, rejects: [] };
    };

    const close = (): TransformOutput | undefined => {
      if (open === undefined) return undefined;
      const out = finish(open);
      open = undefined;
      return out;
    };

    const merge = (a: TransformOutput | undefined, b: TransformOutput): TransformOutput =>
      a === undefined ? b : { items: a.items.concat(b.items), rejects: a.rejects.concat(b.rejects) };

    return {
      push(record) {
        if (record.error !== undefined) {
          const key = keyOf(record.row);
          if (open !== undefined && key !== '' && key === open.key) {
            addRow(open, record, false);
            return { items: [], rejects: [] };
          }
          return merge(close(), { items: [], rejects: [extractReject(record)] });
        }
        const key = keyOf(record.row);
        if (key === '') {
          const reject = rejectOf(
            record,
            'transform',
            'MISSING_REQUIRED',
            `group.by: the group key (${byName}) is empty`,
            `group.by`,
          );
          return merge(close(), { items: [], rejects: [reject] });
        }
        if (open !== undefined && key === open.key) {
          addRow(open, record, false);
          return { items: [], rejects: [] };
        }
        const closed = close();
        open = start(record, key);
        return closed ?? { items: [], rejects: [] };
      },
      flush() {
        return close() ?? { items: [], rejects: [] };
      },
      held() {
        return open?.first.pos.seq;
      },
    };
  },
};
