import type { Persona } from '../schemas/types.generated.ts';
import type { FilterableAttributes } from './filter.ts';

/**
 * What the filter language can see of an indexed persona (`personahub export --where`): its age,
 * occupation, relation to the seed, traits, and the country its locale ends with ("Lagos, Nigeria").
 * The place before the comma is a city or a region depending on the locale, so it is not offered as
 * either; attributes the persona does not carry never match `=` and always match `!=`.
 */
export function personaFilterAttributes(p: Persona): FilterableAttributes {
  const parts = p.locale.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const country = parts.length > 1 ? parts[parts.length - 1] : undefined;
  return { age: p.age, occupation: p.occupation, seedRelation: p.seedRelation, trait: p.traits, ...(country === undefined ? {} : { country }) };
}
