import type { FieldInput } from '../config/field.js';
import { EventTransform } from '../config/schema.js';
import type { EventTransformConfig } from '../config/schema.js';
import type { EventAttributes, EventItem, EventPayload, Reject, SourceRecord, TransformOutput } from '../core/record.js';
import { compileMap, compileMerge, compileProfile, extractReject, failuresReject, mergeObject, rejectOf, runField } from './common.js';
import type { CompiledMap, FieldFailure } from './common.js';
import { ConsecutiveGroups, KEY_SEPARATOR, type GroupBuilder } from './event-grouping.js';
import { showValue } from './field/coercion.js';
import { compileField, type CompiledField, type Row } from './field/compile.js';
import type { TransformContext, Transformer } from './types.js';
import type { TransformDefinition } from '../components/types.js';

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
 * Grouping (`group.by`): consecutive rows with the same key make one event (where groups start and end:
 * ./event-grouping.ts; what a group becomes: {@link OrderBuilder}).
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

/** The order-level attributes of an event (of a group: from its first row). */
interface Header {
  profile: Record<string, unknown>;
  uniqueId?: string;
  time?: string;
  currency?: string;
  properties?: Record<string, unknown>;
  /** The row's metric, when `metric` is a field. */
  metric?: string;
}

type EventGroupConfig = NonNullable<EventTransformConfig['group']>;

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

/** The compiled mapping of an event, shared by single and grouped events. */
interface EventMapping {
  metric: string;
  /** The `value` field (a number). */
  value: CompiledField | undefined;
  /** Failures of the row being transformed (emptied per row; copied only when a row fails). */
  failures: FieldFailure[];
  /** Evaluate the order-level fields of a row (failures into `failures`). */
  header(row: Row): Header;
  /** The payload of one event. */
  eventOf(h: Header, metricName: string, props: Record<string, unknown>, v: number | undefined, id: string | undefined): EventPayload;
}

function compileEventMapping(config: EventTransformConfig, ctx: TransformContext): EventMapping {
  const now = ctx.now ?? (() => new Date());
  const backfill = config.backfill === true;
  const profile = compileProfile(config.profile, 'profile.');
  const uniqueId = config.unique_id === undefined ? undefined : compileField(config.unique_id, 'unique_id', { required: true });
  const time = config.time === undefined ? undefined : compileField(timeSpec(config.time), 'time');
  const value = config.value === undefined ? undefined : compileField(config.value, 'value', { defaultType: 'number' });
  const currency = config.value_currency === undefined ? undefined : compileField(config.value_currency, 'value_currency');
  const properties = compileMap(config.properties, 'properties.');
  const propertiesFrom = config.properties_from === undefined ? undefined : compileField(config.properties_from, 'properties_from', { defaultType: 'json' });
  const metricField = typeof config.metric === 'string' ? undefined : compileField(config.metric, 'metric', { required: true });
  const run = runField;
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
    if (propertiesFrom !== undefined) h.properties = mergeObject(run(propertiesFrom, 'properties_from', row, failures), h.properties, 'properties_from', failures);
    if (metricField !== undefined) h.metric = rowMetric(run(metricField, 'metric', row, failures), failures);
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

  return { metric: typeof config.metric === 'string' ? config.metric : '', value, failures, header, eventOf };
}

/** A metric name read from the row: a string under 128 characters. */
function rowMetric(value: unknown, failures: FieldFailure[]): string | undefined {
  if (value === undefined) return undefined; // MISSING_REQUIRED was recorded
  const name = typeof value === 'string' ? value : String(value);
  if (name.length > 127) {
    failures.push({ field: 'metric', code: 'INVALID_VALUE', message: `metric: a metric name must be under 128 characters (got ${name.length})` });
    return undefined;
  }
  return name;
}

/** One event per row. */
function singleEvents(m: EventMapping): Transformer {
  const { metric, value, failures, header, eventOf } = m;
  const run = runField;
  return {
    push(record) {
      if (record.error !== undefined) return { items: [], rejects: [extractReject(record)] };
      if (failures.length !== 0) failures.length = 0;
      const h = header(record.row);
      const v = run(value, 'value', record.row, failures) as number | undefined;
      if (failures.length > 0) return { items: [], rejects: [failuresReject(record, failures)] };
      const payload = eventOf(h, h.metric ?? metric, h.properties ?? {}, v, h.uniqueId);
      return { items: [{ kind: 'event', payload, first: record.pos, last: record.pos, row: record.row, raw: record.raw }], rejects: [] };
    },
    flush: () => ({ items: [], rejects: [] }),
    held: () => undefined,
  };
}

