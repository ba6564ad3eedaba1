import { describe, expect, it } from 'vitest';
import { matches, parseWhere } from '../../../persona/filter.ts';
import { personaFilterAttributes } from '../../../persona/persona-filter.ts';
import { samplePersona } from '../../helpers/samples.ts';

describe('personaFilterAttributes', () => {
  it('a persona from before profiles is filtered by its own fields and the country its locale ends with', () => {
    const p = personaFilterAttributes(samplePersona({ demographics: null }));
    expect(matches(p, parseWhere('country=nigeria,age>=30,occupation="pediatric nurse",trait=warm,seedRelation=READER'))).toBe(true);
    expect(matches(p, parseWhere('city=Lagos'))).toBe(false);
    expect(matches(p, parseWhere('language!=English'))).toBe(true);
  });

  it('a profiled persona is filtered by its demographics, lists by membership', () => {
    const p = personaFilterAttributes(samplePersona({
      locale: 'Somewhere, Elsewhere',
      demographics: {
        sex: 'female', maritalStatus: 'married', household: 'couple', educationLevel: 'tertiary', educationField: 'health', employmentStatus: 'employed',
        occupationGroup: 'professionals', industry: 'Q', city: 'Lagos', region: 'Lagos State', country: 'Nigeria', culturalBackground: 'Yoruba',
        languages: ['English', 'Yoruba'], hobbies: ['chess'], skills: ['triage'], careerGoal: 'run a clinic',
      },
    }));
    expect(matches(p, parseWhere('country=Nigeria,city=lagos,language=yoruba,hobby=chess,skill=triage,sex=female'))).toBe(true);
    expect(matches(p, parseWhere('country=Elsewhere'))).toBe(false);
    expect(matches(p, parseWhere('language=Hausa'))).toBe(false);
  });
});
