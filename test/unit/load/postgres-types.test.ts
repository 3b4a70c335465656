import { describe, expect, it } from 'vitest';
import { copyField, inferColumnType, kindOfType, valueText } from '../../../src/load/postgres-types.js';

describe('postgres column types', () => {
  it('chooses a type from the values of a column (nulls ignored; mixed or none → text)', () => {
    expect(inferColumnType([1, 2.5, null])).toBe('numeric');
    expect(inferColumnType([true, false, undefined])).toBe('boolean');
    expect(inferColumnType(['2026-03-01T09:00:00Z', '2026-03-01T09:00:00.123456+02:00', '2026-03-01 09:00+0100'])).toBe('timestamptz');
    expect(inferColumnType([{ a: 1 }, ['x']])).toBe('jsonb');
    expect(inferColumnType(['2026-03-01'])).toBe('text'); // a date without a time is not a date-time
    expect(inferColumnType(['2026-03-01T09:00:00'])).toBe('text'); // no offset: not an instant
    expect(inferColumnType([1, '1'])).toBe('text');
    expect(inferColumnType([null, undefined])).toBe('text');
    expect(inferColumnType([])).toBe('text');
  });

  it('reads the kind of value a column takes from its SQL type', () => {
    expect(['bigint', 'integer', 'smallint'].map(kindOfType)).toEqual(['integer', 'integer', 'integer']);
    expect(['numeric', 'numeric(12,2)', 'double precision', 'real'].map(kindOfType)).toEqual(['number', 'number', 'number', 'number']);
    expect(['timestamp with time zone', 'timestamp without time zone', 'date'].map(kindOfType)).toEqual(['datetime', 'datetime', 'datetime']);
    expect(['jsonb', 'json', 'boolean', 'text', 'character varying(20)', 'uuid'].map(kindOfType)).toEqual(['json', 'json', 'boolean', 'text', 'text', 'text']);
  });

  it('sends a value as text for its column, or refuses it (undefined)', () => {
    expect(valueText(null, 'number')).toBeNull();
    expect(valueText(12.5, 'number')).toBe('12.5');
    expect(valueText(' 7 ', 'integer')).toBe('7');
    expect(valueText(1.5, 'integer')).toBeUndefined();
    expect(valueText('abc', 'number')).toBeUndefined();
    expect(valueText(true, 'boolean')).toBe('true');
    expect(valueText('yes', 'boolean')).toBeUndefined();
    expect(valueText('2026-03-01T09:00:00Z', 'datetime')).toBe('2026-03-01T09:00:00Z');
    expect(valueText('soon', 'datetime')).toBeUndefined();
    expect(valueText({ a: [1] }, 'json')).toBe('{"a":[1]}');
    expect(valueText('plain', 'json')).toBe('"plain"');
    expect(valueText({ a: 1 }, 'text')).toBe('{"a":1}');
    expect(valueText(3, 'text')).toBe('3');
  });

  it('writes COPY text fields: \\N for NULL, backslash and control characters escaped', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField('\\N')).toBe('\\\\N');
  });
});