export const eventTransform: TransformDefinition<typeof EventTransform> = {
  type: 'event',
  summary: 'One Klaviyo event per row, or per group of consecutive rows (orders with line items).',
  config: EventTransform,
  capabilities: { reads: 'rows', produces: 'event' },
  create(config, ctx: TransformContext): Transformer {
    const mapping = compileEventMapping(config, ctx);
    const group = config.group;
    if (group === undefined) return singleEvents(mapping);
    return new ConsecutiveGroups(typeof group.by === 'string' ? [group.by] : group.by, new OrderBuilder(mapping, group));
  },
};

/**
 * Builds the events of one group at a time: the group event (order-level fields from the first row, the value summed
 * or first, the items) and the item events. Its rows, items and item event payloads are in scratch arrays reused
 * from group to group (finish() reads them before the next start()): records and their failures (undefined for a
 * row without), items, and item event payloads (from index 1; finish() puts the group event at 0 and copies the
 * exact-size output array out).
 */
class OrderBuilder implements GroupBuilder {
  readonly #m: EventMapping;
  readonly #valueMode: 'sum' | 'first';
  readonly #itemsProperty: string;
  readonly #items: CompiledMap;
  readonly #itemEvents: EventGroupConfig['itemEvents'];
  readonly #itemUniqueId: CompiledField | undefined;
  readonly #itemValue: CompiledField | undefined;
  readonly #itemProps: CompiledMap;
  /** An item event's properties: the item's fields, then `itemEvents.properties` (which win). */
  readonly #itemEventProperties: (va: readonly unknown[], vb: readonly unknown[]) => Record<string, unknown>;
  readonly #itemValues: unknown[] = [];
  readonly #extraValues: unknown[] = [];
  readonly #records: SourceRecord[] = [];
  readonly #rowFailures: (FieldFailure[] | undefined)[] = [];
  readonly #groupItems: Record<string, unknown>[] = [];
  readonly #out: EventItem[] = [];
  readonly #payloads: EventPayload[] = [];
  // the open group
  #key = '';
  #header: Header = { profile: {} };
  #rowCount = 0;
  #itemCount = 0;
  #failed = false;
  #sum = 0;
  #hasValue = false;
  #firstValue: number | undefined;

  constructor(mapping: EventMapping, group: EventGroupConfig) {
    this.#m = mapping;
    this.#valueMode = group.value ?? 'sum';
    this.#itemsProperty = group.itemsProperty ?? 'Items';
    this.#items = compileMap(group.items, 'group.items.');
    const itemEvents = group.itemEvents;
    this.#itemEvents = itemEvents;
    this.#itemUniqueId =
      itemEvents === undefined
        ? undefined
        : compileField(itemEvents.unique_id, 'group.itemEvents.unique_id', { required: true, itemColumn: '_item' });
    this.#itemValue =
      itemEvents?.value === undefined ? undefined : compileField(itemEvents.value, 'group.itemEvents.value', { defaultType: 'number' });
    this.#itemProps = compileMap(itemEvents?.properties, 'group.itemEvents.properties.');
    this.#itemEventProperties = compileMerge(this.#items, this.#itemProps);
  }

  /** Open a group: its first row's order-level fields, then the row itself. */
  start(record: SourceRecord, key: string): void {
    const failures = this.#m.failures;
    if (failures.length !== 0) failures.length = 0;
    this.#key = key;
    this.#rowCount = 0;
    this.#itemCount = 0;
    this.#failed = false;
    this.#sum = 0;
    this.#hasValue = false;
    this.#firstValue = undefined;
    this.#header = this.#m.header(record.row);
    this.#addRow(record, true);
  }

  add(record: SourceRecord): void {
    this.#addRow(record, false);
  }

