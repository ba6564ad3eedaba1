import type { Persona } from '../schemas/types.generated.ts';
import type { FilterableAttributes } from './filter.ts';

/**
 * What the filter language sees of an indexed persona (`personahub export --where`): its age,
 * occupation, relation to the seed and traits, and its demographics when it was drawn from a sampler
 * profile. A persona from before profiles has only its locale: the country it ends with ("Lagos,
 * Nigeria") stands in for the country, and the place before the comma, a city or a region depending on
 * the locale, is offered as neither. An attribute a persona lacks never matches `=` and always `!=`.
 */
export function personaFilterAttributes(p: Pick<Persona, 'age' | 'occupation' | 'seedRelation' | 'traits' | 'locale' | 'demographics'>): FilterableAttributes {
  const base: FilterableAttributes = { age: p.age, occupation: p.occupation, seedRelation: p.seedRelation, trait: p.traits };
  const d = p.demographics;
  if (d) {
    return {
      ...base, sex: d.sex, maritalStatus: d.maritalStatus, household: d.household, educationLevel: d.educationLevel, educationField: d.educationField,
      industry: d.industry, city: d.city, region: d.region, country: d.country, culturalBackground: d.culturalBackground,
      language: d.languages, hobby: d.hobbies, skill: d.skills,
    };
  }
  const parts = p.locale.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const country = parts.length > 1 ? parts[parts.length - 1] : undefined;
  return country === undefined ? base : { ...base, country };
}
