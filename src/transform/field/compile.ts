import type { FieldInput } from '../../config/field.js';
import {
  coerceBoolean,
  coerceEmail,
  coerceInteger,
  coerceJson,
  coerceNumber,
  coercePhone,
  coerceString,
  configError,
  localNumber,
  fail,
  FieldFail,
  showValue,
  toText,
  type Coerce,
  type CoerceSpec,
  type FieldType,
} from './coercion.js';
import { coerceDate, coerceDatetime } from './datetime.js';

/*
 * The field compiler: a field mapping → a per-row function, compiled once per field at transform creation (readers
 * and the normalisation generated as code, the coercer of ./coercion.ts or ./datetime.ts built once).
 *
 * Rules (the reference for user documentation):
 * - Reading: `column` looks the column up (missing → empty). A column name with dots (`properties.tier`) is read as
 *   that exact key when present, else as a path into nested objects. `template` replaces each `{{Column}}` with the
 *   column's trimmed text; when EVERY referenced column is empty the template result is empty (so `{{First}} {{Last}}`
 *   over two empty columns is empty, not " "). `value` is a constant.
 * - Normalising strings: trimmed (unless `trim: false`), then empty when `""` or equal (case-insensitively) to one of
 *   `empty`; `""` is always empty. Then lower-/upper-cased. null and undefined are empty.
 * - Empty: `default` (coerced like a value; `default: null` means no value), else MISSING_REQUIRED when `required`,
 *   else no value (the key is omitted from the payload).
 * - Then the value is coerced into the field's type (./coercion.ts, ./datetime.ts).
 */

/** A row as sources give it: strings from CSV, typed values from PostgreSQL / NDJSON. */
export type Row = Record<string, unknown>;

/**
 * A compiled field: row → the value itself (`undefined` = no value) or a {@link FieldFail}, so a row costs no result
 * object. `item` is what the column named by {@link CompileFieldOptions.itemColumn} reads (a grouped event's
 * line-item position).
 */
export type CompiledField = (row: Row, item?: number) => unknown;

export interface CompileFieldOptions {
  /** Type used when the spec's type is `string` (the default), e.g. `email` for a profile's email. */
  defaultType?: FieldType;
  /**
   * A field with no declared `type` keeps a value that is not text (a number, boolean, object from a JSON source) as
   * it is instead of making it text (exports: NDJSON and PostgreSQL keep JSON types). @default false
   */
  keepTypes?: boolean;
  /** Force the value to be required (e.g. an event's `unique_id`). */
  required?: boolean;
  /**
   * A column name (`_item`) read from the `item` argument of a {@link CompiledField} instead of the row, in columns,
   * templates and paths starting with it (`_item.x` is then read as the flat key only, as `_item` is not an object).
   */
  itemColumn?: string;
}

// ---------------------------------------------------------------- readers

type Reader = (row: Row, item?: number) => unknown;

function compileColumn(column: string, itemColumn?: string): Reader {
  if (column === itemColumn) return (_row, item) => item;
  if (!column.includes('.')) return (row) => row[column];
  const path = column.split('.');
  // `_item` holds a number: a path through it reads nothing (only the flat key `_item.x` can give a value)
  if (path[0] === itemColumn) return (row) => row[column];
  return (row) => {
    const direct = row[column];
    if (direct !== undefined) return direct;
    let current: unknown = row;
    for (const key of path) {
      if (current === null || typeof current !== 'object') return undefined;
      current = (current as Row)[key];
    }
    return current;
  };
}

/**
 * Per-row functions are generated (`new Function`, as the CSV row factory is) so that each reads its columns as
 * named properties (one row shape: a monomorphic load) and its options are constants. Column names and literals
 * appear in the source only as JSON string literals; a dotted column is read by a compiled closure (`env`).
 */
function columnExpression(column: string, itemColumn: string | undefined, env: unknown[]): string {
  if (column === itemColumn) return 'item';
  if (!column.includes('.') || column.split('.')[0] === itemColumn) return `row[${JSON.stringify(column)}]`;
  env.push(compileColumn(column, itemColumn));
  return `e${env.length - 1}(row, item)`;
}

/** Source binding `e0…` to the closures in `env` (so the generated calls have constant targets). */
const envBindings = (env: readonly unknown[]): string => env.map((_, i) => `const e${i} = env[${i}];`).join('\n');

