import { describe, expect, it } from 'vitest';
import { Where } from '../../../src/config/where.js';
import { compileWhere } from '../../../src/transform/where.js';

const filter = (where: unknown) => compileWhere(Where.parse(where));

describe('where: conditions', () => {
  it.each([
    [{ column: 'S', equals: 'paid' }, { S: ' paid ' }, true],
    [{ column: 'S', equals: 'paid' }, { S: 'Paid' }, false],
    [{ column: 'S', equals: 'paid', ignoreCase: true }, { S: 'PAID' }, true],
    [{ column: 'S', not_equals: 'paid' }, { S: '' }, true],
    [{ column: 'S', in: ['a', 'b'] }, { S: 'b' }, true],
    [{ column: 'S', not_in: ['a', 'b'] }, {}, true],
    [{ column: 'S', contains: 'test' }, { S: 'vip, test' }, true],
    [{ column: 'S', not_contains: 'test' }, { S: 'vip' }, true],
    [{ column: 'S', empty: true }, { S: '  ' }, true],
    [{ column: 'S', empty: false }, { S: 'x' }, true],
    [{ column: 'N', gt: 0 }, { N: '0.5' }, true],
    [{ column: 'N', gte: 1 }, { N: 1 }, true],
    [{ column: 'N', lt: 1 }, { N: '' }, false],
    [{ column: 'N', equals: 3 }, { N: 3 }, true],
    [{ column: 'a.b', equals: 'x' }, { a: { b: 'x' } }, true],
  ])('%j on %j → %s', (condition, row, pass) => {
    const result = filter([condition])(row);
    expect(result.pass).toBe(pass);
  });

  it('names the first condition a row fails as its reason; any: holds when one does', () => {
    const f = filter([{ column: 'A', equals: 'x' }, { any: [{ column: 'B', equals: '1' }, { column: 'C', empty: false }] }]);
    expect(f({ A: 'x', B: '2', C: '' })).toEqual({ pass: false, reason: 'where[1]: none of (B equals "1"; C empty false)' });
    expect(f({ A: 'y' })).toEqual({ pass: false, reason: 'where[0]: A equals "x"' });
    expect(f({ A: 'x', C: 'z' })).toEqual({ pass: true });
  });

  it('a value a number condition cannot compare is a failure (INVALID_NUMBER), not a skip', () => {
    const result = filter([{ column: 'N', gt: 1 }])({ N: 'lots' });
    expect(result).toMatchObject({ pass: false, failures: [{ code: 'INVALID_NUMBER', field: 'where[0]' }] });
  });
});
