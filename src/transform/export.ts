import { ExportTransform } from '../config/schema.js';
import type { ExportTransformConfig } from '../config/schema.js';
import type { ExportRow, ExportRowItem, Reject, SourceRecord } from '../core/record.js';
import { compileMap, extractReject, failuresReject } from './common.js';
import type { FieldFailure } from './common.js';
import type { TransformDefinition } from '../components/types.js';
import type { Transformer } from './types.js';

/*
 * Export: a record of the klaviyo source (any resource: a member or profile flattened as `id, email, …,
 * properties.x, location.city, joined_group_at, subscriptions.email.marketing.consent`, an event as `id, datetime,
 * event_properties.x, metric.name, profile.email`, a catalog row; flat dotted keys or nested objects, both are read)
 * → an output row (column → value).
 * Every configured column is present in the output row, in configuration order; a column with no value is `null`
 * (an empty CSV cell, `null` in NDJSON, NULL in PostgreSQL).
 * A failing field (e.g. a `date` column over a malformed timestamp) rejects the record.
 */

/** The result of mapping one exported record. */
export type ExportResult = { row: ExportRow; reject?: undefined } | { row?: undefined; reject: Reject };

/** Compiles the column mapping once; the returned function runs per record. */
export type ExportMapper = (record: SourceRecord) => ExportResult;

export function createExportMapper(config: ExportTransformConfig): ExportMapper {
  const columns = Object.keys(config.columns);
  // a column without a declared type keeps the record's JSON type (NDJSON, PostgreSQL; CSV writes it as text)
  const map = compileMap(config.columns, '', () => ({ keepTypes: true }));
  // a plain column naming an object the source flattened (`event_properties`, `location`) gets the object back
  const objectColumns = columns.map((column) => nestedSource(config.columns[column]));
  return (record) => {
    if (record.error !== undefined) return { reject: extractReject(record) };
    const failures: FieldFailure[] = [];
    const values = map.run(record.row, failures);
    if (failures.length > 0) return { reject: failuresReject(record, failures) };
    const row: ExportRow = {};
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i]!;
      let v = values?.[column];
      const from = objectColumns[i];
      if (v === undefined && from !== undefined) v = unflatten(record.row, from);
      row[column] = v === undefined ? null : v;
    }
    return { row };
  };
}

/** The source column of a field that reads one column as it is (no template, value or coercion): it may name an object. */
function nestedSource(field: ExportTransformConfig['columns'][string] | undefined): string | undefined {
  if (typeof field === 'string') return field;
  if (field === undefined || field.column === undefined) return undefined;
  return field.type === 'string' || field.type === 'json' ? field.column : undefined;
}

/**
 * The object a flattened row holds under `prefix.` (`event_properties.Items` … → `{Items: …}`), nested again at every
 * dot; undefined when no key starts with the prefix. A key holding undefined (an empty object) gives `{}` there.
 */
function unflatten(row: Record<string, unknown>, prefix: string): Record<string, unknown> | undefined {
  const start = prefix + '.';
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(row)) {
    if (!key.startsWith(start)) continue;
    out ??= {};
    const path = key.slice(start.length).split('.');
    let node = out;
    for (let i = 0; i < path.length - 1; i++) {
      const next = Object.hasOwn(node, path[i]!) ? node[path[i]!] : undefined;
      if (next !== null && typeof next === 'object') node = next as Record<string, unknown>;
      else node = define(node, path[i]!, {}) as Record<string, unknown>;
    }
    const value = row[key];
    define(node, path.at(-1)!, value === undefined ? {} : value);
  }
  return out;
}

/** Own property even for a key such as `__proto__` (property names come from Klaviyo data). */
function define(target: Record<string, unknown>, key: string, value: unknown): unknown {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return value;
}

/**
 * The export transform as a {@link Transformer}: each exported member becomes one `export-row` item whose payload is
 * the output row (column → value); a member whose fields fail is a reject.
 */
export function createExportTransformer(config: ExportTransformConfig): Transformer {
  const map = createExportMapper(config);
  return {
    push(record) {
      const out = map(record);
      if (out.reject) return { items: [], rejects: [out.reject] };
      const item: ExportRowItem = { kind: 'export-row', payload: out.row, first: record.pos, last: record.pos };
      if (record.part !== undefined) item.part = record.part;
      return { items: [item], rejects: [] };
    },
    flush: () => ({ items: [], rejects: [] }),
    held: () => undefined,
  };
}

/** The `export` transform: records exported from Klaviyo → output rows (column → value) for the csv, ndjson and s3 destinations. */
export const exportTransform: TransformDefinition<typeof ExportTransform> = {
  type: 'export',
  summary: 'Select and rename fields of records exported from Klaviyo (members, events, profiles, catalog): one output row per record.',
  config: ExportTransform,
  capabilities: { reads: 'klaviyo-records', produces: 'export-row' },
  columns: (config) => Object.keys(config.columns),
  create: (config) => createExportTransformer(config),
};
