import type { FieldInput } from '../config/field.js';
import type { ProfileMappingConfig } from '../config/schema.js';
import type { Reject, SourceRecord } from '../core/record.js';
import { FieldFail, showValue, type FieldErrorCode } from './field/coercion.js';
import { compileField, type CompiledField, type CompileFieldOptions, type Row } from './field/compile.js';

/** One field that failed on one row. */
export interface FieldFailure {
  field: string;
  code: FieldErrorCode | 'MISSING_IDENTIFIER' | 'SMS_REGION_UNSUPPORTED';
  message: string;
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

/**
 * Apply a compiled field (if any) to a row: its value, or undefined with the failure recorded under `name`. `item`
 * as the field's `itemColumn`.
 */
export function runField(field: CompiledField | undefined, name: string, row: Row, failures: FieldFailure[], item?: number): unknown {
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
  /** Output names, in the map's order (the index of a value in `evaluate`'s array). */
  readonly keys: readonly string[];
  /** Returns the object of present values, or undefined when none are present. */
  run(row: Row, failures: FieldFailure[]): Record<string, unknown> | undefined;
  /**
   * Evaluate every field, in order, into `values[0..size)` (undefined for no value or a failure; failures pushed as
   * run() pushes them). `item` is passed to the fields (see `itemColumn`).
   */
  evaluate(row: Row, failures: FieldFailure[], values: unknown[], item?: number): void;
  /** The object run() returns for these evaluated values. */
  build(values: readonly unknown[]): Record<string, unknown> | undefined;
}

/**
 * Maps and merged objects are built by functions generated per map (`new Function`, as the CSV row factory is): one
 * object literal when every value is present (the usual row), else the same property assignments in the same order
 * as a loop would make. Keys appear only as JSON string literals. A map with a `__proto__` key (an assignment, not a
 * literal property, decides what that does) uses the plain loops instead.
 */
function generated(keys: readonly string[]): boolean {
  return !keys.includes('__proto__');
}

const vars = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** Source of a body returning the object of the present values among `names` (for `keys`), or undefined. */
function buildSource(keys: readonly string[], names: readonly string[]): string {
  if (keys.length === 0) return 'return undefined;';
  const all = names.map((v) => `${v} !== undefined`).join(' && ');
  const literal = keys.map((k, i) => `${JSON.stringify(k)}: ${names[i]}`).join(', ');
  const steps = keys.map((k, i) => `if (${names[i]} !== undefined) { if (o === undefined) o = {}; o[${JSON.stringify(k)}] = ${names[i]}; }`);
  return `if (${all}) return { ${literal} };\nlet o;\n${steps.join('\n')}\nreturn o;`;
}

export function compileMap(
  map: Record<string, FieldInput> | undefined,
  prefix: string,
  optionsFor: (key: string) => CompileFieldOptions = () => ({}),
): CompiledMap {
  const entries = Object.entries(map ?? {}).filter((entry): entry is [string, FieldInput] => entry[1] !== undefined);
  const keys = entries.map(([key]) => key);
  const names = keys.map((key) => prefix + key);
  const fields: CompiledField[] = entries.map(([key, spec], i) => compileField(spec, names[i], optionsFor(key)));
  const count = fields.length;
  if (generated(keys)) {
    const v = vars('v', count);
    const evaluate = v
      .map(
        (x, i) =>
          `let ${x} = f${i}(row, item);\nif (${x} instanceof FieldFail) { failures.push({ field: names[${i}], code: ${x}.code, message: ${x}.message }); ${x} = undefined; }`,
      )
      .join('\n');
    const source = [
      ...v.map((_, i) => `const f${i} = fields[${i}];`),
      `function make(${v.join(', ')}) {\n${buildSource(keys, v)}\n}`,
      'return {',
      `  run(row, failures) {\n${evaluate.replaceAll('(row, item)', '(row)')}\nreturn make(${v.join(', ')});\n},`,
      `  evaluate(row, failures, values, item) {\n${evaluate}\n${v.map((x, i) => `values[${i}] = ${x};`).join(' ')}\n},`,
      `  build(values) {\nreturn make(${v.map((_, i) => `values[${i}]`).join(', ')});\n},`,
      '};',
    ].join('\n');
    const made = new Function('fields', 'names', 'FieldFail', source)(fields, names, FieldFail) as Omit<CompiledMap, 'size' | 'keys'>;
    return { size: count, keys, run: made.run, evaluate: made.evaluate, build: made.build };
  }
  const build = (values: readonly unknown[]): Record<string, unknown> | undefined => {
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < count; i++) {
      if (values[i] === undefined) continue;
      if (out === undefined) out = {};
      out[keys[i]] = values[i];
    }
    return out;
  };
  const evaluate = (row: Row, failures: FieldFailure[], values: unknown[], item?: number): void => {
    for (let i = 0; i < count; i++) {
      const value = fields[i](row, item);
      if (value instanceof FieldFail) {
        failures.push({ field: names[i], code: value.code, message: value.message });
        values[i] = undefined;
      } else values[i] = value;
    }
  };
  return {
    size: count,
    keys,
    run(row, failures) {
      const values: unknown[] = [];
      evaluate(row, failures, values);
      return build(values);
    },
    evaluate,
    build,
  };
}

