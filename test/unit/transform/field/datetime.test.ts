import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { EtlError } from '../../../../src/core/errors.js';
import { code, compileResult, run, value } from './helpers.js';

describe('date', () => {
  it('iso date-only stays that calendar date whatever the zone', () => {
    expect(value({ column: 'c', type: 'date', format: 'iso' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'Pacific/Kiritimati' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'Pacific/Pago_Pago' }, '2024-03-05')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'MM/dd/yyyy', zone: 'America/Los_Angeles' }, '03/05/2024')).toBe(
      '2024-03-05',
    );
  });
  it('iso with a time and offset is the date where the offset says, or in zone when set', () => {
    expect(value({ column: 'c', type: 'date', format: 'iso' }, '2024-03-05T23:30:00-05:00')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'iso', zone: 'UTC' }, '2024-03-05T23:30:00-05:00')).toBe('2024-03-06');
  });
  it('the declared format decides; ambiguous values are not guessed', () => {
    expect(value({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '01/02/2024')).toBe('2024-02-01');
    expect(value({ column: 'c', type: 'date', format: 'MM/dd/yyyy' }, '01/02/2024')).toBe('2024-01-02');
    expect(code({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '1/2/2024')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, '2024-02-01')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'MM/dd/yyyy' }, '13/02/2024')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'iso' }, '2024-02-30')).toBe('INVALID_DATE');
    expect(code({ column: 'c', type: 'date', format: 'iso' }, '03/05/2024')).toBe('INVALID_DATE');
  });
  it('the INVALID_DATE message names the expected format', () => {
    const r = run({ column: 'c', type: 'date', format: 'dd/MM/yyyy' }, { c: 'x' });
    expect(r.ok ? '' : r.message).toContain('dd/MM/yyyy');
  });
  it('unix timestamps and Date objects', () => {
    expect(value({ column: 'c', type: 'date', format: 'unix' }, '1709680930')).toBe('2024-03-05');
    expect(value({ column: 'c', type: 'date', format: 'unix', zone: 'Asia/Tokyo' }, 1709680930)).toBe('2024-03-06');
    expect(value({ column: 'c', type: 'date', format: 'iso' }, new Date(2024, 2, 5))).toBe('2024-03-05'); // local midnight
    expect(value({ column: 'c', type: 'date', format: 'iso' }, new Date('2024-03-05T23:30:00Z'))).toBe('2024-03-05');
  });
});

