import type { FieldInput } from '../config/field.js';
import type { ProfileMappingConfig } from '../config/schema.js';
import type { Reject, SourceRecord, TransformOutput } from '../core/record.js';
import { compileValueField, FieldFail } from './field.js';
import type { CompileFieldOptions, CompiledField, FieldErrorCode, Row, ValueField } from './field.js';

/** One field that failed on one row. */
export interface FieldFailure {
  field: string;
  code: FieldErrorCode | 'MISSING_IDENTIFIER';
  message: string;
}

/** An empty output (shared shape; callers always build new arrays when they add to it). */
export function emptyOutput(): TransformOutput {
  return { items: [], rejects: [] };
}

/** A Reject for a record, with its position, row and raw text. */
export function rejectOf(
  record: SourceRecord,
  stage: Reject['stage'],
  code: string,
  message: string,
  field?: string,
): Reject {
  const { pos } = record;
  const reject: Reject = { stage, code, message, source: pos.source, seq: pos.seq };
  if (pos.line !== undefined) reject.line = pos.line;
  if (pos.offset !== undefined) reject.offset = pos.offset;
  if (field !== undefined) reject.field = field;
  reject.row = record.row;
  if (record.raw !== undefined) reject.raw = record.raw;
  return reject;
}

/** The Reject for a record the source could not parse (stage `extract`). */
export function extractReject(record: SourceRecord): Reject {
  const error = record.error as NonNullable<SourceRecord['error']>;
  return rejectOf(record, 'extract', error.code, error.message);
}

/** One reject for a row: code and field of the first failure, message listing all of them. */
export function failuresReject(record: SourceRecord, failures: FieldFailure[], prefix = ''): Reject {
  const first = failures[0];
  const message = prefix + failures.map((f) => `${f.message} [${f.code}]`).join('; ');
  return rejectOf(record, 'transform', first.code, message, first.field);
}

/** Apply a compiled field (if any) to a row: its value, or undefined with the failure recorded under `name`. */
export function runField(field: CompiledField | undefined, name: string, row: Row, failures: FieldFailure[]): unknown {
  if (field === undefined) return undefined;
  const result = field(row);
  if (!result.ok) {
    failures.push({ field: name, code: result.code, message: result.message });
    return undefined;
  }
  return result.value;
}

/** Like {@link runField} for a {@link ValueField}; `item` as the field's `itemColumn`. */
export function runValue(field: ValueField | undefined, name: string, row: Row, failures: FieldFailure[], item?: number): unknown {
  if (field === undefined) return undefined;
  const value = field(row, item);
  if (value instanceof FieldFail) {
    failures.push({ field: name, code: value.code, message: value.message });
    return undefined;
  }
  return value;
}

/** A compiled map of output name → field. */
export interface CompiledMap {
  readonly size: number;
  /** Returns the object of present values, or undefined when none are present. */
  run(row: Row, failures: FieldFailure[]): Record<string, unknown> | undefined;
}

export function compileMap(
  map: Record<string, FieldInput> | undefined,
  prefix: string,
  optionsFor: (key: string) => CompileFieldOptions = () => ({}),
): CompiledMap {
  const entries = Object.entries(map ?? {}).filter((entry): entry is [string, FieldInput] => entry[1] !== undefined);
  const keys = entries.map(([key]) => key);
  const names = keys.map((key) => prefix + key);
  const fields: ValueField[] = entries.map(([key, spec], i) => compileValueField(spec, names[i], optionsFor(key)));
  const count = fields.length;
  return {
    size: count,
    run(row, failures) {
      let out: Record<string, unknown> | undefined;
      for (let i = 0; i < count; i++) {
        const value = fields[i](row);
        if (value === undefined) continue;
        if (value instanceof FieldFail) {
          failures.push({ field: names[i], code: value.code, message: value.message });
        } else {
          if (out === undefined) out = {};
          out[keys[i]] = value;
        }
      }
      return out;
    },
  };
}

const PROFILE_KEYS = [
  'email',
  'phone_number',
  'external_id',
  'first_name',
  'last_name',
  'organization',
  'title',
  'locale',
  'image',
] as const;

/** A compiled profile mapping: row → Klaviyo profile attributes (empty values omitted). */
export type CompiledProfile = (row: Row, failures: FieldFailure[]) => Record<string, unknown>;

/**
 * Compile a profile mapping. `email` is coerced as `email` and `phone_number` as `phone` when their type is left at
 * `string` (Klaviyo rejects a whole batch for one malformed identifier, so they are always validated).
 * A row without email, phone_number or external_id after coercion gets a MISSING_IDENTIFIER failure (only when it
 * has no failing identifier field: an invalid email is reported as INVALID_EMAIL, not as a missing identifier).
 */
export function compileProfile(mapping: ProfileMappingConfig, prefix = ''): CompiledProfile {
  const top = compileMap(
    Object.fromEntries(PROFILE_KEYS.filter((k) => mapping[k] !== undefined).map((k) => [k, mapping[k] as FieldInput])),
    prefix,
    (key) => (key === 'email' ? { defaultType: 'email' } : key === 'phone_number' ? { defaultType: 'phone' } : {}),
  );
  const location = compileMap(mapping.location as Record<string, FieldInput> | undefined, `${prefix}location.`, (key) =>
    key === 'latitude' || key === 'longitude' ? { defaultType: 'number' } : {},
  );
  const properties = compileMap(mapping.properties, `${prefix}properties.`);
  const identifierNames = new Set(['email', 'phone_number', 'external_id'].map((k) => prefix + k));
  const identifiersConfigured = ['email', 'phone_number', 'external_id'].filter((k) => k in mapping).join(', ');
  return (row, failures) => {
    const before = failures.length;
    const attrs = top.run(row, failures) ?? {};
    if (location.size > 0) {
      const loc = location.run(row, failures);
      if (loc !== undefined) attrs.location = loc;
    }
    if (properties.size > 0) {
      const props = properties.run(row, failures);
      if (props !== undefined) attrs.properties = props;
    }
    if (attrs.email === undefined && attrs.phone_number === undefined && attrs.external_id === undefined) {
      for (let i = before; i < failures.length; i++) if (identifierNames.has(failures[i].field)) return attrs;
      failures.push({
        field: `${prefix}${identifiersConfigured.split(', ')[0] || 'email'}`,
        code: 'MISSING_IDENTIFIER',
        message: `profile has no identifier: ${identifiersConfigured || 'email, phone_number, external_id'} all empty`,
      });
    }
    return attrs;
  };
}
