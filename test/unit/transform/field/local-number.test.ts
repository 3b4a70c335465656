import { describe, expect, it } from 'vitest';
import { code, value } from './helpers.js';

describe('number / integer with decimal and thousands', () => {
  it.each([
    [{ decimal: ',' }, '1.234,56', 1234.56],
    [{ decimal: ',' }, '1 234,5', 1234.5],
    [{ decimal: ',' }, '1\u00a0234\u00a0567,25', 1234567.25],
    [{ decimal: ',' }, "1'234,5", 1234.5],
    [{ decimal: ',' }, '-99,9', -99.9],
    [{ decimal: ',' }, ',5', 0.5],
    [{ decimal: ',' }, '12.000', 12000],
    [{ decimal: ',' }, '1,234', 1.234],
    [{ decimal: '.' }, '1,234.50', 1234.5],
    [{ decimal: ',', thousands: '.' }, '1.234.567,8', 1234567.8],
    [{ thousands: ',' }, '1,234', 1234],
  ])('%j: %j → %j', (options, input, expected) => {
    expect(value({ column: 'c', type: 'number', ...(options as object) }, input)).toBe(expected);
  });

  it.each([
    [{ decimal: ',' }, '1.23,4'],
    [{ decimal: ',' }, '1.234 567,8'],
    [{ decimal: ',' }, '1,2,3'],
    [{ decimal: ',' }, '1234.5'],
    [{ decimal: ',', thousands: 'none' }, '1.234,5'],
    [{ decimal: ',', thousands: '.' }, '1 234,5'],
    [{ decimal: ',' }, '12 €'],
    [{ decimal: ',' }, ''],
  ])('%j rejects %j', (options, input) => {
    if (input === '') expect(value({ column: 'c', type: 'number', ...(options as object) }, input)).toBeUndefined();
    else expect(code({ column: 'c', type: 'number', ...(options as object) }, input)).toBe('INVALID_NUMBER');
  });

  it('integer: thousands separators yes, a decimal part no', () => {
    expect(value({ column: 'c', type: 'integer', decimal: ',' }, '1.234')).toBe(1234);
    expect(code({ column: 'c', type: 'integer', decimal: ',' }, '1,5')).toBe('INVALID_INTEGER');
  });

  it('without decimal or thousands, numbers are read as before (a comma is never guessed)', () => {
    expect(code({ column: 'c', type: 'number' }, '1,234')).toBe('INVALID_NUMBER');
  });
});