/** Compile `{{Column}}` templates into literal/column parts. */
function compileTemplateReader(template: string, itemColumn?: string): (row: Row, item?: number) => string {
  const literals: string[] = [];
  const columns: string[] = [];
  const re = /\{\{\s*(.+?)\s*\}\}/g;
  let last = 0;
  for (let match = re.exec(template); match !== null; match = re.exec(template)) {
    literals.push(template.slice(last, match.index));
    columns.push(match[1]);
    last = match.index + match[0].length;
  }
  const tail = template.slice(last);
  if (columns.length === 0) return () => tail;
  // each column's trimmed text; empty when every one is empty, else literal + text … + tail
  const env: unknown[] = [];
  const texts = columns.map((column, i) => `const t${i} = toText(${columnExpression(column, itemColumn, env)}).trim();`);
  const joined = [...literals.flatMap((literal, i) => [JSON.stringify(literal), `t${i}`]), JSON.stringify(tail)].join(' + ');
  const source = `${envBindings(env)}
return function template(row, item) {
${texts.join('\n')}
if (${columns.map((_, i) => `t${i} === ''`).join(' && ')}) return '';
return ${joined};
};`;
  return new Function('env', 'toText', source)(env, toText) as (row: Row, item?: number) => string;
}

// ---------------------------------------------------------------- coercers

function compileCoerce(spec: CoerceSpec): Coerce {
  switch (spec.type) {
    case 'string':
      return coerceString();
    case 'number':
      return localNumber(spec, coerceNumber(spec.name));
    case 'integer':
      return localNumber(spec, coerceInteger(spec.name));
    case 'boolean':
      return coerceBoolean(spec.name, spec.trueValues, spec.falseValues);
    case 'json':
      return coerceJson(spec.name);
    case 'email':
      return coerceEmail(spec.name);
    case 'phone':
      return coercePhone(spec.name, spec.region);
    case 'date':
      return coerceDate(spec);
    case 'datetime':
      return coerceDatetime(spec);
    default: {
      const never: never = spec.type;
      throw configError(spec.name, `unknown type ${String(never)}`);
    }
  }
}

// ---------------------------------------------------------------- compileField

/** The options of a field spec that act on each read value. */
interface Normalization {
  type: FieldType;
  trim: boolean;
  lowercase: boolean;
  uppercase: boolean;
  emptyList: Set<string> | undefined;
}

/**
 * The one definition of normalisation, as source: statements taking `raw` to the field's result. Empty (null,
 * undefined, or text that is `""` after trimming or in the `empty` list) → `onEmpty`; else `present` runs, and the
 * trimmed, case-mapped text (a string field's value) or the value goes through `coerce` (the coercer's name in
 * scope). The per-row function and the evaluation of constants and defaults are both generated from it.
 */
function normalizeSource(n: Normalization, coerce: string, present = ''): string {
  return `if (raw === undefined || raw === null) return onEmpty;
${present}
if (typeof raw === 'string') {
let text = ${n.trim ? 'raw.trim()' : 'raw'};
if (text === ''${n.emptyList === undefined ? '' : ' || emptyList.has(text.trim().toLowerCase())'}) return onEmpty;
${n.lowercase ? 'text = text.toLowerCase();' : n.uppercase ? 'text = text.toUpperCase();' : ''}
return ${n.type === 'string' ? 'text' : `${coerce}(text)`};
}
return ${coerce}(raw);`;
}

/**
 * Compile a field mapping into a per-row function. Throws `EtlError` (CONFIG_INVALID / CONFIG_RULE) for a spec that
 * can never work (unknown zone, datetime format without offset and no zone, a default that fails its own type).
 */
