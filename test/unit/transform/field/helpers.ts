import type { FieldInput } from '../../../../src/config/field.js';
import { FieldFail } from '../../../../src/transform/field/coercion.js';
import { compileField, type CompileFieldOptions, type Row } from '../../../../src/transform/field/compile.js';

/** A field's answer as a result: `{ ok: true, value }` (value undefined: no value), or its FieldFail. */
export type FieldResult = { ok: true; value: unknown } | FieldFail;

/** {@link compileField}, each answer given as a {@link FieldResult} (what the assertions compare). */
export function compileResult(spec: FieldInput, name: string, options?: CompileFieldOptions): (row: Row) => FieldResult {
  const field = compileField(spec, name, options);
  return (row) => {
    const v = field(row);
    return v instanceof FieldFail ? v : { ok: true, value: v };
  };
}

export function run(spec: FieldInput, row: Record<string, unknown>, name = 'f'): FieldResult {
  return compileResult(spec, name)(row);
}

export const value = (spec: FieldInput, v: unknown): unknown => {
  const r = run(spec, { c: v });
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r.value;
};

export const code = (spec: FieldInput, v: unknown): string => {
  const r = run(spec, { c: v });
  return r.ok ? 'OK' : r.code;
};
