import { describe, expect, it } from 'vitest';
import { FILTER_ATTRIBUTES, FilterError, formatWhere, matches, parseWhere } from '../../../persona/filter.ts';

function failure(expr: string): FilterError {
  try {
    parseWhere(expr);
  } catch (error) {
    if (error instanceof FilterError) return error;
    throw error;
  }
  throw new Error(`"${expr}" parsed`);
}

describe('filter language', () => {
  it('parses the documented example into typed clauses', () => {
    expect(parseWhere('occupation=nurse,age>=30,country=Nigeria')).toEqual([
      { attribute: 'occupation', op: '=', value: 'nurse' },
      { attribute: 'age', op: '>=', value: 30 },
      { attribute: 'country', op: '=', value: 'Nigeria' },
    ]);
  });

  it('reads every operator, spaces around the parts, and quoted values with commas and escapes', () => {
    expect(parseWhere(' age > 18 , age<65,age<=64, age != 40,sex!=female, trait = patient ').map((c) => `${c.attribute}${c.op}${c.value}`))
      .toEqual(['age>18', 'age<65', 'age<=64', 'age!=40', 'sex!=female', 'trait=patient']);
    expect(parseWhere('city="Washington, D.C.",occupation="say \\"hi\\""')).toEqual([
      { attribute: 'city', op: '=', value: 'Washington, D.C.' },
      { attribute: 'occupation', op: '=', value: 'say "hi"' },
    ]);
    expect(parseWhere('   ')).toEqual([]);
  });

  it('writes a filter back so that it parses to the same clauses', () => {
    const clauses = parseWhere('city="Washington, D.C.",age>=30,occupation="a \\"b\\"",country=Nigeria');
    expect(parseWhere(formatWhere(clauses))).toEqual(clauses);
    expect(formatWhere(clauses)).toBe('city="Washington, D.C.",age>=30,occupation="a \\"b\\"",country=Nigeria');
  });

  it('refuses bad input with a code and a message that points at the clause', () => {
    const unknown = failure('occupation=nurse,colour=red');
    expect(unknown.code).toBe('PH_FILTER_ATTRIBUTE');
    expect(unknown.message).toContain('"colour"');
    for (const name of Object.keys(FILTER_ATTRIBUTES)) expect(unknown.message).toContain(name);
    expect(failure('age=>30').code).toBe('PH_FILTER_VALUE');
    expect(failure('age>=thirty').message).toContain('age>=thirty');
    expect(failure('country>Nigeria').code).toBe('PH_FILTER_OPERATOR');
    expect(failure('occupation').code).toBe('PH_FILTER_SYNTAX');
    expect(failure('occupation=').code).toBe('PH_FILTER_SYNTAX');
    expect(failure('age>=30,,sex=male').code).toBe('PH_FILTER_SYNTAX');
    expect(failure('city="Lagos').code).toBe('PH_FILTER_SYNTAX');
    expect(failure('city=La"gos').code).toBe('PH_FILTER_SYNTAX');
    expect(failure('toString=x').code).toBe('PH_FILTER_ATTRIBUTE');
  });

  it('matches strings case-insensitively, numbers by order, lists by membership', () => {
    const person = { age: 34, occupation: 'Nurse', country: 'Nigeria', language: ['Yoruba', 'English'], trait: ['patient'] };
    expect(matches(person, parseWhere('occupation=nurse,age>=30,country=nigeria'))).toBe(true);
    expect(matches(person, parseWhere('age>34'))).toBe(false);
    expect(matches(person, parseWhere('age<=34,age>33,age!=35'))).toBe(true);
    expect(matches(person, parseWhere('language=english'))).toBe(true);
    expect(matches(person, parseWhere('language!=english'))).toBe(false);
    expect(matches(person, parseWhere('language=Hausa'))).toBe(false);
    expect(matches(person, parseWhere('country!=Nigeria'))).toBe(false);
    // An attribute the persona lacks fails "=" and passes "!=".
    expect(matches(person, parseWhere('region=Lagos'))).toBe(false);
    expect(matches(person, parseWhere('region!=Lagos'))).toBe(true);
    expect(matches(person, [])).toBe(true);
  });
});