  /** Add a row to the open group; the first row's failures also hold the header's (start() evaluated it). */
  #addRow(record: SourceRecord, first: boolean): void {
    const index = this.#rowCount++;
    this.#records[index] = record;
    if (record.error !== undefined) {
      this.#rowFailures[index] = undefined;
      this.#failed = true;
      return;
    }
    const { failures, value } = this.#m;
    if (!first && failures.length !== 0) failures.length = 0;
    const row = record.row;
    if (value !== undefined && (first || this.#valueMode === 'sum')) {
      const v = runField(value, 'value', row, failures);
      if (typeof v === 'number') {
        this.#sum += v;
        this.#hasValue = true;
        if (first) this.#firstValue = v;
      }
    }
    const itemValues = this.#itemValues;
    this.#items.evaluate(row, failures, itemValues);
    this.#groupItems[this.#itemCount++] = this.#items.build(itemValues) ?? {};
    const itemEvents = this.#itemEvents;
    if (itemEvents !== undefined) {
      // `{{_item}}`: the 1-based position of this row's item in its group, so line items with the same SKU stay
      // distinct. Only the unique_id reads it (as its `itemColumn`); the row is not touched.
      const id = runField(this.#itemUniqueId, 'group.itemEvents.unique_id', row, failures, this.#itemCount);
      const v = runField(this.#itemValue, 'group.itemEvents.value', row, failures) as number | undefined;
      this.#itemProps.evaluate(row, failures, this.#extraValues);
      const props = this.#itemEventProperties(itemValues, this.#extraValues);
      this.#payloads[this.#itemCount] = this.#m.eventOf(this.#header, itemEvents.metric, props, v, id === undefined ? undefined : String(id));
    }
    if (failures.length > 0) {
      this.#rowFailures[index] = failures.slice();
      this.#failed = true;
    } else this.#rowFailures[index] = undefined;
  }

  finish(): TransformOutput {
    if (this.#failed) return { items: [], rejects: this.#reject() };
    const firstRecord = this.#records[0];
    const first = firstRecord.pos;
    const last = this.#records[this.#rowCount - 1].pos;
    const row = firstRecord.row;
    const raw = firstRecord.raw;
    const h = this.#header;
    let v: number | undefined;
    if (this.#valueMode === 'first') v = this.#firstValue;
    else if (this.#hasValue) v = Math.round(this.#sum * 1e6) / 1e6;
    const groupItemsOut = this.#groupItems.slice(0, this.#itemCount);
    const itemsProperty = this.#itemsProperty;
    let props: Record<string, unknown>;
    if (h.properties === undefined) props = { [itemsProperty]: groupItemsOut };
    else if (itemsProperty === '__proto__') props = { ...h.properties, [itemsProperty]: groupItemsOut };
    else {
      // the header's properties object belongs to this group: adding the key is what the spread did
      props = h.properties;
      props[itemsProperty] = groupItemsOut;
    }
    const out = this.#out;
    out[0] = { kind: 'event', payload: this.#m.eventOf(h, h.metric ?? this.#m.metric, props, v, h.uniqueId), first, last, row, raw };
    let count = 1;
    if (this.#itemEvents !== undefined) {
      for (let i = 1; i <= this.#itemCount; i++) {
        out[count++] = { kind: 'event', payload: this.#payloads[i], first, last, row, raw };
      }
    }
    return { items: out.slice(0, count), rejects: [] };
  }

  /** A reject per row of the failed group: failing rows with their own codes, the others naming the first failure. */
  #reject(): Reject[] {
    const records = this.#records;
    const rowFailures = this.#rowFailures;
    const rowCount = this.#rowCount;
    let badIndex = 0;
    while (records[badIndex].error === undefined && rowFailures[badIndex] === undefined) badIndex++;
    const bad = records[badIndex];
    const badFailures = rowFailures[badIndex];
    const badError = bad.error;
    const code = badError !== undefined ? badError.code : (badFailures as FieldFailure[])[0].code;
    const reason =
      badError !== undefined
        ? `${badError.message} [${badError.code}]`
        : (badFailures as FieldFailure[]).map((f) => `${f.message} [${f.code}]`).join('; ');
    const title = `group ${showValue(this.#key.replaceAll(KEY_SEPARATOR, ', '))} (${rowCount} rows) rejected`;
    const rejects: Reject[] = [];
    for (let i = 0; i < rowCount; i++) {
      const record = records[i];
      const failures = rowFailures[i];
      if (record.error !== undefined) rejects.push(extractReject(record));
      else if (failures !== undefined) rejects.push(failuresReject(record, failures, `${title}: `));
      else rejects.push(rejectOf(record, 'transform', code, `${title} because ${where(bad)} failed: ${reason}`, badFailures?.[0]?.field));
    }
    return rejects;
  }
}
