import { describe, expect, it } from 'vitest';
import type { FieldInput } from '../../../../src/config/field.js';
import { EtlError } from '../../../../src/core/errors.js';
import { FieldFail } from '../../../../src/transform/field/coercion.js';
import { compileField } from '../../../../src/transform/field/compile.js';
import { compileResult, run, value } from './helpers.js';

describe('field reading', () => {
  it('column shorthand reads and trims; a missing column is no value', () => {
    expect(run('c', { c: '  x ' })).toEqual({ ok: true, value: 'x' });
    expect(run('c', {})).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', trim: false }, { c: ' x ' })).toEqual({ ok: true, value: ' x ' });
  });

  it('dotted columns read the flat key first, then the nested path', () => {
    expect(run('properties.tier', { 'properties.tier': 'gold' })).toEqual({ ok: true, value: 'gold' });
    expect(run('properties.tier', { properties: { tier: 'silver' } })).toEqual({ ok: true, value: 'silver' });
    expect(run('properties.tier', { properties: null })).toEqual({ ok: true, value: undefined });
  });

  it('template replaces {{Column}} with trimmed values; all referenced columns empty → empty', () => {
    const spec = { template: '{{First Name}} {{ Last }}' };
    expect(run(spec, { 'First Name': ' Ada ', Last: 'Lovelace' })).toEqual({ ok: true, value: 'Ada Lovelace' });
    expect(run(spec, { 'First Name': 'Ada', Last: '' })).toEqual({ ok: true, value: 'Ada' });
    expect(run(spec, { 'First Name': '', Last: ' ' })).toEqual({ ok: true, value: undefined });
    expect(run({ template: 'order-{{Id}}', required: true }, { Id: '' })).toMatchObject({ ok: false, code: 'MISSING_REQUIRED' });
    expect(run({ template: 'order-{{Id}}' }, { Id: 42 })).toEqual({ ok: true, value: 'order-42' });
    expect(run({ template: 'constant' }, {})).toEqual({ ok: true, value: 'constant' });
  });

  it('any column name and template text is read literally (quotes, backslashes, newlines, ${…}, numeric names)', () => {
    const names = ['a"b', "it's", 'back\\slash', 'line\nbreak', '${x}', '`tick`', '*/', '\u2028', '0', '12', 'constructor', ' spaced '];
    for (const column of names) {
      const row = { [column]: ` v-${column}-end ` };
      expect(run(column, row), column).toEqual({ ok: true, value: `v-${column}-end` });
      expect(run({ column, lowercase: true }, row), column).toEqual({ ok: true, value: `v-${column}-end`.toLowerCase() });
      if (/[\n\u2028}]|^ | $/.test(column)) continue; // a placeholder is one line, its name trimmed, without }
      expect(run({ template: `<${column}>{{${column}}}\\{{${column}}}"'\`\${x}` }, row), column).toEqual({
        ok: true,
        value: `<${column}>v-${column}-end\\v-${column}-end"'\`\${x}`,
      });
    }
    expect(run('missing', { other: 'x' })).toEqual({ ok: true, value: undefined });
    expect(run({ template: '{{a}}-{{b}}' }, { a: 1, b: new Date('2024-01-02T03:04:05Z') })).toEqual({
      ok: true,
      value: '1-2024-01-02T03:04:05.000Z',
    });
  });

  it('constant value', () => {
    expect(run({ value: 'web' }, {})).toEqual({ ok: true, value: 'web' });
    expect(run({ value: 3, type: 'number' }, {})).toEqual({ ok: true, value: 3 });
  });

  it('lowercase / uppercase', () => {
    expect(value({ column: 'c', lowercase: true }, 'AbC')).toBe('abc');
    expect(value({ column: 'c', uppercase: true }, 'usd')).toBe('USD');
  });

  it('empty: "" by default, the empty list (case-insensitive), default, required', () => {
    expect(run('c', { c: '' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A', 'null'] }, { c: 'NULL' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A'] }, { c: 'n/a ' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', empty: ['N/A'] }, { c: '' })).toEqual({ ok: true, value: undefined });
    expect(run({ column: 'c', default: 'US' }, { c: '  ' })).toEqual({ ok: true, value: 'US' });
    expect(run({ column: 'c', type: 'number', default: '0' }, { c: null })).toEqual({ ok: true, value: 0 });
    expect(run({ column: 'c', required: true }, { c: '' })).toMatchObject({ ok: false, code: 'MISSING_REQUIRED' });
    expect(run({ column: 'c', required: true, default: 'x' }, {})).toEqual({ ok: true, value: 'x' });
  });

  it('a default that fails its own type is a config error at compile time', () => {
    expect(() => compileResult({ column: 'c', type: 'number', default: 'abc' }, 'f')).toThrow(EtlError);
  });

  it('needs exactly one of column/template/value', () => {
    expect(() => compileResult({ column: 'a', value: 'b' }, 'f')).toThrow(/exactly one/);
  });
});

describe('compileField: one compiled form, one normalisation', () => {
  it('gives the value itself, undefined for no value, or a FieldFail; a constant and a default are normalised and coerced as a row value is', () => {
    const specs: Exclude<FieldInput, string>[] = [
      { column: 'c' },
      { column: 'c', type: 'number' },
      { column: 'c', type: 'integer', default: '0' },
      { column: 'c', type: 'email', required: true },
      { column: 'c', type: 'datetime', format: 'yyyy-MM-dd HH:mm:ss ZZZ' },
      { column: 'c', uppercase: true, empty: ['n/a'] },
      { column: 'c', trim: false, lowercase: true },
      { column: 'c', type: 'json' },
      { column: 'c', type: 'boolean', required: true },
    ];
    const inputs = ['', ' 12 ', 'abc', '1.5', 'A@Example.com', '2024-03-05 14:22:10 -0500', '{"a":1}', 'null', 'N/A ', ' Yes', undefined, null, 3, true];
    for (const spec of specs) {
      const { default: _default, column: _column, ...rest } = spec;
      const field = compileField(spec, 'f');
      const plain = compileField({ ...rest, column: 'c' }, 'f');
      for (const input of inputs) {
        const label = `${JSON.stringify(spec)} ${String(input)}`;
        const got = field({ c: input });
        if (got instanceof FieldFail) expect(got.ok, label).toBe(false);
        else expect(typeof got === 'object' && got !== null && 'ok' in got, label).toBe(false);
        const refused = got instanceof FieldFail && got.code !== 'MISSING_REQUIRED';
        // the same input as a constant: the same answer, or a config error where the row value fails
        if (refused) expect(() => compileField({ ...rest, value: input as never }, 'f'), label).toThrow(EtlError);
        else if (input !== undefined) expect(compileField({ ...spec, column: undefined, value: input as never }, 'f')({}), label).toEqual(got);
        // the same input as the default of an empty column: what the column gives for it (without a default)
        const fromRow = plain({ c: input });
        if (fromRow instanceof FieldFail && fromRow.code !== 'MISSING_REQUIRED') {
          expect(() => compileField({ ...rest, column: 'c', default: input as never }, 'f'), label).toThrow(EtlError);
        } else expect(compileField({ ...rest, column: 'c', default: input as never }, 'f')({ c: '' }), label).toEqual(fromRow);
      }
    }
  });

  it('itemColumn reads the item argument in columns, templates and region columns; a path through it reads only the flat key', () => {
    const options = { itemColumn: '_item' };
    expect(compileField('_item', 'f', options)({ _item: 'column' }, 3)).toBe('3');
    expect(compileField({ template: 'o-{{ _item }}-{{_item.x}}' }, 'f', options)({ _item: 'column', '_item.x': 'flat' }, 2)).toBe(
      'o-2-flat',
    );
    expect(compileField({ template: '{{_item.x}}' }, 'f', options)({ _item: { x: 'nested' } }, 2)).toBe(undefined);
    // without the option `_item` is an ordinary column
    expect(compileField('_item', 'f')({ _item: 'column' }, 3)).toBe('column');
    expect(compileField({ template: '{{_item.x}}' }, 'f')({ _item: { x: 'nested' } }, 2)).toBe('nested');
    // a region column named `_item` reads the position (never a region), so the field's `region` applies
    const phone = compileField({ column: 'p', type: 'phone', region: 'US', regionColumn: '_item' }, 'f', options);
    expect(phone({ p: '(213) 555-0100', _item: 'GB' }, 1)).toBe('+12135550100');
  });
});
