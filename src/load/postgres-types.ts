/**
 * Column types of the postgres export destination: the SQL type a new table's column gets from the values of the
 * first batch, and how a value is sent as text for a column of a given type (or why it cannot be).
 *
 * Choosing a type from values (every non-null value of the column in the batch that creates the table):
 * - all numbers → `numeric` (exact; a first batch of whole numbers cannot tell an integer column from a decimal one);
 * - all booleans → `boolean`;
 * - all ISO 8601 date-times with a time and an offset (`2026-03-01T09:00:00Z`, `…+02:00`) → `timestamptz`;
 * - all objects or arrays → `jsonb`;
 * - anything else, mixed kinds, or no value at all → `text`.
 * `columnTypes` overrides the choice per column.
 */

/** How a value is sent for a column: by what its SQL type accepts. */
export type ValueKind = 'integer' | 'number' | 'boolean' | 'datetime' | 'json' | 'text';

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/;
const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The SQL type a new column gets from its values (see the module comment). */
export function inferColumnType(values: readonly unknown[]): string {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return 'text';
  if (present.every((v) => typeof v === 'number' && Number.isFinite(v))) return 'numeric';
  if (present.every((v) => typeof v === 'boolean')) return 'boolean';
  if (present.every((v) => typeof v === 'string' && ISO_DATETIME.test(v) && !Number.isNaN(Date.parse(v)))) return 'timestamptz';
  if (present.every((v) => typeof v === 'object' && !(v instanceof Date))) return 'jsonb';
  return 'text';
}

/** The kind of values a column of SQL type `sqlType` (as `format_type` writes it) takes. */
export function kindOfType(sqlType: string): ValueKind {
  const t = sqlType.toLowerCase();
  if (/^(smallint|integer|bigint|int[248]?|serial|bigserial)$/.test(t)) return 'integer';
  if (/^(numeric|decimal|real|double precision|float[48]?)\b/.test(t)) return 'number';
  if (t === 'boolean' || t === 'bool') return 'boolean';
  if (/^(timestamp|date)\b/.test(t) || t === 'timestamptz') return 'datetime';
  if (t === 'json' || t === 'jsonb') return 'json';
  return 'text';
}

/** A value as the text PostgreSQL parses for a column of `kind`; null for SQL NULL; undefined when it cannot be. */
export function valueText(value: unknown, kind: ValueKind): string | null | undefined {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'json':
      return JSON.stringify(value instanceof Date ? value.toISOString() : value);
    case 'integer':
      if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
      if (typeof value === 'bigint') return value.toString();
      return typeof value === 'string' && INTEGER_TEXT.test(value.trim()) ? value.trim() : undefined;
    case 'number':
      if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
      return typeof value === 'string' && NUMBER_TEXT.test(value.trim()) ? value.trim() : undefined;
    case 'boolean':
      if (typeof value === 'boolean') return String(value);
      return typeof value === 'string' && /^(true|false)$/i.test(value.trim()) ? value.trim().toLowerCase() : undefined;
    case 'datetime':
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
      return typeof value === 'string' && (ISO_DATETIME.test(value.trim()) || !Number.isNaN(Date.parse(value))) ? value.trim() : undefined;
    default:
      if (typeof value === 'string') return value;
      if (value instanceof Date) return value.toISOString();
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

/** A text value (or NULL) in COPY's text format: `\N` for NULL, backslash, tab, newline and CR escaped. */
export function copyField(text: string | null): string {
  if (text === null) return '\\N';
  return text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}