export function compileField(spec: FieldInput, name: string, options: CompileFieldOptions = {}): CompiledField {
  const obj = typeof spec === 'string' ? { column: spec } : spec;
  const sources = [obj.column !== undefined, obj.template !== undefined, obj.value !== undefined].filter(Boolean).length;
  if (sources !== 1) throw configError(name, 'exactly one of `column`, `template`, `value` must be given');

  const declared = obj.type ?? 'string';
  const type: FieldType = declared === 'string' && options.defaultType !== undefined ? options.defaultType : declared;
  const n: Normalization = {
    type,
    trim: obj.trim ?? true,
    lowercase: obj.lowercase ?? false,
    uppercase: obj.uppercase ?? false,
    emptyList: obj.empty === undefined ? undefined : new Set(obj.empty.map((e) => e.trim().toLowerCase())),
  };
  const keep = obj.type === undefined && options.keepTypes === true;
  const coerce = keep ? (value: unknown) => value : compileCoerce({
    name,
    type,
    format: obj.format,
    zone: obj.zone,
    region: obj.region,
    trueValues: obj.trueValues,
    falseValues: obj.falseValues,
    decimal: obj.decimal,
    thousands: obj.thousands,
  });
  // a constant or a default is normalised and coerced as a row's value is (with the field's own `region`)
  const evaluate = new Function('coerce', 'emptyList', `return function evaluate(raw, onEmpty) {\n${normalizeSource(n, 'coerce')}\n};`)(
    coerce,
    n.emptyList,
  ) as (raw: unknown, onEmpty: unknown) => unknown;
  const onEmpty = emptyResult(obj, name, (obj.required ?? false) || (options.required ?? false), evaluate);

  if (obj.value !== undefined) {
    const result = evaluate(obj.value, onEmpty);
    if (result instanceof FieldFail && result.code !== 'MISSING_REQUIRED') {
      throw configError(name, `value ${showValue(obj.value)}: ${result.message}`);
    }
    if (result instanceof FieldFail) Object.freeze(result);
    return () => result;
  }
  return rowField(obj, n, name, coerce, onEmpty, options.itemColumn);
}

/** What an empty field gives: undefined (no value), the coerced default, or a MISSING_REQUIRED failure. */
function emptyResult(
  obj: Exclude<FieldInput, string>,
  name: string,
  required: boolean,
  evaluate: (raw: unknown, onEmpty: unknown) => unknown,
): unknown {
  const fallback = evaluate(obj.default, undefined);
  if (fallback instanceof FieldFail) throw configError(name, `default ${showValue(obj.default)}: ${fallback.message}`);
  if (fallback !== undefined) return fallback;
  return required ? Object.freeze(fail('MISSING_REQUIRED', `${name}: a value is required but the field is empty`)) : undefined;
}

/** The per-row function of a `column` or `template` field: read, normalise and coerce, generated as one function. */
function rowField(
  obj: Exclude<FieldInput, string>,
  n: Normalization,
  name: string,
  coerce: Coerce,
  onEmpty: unknown,
  itemColumn: string | undefined,
): CompiledField {
  const coerceFor =
    n.type === 'phone' && obj.regionColumn !== undefined ? phoneByRowRegion(name, obj.regionColumn, coerce, itemColumn) : undefined;
  const env: unknown[] = [];
  const read =
    obj.column !== undefined
      ? columnExpression(obj.column, itemColumn, env)
      : (env.push(compileTemplateReader(obj.template as string, itemColumn)), `e${env.length - 1}(row, item)`);
  const normalize =
    coerceFor === undefined ? normalizeSource(n, 'coerce') : normalizeSource(n, 'c', 'const c = coerceFor(row, item);');
  const source = `${envBindings(env)}
return function field(row, item) {
const raw = ${read};
${normalize}
};`;
  return new Function('env', 'onEmpty', 'coerce', 'coerceFor', 'emptyList', source)(env, onEmpty, coerce, coerceFor, n.emptyList) as CompiledField;
}

/**
 * Phone coercion whose region comes from a column of the row (e.g. a billing country), falling back to the field's
 * `region` (already compiled into `fallback`) when that column is empty or not a two-letter code.
 */
function phoneByRowRegion(
  name: string,
  column: string,
  fallback: Coerce,
  itemColumn: string | undefined,
): (row: Row, item?: number) => Coerce {
  const readRegion = compileColumn(column, itemColumn);
  const byRegion = new Map<string, Coerce>();
  return (row, item) => {
    const region = toText(readRegion(row, item)).trim().toUpperCase();
    if (!/^[A-Z]{2}$/.test(region)) return fallback;
    let c = byRegion.get(region);
    if (c === undefined) {
      c = coercePhone(name, region);
      byRegion.set(region, c);
    }
    return c;
  };
}