/**
 * `{ ...(a.build(va) ?? {}), ...b.build(vb) }` (a's present keys in order, then b's other present keys; b's value
 * wins for a key both have) without building the two objects first.
 */
export function compileMerge(a: CompiledMap, b: CompiledMap): (va: readonly unknown[], vb: readonly unknown[]) => Record<string, unknown> {
  if (!generated(a.keys) || !generated(b.keys)) return (va, vb) => ({ ...a.build(va), ...b.build(vb) });
  const av = vars('a', a.size);
  const bv = vars('b', b.size);
  const inA = new Map(a.keys.map((k, i) => [k, i]));
  const inB = new Map(b.keys.map((k, i) => [k, i]));
  const bOnly = b.keys.map((k, j) => [k, j] as const).filter(([k]) => !inA.has(k));
  const key = JSON.stringify;
  const all = [...av, ...bv].map((x) => `${x} !== undefined`).join(' && ') || 'true';
  const literal = [
    ...a.keys.map((k, i) => `${key(k)}: ${inB.has(k) ? `b${inB.get(k)}` : `a${i}`}`),
    ...bOnly.map(([k, j]) => `${key(k)}: b${j}`),
  ].join(', ');
  const steps = [
    ...a.keys.map((k, i) => {
      const j = inB.get(k);
      const value = j === undefined ? `a${i}` : `(b${j} !== undefined ? b${j} : a${i})`;
      return `if (a${i} !== undefined) o[${key(k)}] = ${value};`;
    }),
    ...b.keys.map((k, j) => {
      const i = inA.get(k);
      return i === undefined
        ? `if (b${j} !== undefined) o[${key(k)}] = b${j};`
        : `if (a${i} === undefined && b${j} !== undefined) o[${key(k)}] = b${j};`;
    }),
  ];
  const source = [
    'return function merge(va, vb) {',
    ...av.map((x, i) => `const ${x} = va[${i}];`),
    ...bv.map((x, j) => `const ${x} = vb[${j}];`),
    `if (${all}) return { ${literal} };`,
    'const o = {};',
    ...steps,
    'return o;',
    '};',
  ].join('\n');
  return new Function(source)() as (va: readonly unknown[], vb: readonly unknown[]) => Record<string, unknown>;
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
/**
 * `properties_from`: a JSON object whose keys become properties, `explicit` entries winning. Klaviyo's own event keys
 * (`$value`, `$value_currency`, `$event_id`, `$backfill`: what an events export's `event_properties` carry for the
 * event's value, currency, unique_id and backfill attributes) are left out; map them to those attributes instead.
 * Undefined when there is nothing to merge; a value that is not an object is a failure (INVALID_VALUE).
 */
export function mergeObject(
  value: unknown,
  explicit: Record<string, unknown> | undefined,
  field: string,
  failures: FieldFailure[],
): Record<string, unknown> | undefined {
  if (value === undefined || value === null || value === '') return explicit;
  if (typeof value !== 'object' || Array.isArray(value)) {
    failures.push({ field, code: 'INVALID_VALUE', message: `${field}: expected a JSON object, got ${showValue(value)}` });
    return explicit;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (!KLAVIYO_EVENT_KEYS.has(k)) out[k] = v;
  return explicit === undefined ? out : Object.assign(out, explicit);
}

const KLAVIYO_EVENT_KEYS = new Set(['$value', '$value_currency', '$event_id', '$backfill']);

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
  const from = mapping.properties_from === undefined ? undefined : compileField(mapping.properties_from, `${prefix}properties_from`, { defaultType: 'json' });
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
    if (from !== undefined) {
      const merged = mergeObject(runField(from, `${prefix}properties_from`, row, failures), attrs.properties as Record<string, unknown> | undefined, `${prefix}properties_from`, failures);
      if (merged !== undefined) attrs.properties = merged;
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
