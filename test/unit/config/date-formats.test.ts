import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { foreignDateFormat } from '../../../src/config/date-formats.js';

describe('foreignDateFormat', () => {
  it.each([
    ['YYYY-MM-DD', 'Moment.js', 'yyyy-MM-dd'],
    ['DD/MM/YYYY HH:mm', 'Moment.js', 'dd/MM/yyyy HH:mm'],
    ['YYYY-MM-DD[T]HH:mm:ssZ', 'Moment.js', "yyyy-MM-dd'T'HH:mm:ssZZ"],
    ['D MMM YYYY h:mm A', 'Moment.js', 'd MMM yyyy h:mm a'],
    ['%Y-%m-%d', 'strftime', 'yyyy-MM-dd'],
    ['%d/%m/%Y %H:%M:%S', 'strftime', 'dd/MM/yyyy HH:mm:ss'],
    ['%Y-%m-%dT%H:%M:%S%z', 'strftime', "yyyy-MM-dd'T'HH:mm:ssZZZ"],
    ['%-m/%-d/%Y', 'strftime', 'M/d/yyyy'],
    ['%F %T', 'strftime', 'yyyy-MM-dd HH:mm:ss'],
  ])('%s is %s, Luxon %s', (format, kind, luxon) => {
    expect(foreignDateFormat(format)).toEqual({ kind, luxon });
  });

  it('a strftime directive without a Luxon equivalent is named without a suggestion', () => {
    expect(foreignDateFormat('%Y week %U')).toEqual({ kind: 'strftime', luxon: undefined });
  });

  it.each(['iso', 'unix', 'unix_ms', 'yyyy-MM-dd', 'MM/dd/yyyy HH:mm', "yyyy-MM-dd'T'HH:mm:ssZZ", 'dd.MM.yyyy', 'DD', "d 'de' MMMM"])('%s is a Luxon format', (format) => {
    expect(foreignDateFormat(format)).toBeUndefined();
  });

  it('the suggested formats parse what the original would', () => {
    expect(DateTime.fromFormat('2024-03-05', foreignDateFormat('YYYY-MM-DD')!.luxon!).toISODate()).toBe('2024-03-05');
    expect(DateTime.fromFormat('05/03/2024 14:07', foreignDateFormat('%d/%m/%Y %H:%M')!.luxon!).toISO({ includeOffset: false })).toBe('2024-03-05T14:07:00.000');
    expect(DateTime.fromFormat('3/5/2024', foreignDateFormat('%-m/%-d/%Y')!.luxon!).toISODate()).toBe('2024-03-05');
  });
});
