import { WHERE_OPERATORS, type WhereConditionConfig, type WhereConfig, type WhereOperator } from '../config/where.js';
import type { SourceRecord, TransformOutput } from '../core/record.js';
import { failuresReject, runField, type FieldFailure } from './common.js';
import { compileField, type Row } from './field/compile.js';
import type { Transformer } from './types.js';

/*
 * The `where:` row filter of every transform (schema in src/config/where.ts): compiled once per pipeline into a
 * function of the row, and put in front of the transform. A row meeting every condition goes on to the transform; a
 * row failing one is skipped with that condition as its reason (counted per reason: the report's `skippedBy`); a row
 * whose value cannot be compared (a number condition over text) is rejected, never skipped: that is a data problem.
 */

/** One compiled condition: whether the row meets it (or the failure that rejects the row). */
type Test = (row: Row, failures: FieldFailure[]) => boolean;

/** The outcome of the filter for one row: pass it on, skip it (with the reason), or reject it. */
export type WhereResult = { pass: true } | { pass: false; reason: string } | { pass: false; failures: FieldFailure[] };

function operatorOf(c: WhereConditionConfig): WhereOperator {
  // the rule whereConditionHasOneOperator makes sure there is exactly one
  return WHERE_OPERATORS.find((op) => c[op] !== undefined) ?? 'empty';
}

function describe(c: WhereConditionConfig): string {
  const op = operatorOf(c);
  const value = c[op];
  const shown = Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : JSON.stringify(value);
  return `${c.column} ${op} ${shown}${c.ignoreCase ? ' (ignoring case)' : ''}`;
}

function compileCondition(c: WhereConditionConfig, name: string): Test {
  const op = operatorOf(c);
  if (op === 'gt' || op === 'gte' || op === 'lt' || op === 'lte') {
    const number = compileField({ column: c.column, type: 'number' }, name);
    const bound = c[op]!;
    const compare = { gt: (n: number) => n > bound, gte: (n: number) => n >= bound, lt: (n: number) => n < bound, lte: (n: number) => n <= bound }[op];
    return (row, failures) => {
      const n = runField(number, name, row, failures);
      return typeof n === 'number' && compare(n);
    };
  }
  const text = compileField({ column: c.column, type: 'string' }, name);
  const norm = (v: unknown): string => (c.ignoreCase ? String(v).toLowerCase() : String(v));
  const read = (row: Row, failures: FieldFailure[]): string | undefined => {
    const v = runField(text, name, row, failures);
    return v === undefined || v === '' ? undefined : norm(v);
  };
  switch (op) {
    case 'empty':
      return (row, failures) => (read(row, failures) === undefined) === c.empty;
    case 'equals':
    case 'not_equals': {
      const want = norm(c[op]!);
      const equal = (row: Row, failures: FieldFailure[]) => (read(row, failures) ?? '') === want;
      return op === 'equals' ? equal : (row, failures) => !equal(row, failures);
    }
    case 'in':
    case 'not_in': {
      const set = new Set(c[op]!.map(norm));
      const member = (row: Row, failures: FieldFailure[]) => set.has(read(row, failures) ?? '');
      return op === 'in' ? member : (row, failures) => !member(row, failures);
    }
    default: {
      const part = norm(c[op as 'contains' | 'not_contains']!);
      const contains = (row: Row, failures: FieldFailure[]) => (read(row, failures) ?? '').includes(part);
      return op === 'contains' ? contains : (row, failures) => !contains(row, failures);
    }
  }
}

/** Compile a `where:` list once: row → pass, skip (with the reason: the first condition it fails) or reject. */
export function compileWhere(where: WhereConfig, name = 'where'): (row: Row) => WhereResult {
  const tests = where.map((item, i) => {
    const at = `${name}[${i}]`;
    if ('any' in item) {
      const any = item.any.map((c, j) => compileCondition(c, `${at}.any[${j}]`));
      return { test: ((row, failures) => any.some((t) => t(row, failures))) as Test, reason: `${at}: none of (${item.any.map(describe).join('; ')})` };
    }
    return { test: compileCondition(item, at), reason: `${at}: ${describe(item)}` };
  });
  return (row) => {
    for (const { test, reason } of tests) {
      const failures: FieldFailure[] = [];
      const ok = test(row, failures);
      if (failures.length > 0) return { pass: false, failures };
      if (!ok) return { pass: false, reason };
    }
    return { pass: true };
  };
}

/**
 * Put the `where:` filter of a transform config in front of its transformer (the transformer itself when there is
 * none). A skipped row never reaches the transform, so a group (an order's line items) is built from the rows kept.
 */
export function withWhere(transformer: Transformer, where: WhereConfig | undefined): Transformer {
  if (where === undefined) return transformer;
  const filter = compileWhere(where);
  return {
    push(record: SourceRecord): TransformOutput {
      if (record.error !== undefined) return transformer.push(record);
      const result = filter(record.row);
      if (result.pass) return transformer.push(record);
      if ('failures' in result) return { items: [], rejects: [failuresReject(record, result.failures)] };
      return { items: [], rejects: [], skipped: 1, skipReason: result.reason };
    },
    flush: () => transformer.flush(),
    held: () => transformer.held(),
  };
}

/** The `where:` of a transform config, whatever the transform (every transform may carry one). */
export function whereOf(config: unknown): WhereConfig | undefined {
  const where = (config as { where?: WhereConfig } | null)?.where;
  return Array.isArray(where) ? where : undefined;
}
