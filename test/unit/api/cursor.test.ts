import { describe, expect, it } from 'vitest';
import { Cursors } from '../../../api/cursor.ts';
import { ApiError } from '../../../api/errors.ts';
import { filterKey, toStoreFilter } from '../../../api/filters.ts';
import { FilterError } from '../../../persona/filter.ts';

describe('page cursors', () => {
  const cursors = new Cursors('secret-a');
  const filters = filterKey({ where: 'age>=30', mode: 'LLM' });

  it('give back the id they were made from, under the same filters', () => {
    expect(cursors.decode(cursors.encode('0f'.repeat(16), filters), filters)).toBe('0f'.repeat(16));
  });

  it.each([
    ['altered', (c: string) => `${c.slice(0, 3)}${c[3] === 'x' ? 'y' : 'x'}${c.slice(4)}`, 'signature'],
    ['truncated', (c: string) => c.slice(0, -2), 'signature'],
    ['not ours', () => 'abc', 'not a cursor'],
    ['signed by another secret', () => new Cursors('secret-b').encode('0f'.repeat(16), filters), 'signature'],
  ])('refuse a cursor %s with a 400 that says why', (_case, mutate, why) => {
    const bad = mutate(cursors.encode('0f'.repeat(16), filters));
    const error = (() => {
      try {
        cursors.decode(bad, filters);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ statusCode: 400, code: 'PH_API_CURSOR', message: expect.stringContaining(why) });
  });

  it('refuse a cursor issued for other filters', () => {
    const cursor = cursors.encode('0f'.repeat(16), filters);
    expect(() => cursors.decode(cursor, filterKey({ where: 'age>=31', mode: 'LLM' }))).toThrow('other filters');
    expect(() => cursors.decode(cursor, filterKey({ where: 'age>=30' }))).toThrow('other filters');
  });
});

describe('filters for the store', () => {
  it('give each clause of the filter language its attribute kind', () => {
    expect(toStoreFilter({ where: 'age>=30,occupation=nurse,hobby!=chess', cluster: 2 })).toMatchObject({
      where: [
        { attribute: 'age', kind: 'number', op: '>=', value: 30 },
        { attribute: 'occupation', kind: 'string', op: '=', value: 'nurse' },
        { attribute: 'hobby', kind: 'list', op: '!=', value: 'chess' },
      ],
      cluster: 2,
    });
  });

  it('pass the filter language\'s refusals on (answered as 400s)', () => {
    expect(() => toStoreFilter({ where: 'shoeSize=44' })).toThrow(FilterError);
  });
});
