import { z } from 'zod';

/*
 * `where:` — a row filter any transform can carry: a list of conditions, every one of which a row must meet to be
 * mapped. A row that fails one is skipped and counted under that condition (the report's `skippedBy`, the summary),
 * never dropped silently. Declarative on purpose: a condition compares one column with constants, so no expression
 * is evaluated and nothing in a pipeline file runs as code.
 */

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

/** The comparison operators of a condition; exactly one per condition (rule `whereConditionHasOneOperator`). */
export const WHERE_OPERATORS = ['equals', 'not_equals', 'in', 'not_in', 'contains', 'not_contains', 'empty', 'gt', 'gte', 'lt', 'lte'] as const;
export type WhereOperator = (typeof WHERE_OPERATORS)[number];

export const WhereCondition = z
  .strictObject({
    column: z.string().min(1).describe('The column (CSV header, NDJSON / PostgreSQL field; `a.b` reads a nested value) the condition reads; its value is trimmed.'),
    equals: Scalar.optional().describe('The value equals this (compared as text).'),
    not_equals: Scalar.optional().describe('The value does not equal this (compared as text; an empty value does not equal a non-empty constant).'),
    in: z.array(Scalar).min(1).optional().describe('The value is one of these (compared as text).'),
    not_in: z.array(Scalar).min(1).optional().describe('The value is none of these (compared as text).'),
    contains: z.string().min(1).optional().describe('The value contains this text.'),
    not_contains: z.string().min(1).optional().describe('The value does not contain this text.'),
    empty: z.boolean().optional().describe('`true`: the value is empty (missing, or only white space); `false`: it is not.'),
    gt: z.number().optional().describe('The value is a number greater than this (a value that is not a number rejects the row: INVALID_NUMBER).'),
    gte: z.number().optional().describe('The value is a number at least this.'),
    lt: z.number().optional().describe('The value is a number less than this.'),
    lte: z.number().optional().describe('The value is a number at most this.'),
    ignoreCase: z.boolean().default(false).describe('Compare text case-insensitively (equals, in, contains and their negations). @default false'),
  })
  .describe('One condition: a column and exactly one operator.');

export const WhereItem = z.union([
  WhereCondition,
  z
    .strictObject({ any: z.array(WhereCondition).min(2).describe('Conditions of which at least one must hold.') })
    .describe('At least one of these conditions holds.'),
]);

export const Where = z
  .array(WhereItem)
  .min(1)
  .describe(
    'Row filter: only rows meeting every condition are mapped; the others are skipped and counted per condition (report `skippedBy`, summary). E.g. `[{column: Financial Status, not_in: [refunded, voided]}, {column: Tags, not_contains: test}]`.',
  );

export type WhereConfig = z.output<typeof Where>;
export type WhereConditionConfig = z.output<typeof WhereCondition>;
