import { z } from 'zod';

/** Value types a field can be coerced into. */
export const FIELD_TYPES = ['string', 'number', 'integer', 'boolean', 'email', 'phone', 'date', 'datetime', 'json'] as const;

/**
 * How one output value is computed from a row. A plain string is shorthand for `{ column: <string> }`.
 * Exactly one of `column`, `template`, `value` must be given.
 */
export const FieldObject = z
  .strictObject({
    column: z.string().min(1).optional().describe('Source column (or NDJSON / PostgreSQL field) to read.'),
    template: z
      .string()
      .optional()
      .describe('String template over the row: `{{Column Name}}` is replaced by that column\'s (trimmed) value.'),
    value: z
      .union([z.string(), z.number(), z.boolean(), z.null()])
      .optional()
      .describe('A constant value.'),
    type: z.enum(FIELD_TYPES).default('string').describe('Coerce the value into this type. @default string'),
    trim: z.boolean().default(true).describe('Trim surrounding white space before coercion. @default true'),
    lowercase: z.boolean().default(false).describe('Lower-case the string. @default false'),
    uppercase: z.boolean().default(false).describe('Upper-case the string. @default false'),
    required: z
      .boolean()
      .default(false)
      .describe('Reject the row (MISSING_REQUIRED) when the value is empty. @default false'),
    clear: z
      .boolean()
      .optional()
      .describe(
        'Profile transform only: when the value is empty, clear the field in Klaviyo (PATCH /api/profiles/{id}: null for an attribute, `unset` for a property) instead of leaving Klaviyo\'s value. Costs one PATCH (L tier) per profile that holds a value to clear, and one GET /api/profiles per 100 such rows. @default false',
      ),
    default: z
      .union([z.string(), z.number(), z.boolean(), z.null()])
      .optional()
      .describe('Value to use when the column is empty.'),
    empty: z
      .array(z.string())
      .optional()
      .describe('Strings treated as empty (no value). @default [""]'),
    format: z
      .string()
      .optional()
      .describe(
        'For date/datetime: the input format. `iso` (ISO 8601), `unix` (seconds), `unix_ms`, or a Luxon token format such as `MM/dd/yyyy HH:mm`. Required for date/datetime: ambiguous values are never guessed.',
      ),
    zone: z
      .string()
      .optional()
      .describe(
        'For datetime: IANA time zone (e.g. `America/New_York`, `UTC`) used when the value has no offset. Required unless the format carries an offset.',
      ),
    region: z
      .string()
      .length(2)
      .optional()
      .describe('For phone: ISO 3166 region used for numbers without a country code (e.g. `US`).'),
    regionColumn: z
      .string()
      .min(1)
      .optional()
      .describe('For phone: column holding the row\'s ISO 3166 country code (e.g. a billing country); used instead of `region` when it holds a two-letter code.'),
    decimal: z
      .enum(['.', ','])
      .optional()
      .describe(
        'For number/integer: the decimal separator of the values, `,` for `1.234,56` (European exports). With `decimal` (or `thousands`), thousands separators grouping by three are accepted: `.`, `,`, space or `\'` (not the decimal one). @default "." with no thousands separator',
      ),
    thousands: z
      .enum([',', '.', ' ', "'", '_', 'none'])
      .optional()
      .describe('For number/integer: the one thousands separator to accept (`none`: none). @default with `decimal`: any of `.` `,` space `\'` other than the decimal separator'),
    trueValues: z.array(z.string()).optional().describe('For boolean: strings meaning true. @default ["true","yes","y","1"]'),
    falseValues: z.array(z.string()).optional().describe('For boolean: strings meaning false. @default ["false","no","n","0"]'),
  })
  .describe('A field mapping.');

export const Field = z
  .union([z.string().min(1), FieldObject])
  .describe('A field mapping: a column name, or an object with column/template/value and a type.');

export type FieldInput = z.input<typeof Field>;

/** A map of output property name to field. */
export const FieldMap = z.record(z.string(), Field);