describe('datetime', () => {
  const iso = (v: unknown, zone?: string) => value({ column: 'c', type: 'datetime', format: 'iso', zone }, v);
  it('iso with offsets → UTC Z, seconds precision', () => {
    expect(iso('2024-03-05T14:22:10-05:00')).toBe('2024-03-05T19:22:10Z');
    expect(iso('2024-03-05T19:22:10.987Z')).toBe('2024-03-05T19:22:10Z');
    expect(iso('2024-03-05 19:22:10+0100')).toBe('2024-03-05T18:22:10Z');
    expect(iso('2024-03-05T19:22:10.123456+00:00')).toBe('2024-03-05T19:22:10Z');
  });
  it('iso without offset is read in zone, across DST', () => {
    expect(iso('2024-01-15T12:00:00', 'America/New_York')).toBe('2024-01-15T17:00:00Z'); // EST
    expect(iso('2024-07-15T12:00:00', 'America/New_York')).toBe('2024-07-15T16:00:00Z'); // EDT
    expect(iso('2024-03-05', 'Europe/Paris')).toBe('2024-03-04T23:00:00Z');
  });
  it('iso shapes agree with Luxon; impossible dates are rejected', () => {
    const samples = [
      '2024-02-29T12:00:00Z', '2024-12-31T23:59:59.999+14:00', '2024-01-01T00:00:00-12:00', '2024-06-30T10:20+0530',
      '2024-06-30T10:20:30,5-03', '2000-02-29T00:00:00Z', '2024-03-05t19:22:10z', '2024-W10-2T10:00:00Z', '20240305T192210Z',
    ];
    for (const text of samples) {
      const expected = DateTime.fromISO(text, { setZone: true }).toUTC().toISO({ suppressMilliseconds: true }) as string;
      expect(iso(text)).toBe(expected.replace(/\.\d{3}Z$/, 'Z'));
    }
    for (const bad of ['2023-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-04-31T00:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01T10:60:00Z', '2024-01-01T10:00:00+']) {
      expect(code({ column: 'c', type: 'datetime', format: 'iso', zone: 'UTC' }, bad)).toBe('INVALID_DATE');
    }
  });
  it('iso without offset and without zone is rejected, not guessed', () => {
    expect(code({ column: 'c', type: 'datetime', format: 'iso' }, '2024-03-05T12:00:00')).toBe('INVALID_DATE');
  });
  it('custom format with zone incl. DST transitions', () => {
    const spec = { column: 'c', type: 'datetime' as const, format: 'MM/dd/yyyy HH:mm', zone: 'America/New_York' };
    expect(value(spec, '03/09/2024 12:00')).toBe('2024-03-09T17:00:00Z');
    expect(value(spec, '03/10/2024 12:00')).toBe('2024-03-10T16:00:00Z');
    expect(value(spec, '11/03/2024 01:30')).toBe('2024-11-03T05:30:00Z'); // repeated hour: earlier (EDT) offset
    expect(value(spec, '11/03/2024 01:03')).toBe('2024-11-03T05:03:00Z');
    expect(value(spec, '11/03/2024 02:00')).toBe('2024-11-03T07:00:00Z');
    expect(code(spec, '03/10/2024 02:30')).toBe('INVALID_DATE'); // does not exist (spring forward)
  });
  it('custom format with an offset token needs no zone', () => {
    const spec = { column: 'c', type: 'datetime' as const, format: 'yyyy-MM-dd HH:mm:ss ZZZ' };
    expect(value(spec, '2024-03-05 14:22:10 -0500')).toBe('2024-03-05T19:22:10Z');
  });
  it('custom format without offset and without zone is a config error', () => {
    expect(() => compileResult({ column: 'c', type: 'datetime', format: 'MM/dd/yyyy HH:mm' }, 'f')).toThrow(/zone/);
  });
  it('unknown zone is a config error', () => {
    expect(() => compileResult({ column: 'c', type: 'datetime', format: 'iso', zone: 'Mars/Olympus' }, 'f')).toThrow(EtlError);
  });
  it('ambiguity: the same text under two formats gives two instants; a non-matching value is rejected', () => {
    const dmy = { column: 'c', type: 'datetime' as const, format: 'dd/MM/yyyy HH:mm', zone: 'UTC' };
    const mdy = { column: 'c', type: 'datetime' as const, format: 'MM/dd/yyyy HH:mm', zone: 'UTC' };
    expect(value(dmy, '01/02/2024 10:00')).toBe('2024-02-01T10:00:00Z');
    expect(value(mdy, '01/02/2024 10:00')).toBe('2024-01-02T10:00:00Z');
    expect(code(mdy, '2024-01-02 10:00')).toBe('INVALID_DATE');
    expect(code(mdy, '01/02/2024')).toBe('INVALID_DATE');
    const r = run(mdy, { c: '2024-01-02' });
    expect(r.ok ? '' : r.message).toContain('MM/dd/yyyy HH:mm');
  });
  it('unix / unix_ms / Date objects', () => {
    expect(value({ column: 'c', type: 'datetime', format: 'unix' }, '1709666530')).toBe('2024-03-05T19:22:10Z');
    expect(value({ column: 'c', type: 'datetime', format: 'unix' }, 1709666530)).toBe('2024-03-05T19:22:10Z');
    expect(value({ column: 'c', type: 'datetime', format: 'unix_ms' }, '1709666530123')).toBe('2024-03-05T19:22:10Z');
    expect(code({ column: 'c', type: 'datetime', format: 'unix' }, '17096x')).toBe('INVALID_DATE');
    expect(value({ column: 'c', type: 'datetime', format: 'iso' }, new Date('2024-03-05T19:22:10Z'))).toBe('2024-03-05T19:22:10Z');
    expect(code({ column: 'c', type: 'datetime', format: 'iso' }, new Date('nope'))).toBe('INVALID_DATE');
  });
  it('zone conversion agrees with Luxon across transitions (incl. 30-minute DST and half-hour zones)', () => {
    const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'America/St_Johns', 'Asia/Kolkata', 'UTC'];
    for (const zone of zones) {
      const field = compileResult({ column: 'c', type: 'datetime', format: 'yyyy-MM-dd HH:mm', zone }, 'f');
      let checked = 0;
      let gaps = 0;
      let overlaps = 0;
      for (let wall = Date.UTC(2024, 0, 1); wall < Date.UTC(2025, 0, 1); wall += 13 * 60_000) {
        const text = new Date(wall).toISOString().slice(0, 16).replace('T', ' ');
        const luxon = DateTime.fromFormat(text, 'yyyy-MM-dd HH:mm', { zone });
        const exists = luxon.toFormat('yyyy-MM-dd HH:mm') === text;
        const r = field({ c: text });
        if (exists) {
          // same wall time in the zone, and never later than Luxon's reading (overlaps take the earlier instant)
          if (!r.ok) throw new Error(`${zone} ${text}: ${r.message}`);
          const ours = DateTime.fromISO(r.value as string, { zone });
          expect(ours.toFormat('yyyy-MM-dd HH:mm')).toBe(text);
          expect(ours.toMillis()).toBeLessThanOrEqual(luxon.toMillis());
          if (ours.toMillis() < luxon.toMillis()) overlaps++;
        } else {
          expect(r).toMatchObject({ ok: false, code: 'INVALID_DATE' });
          gaps++;
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(40_000);
      expect(gaps > 0).toBe(!['Asia/Kolkata', 'UTC'].includes(zone));
      expect(overlaps).toBeLessThan(10);
    }
  });
});
