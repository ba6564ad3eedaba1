import type { Demographics, Facets } from '../schemas/types.generated.ts';
import type { SampledAttributes } from './attributes.ts';
import { cityOf, pick, pickDistinct, rng, salientTerms, withArticle } from './text.ts';

/**
 * Sampler mode: a persona written without a model, from the sampled attributes and the seed's
 * salient terms. Plain, but coherent by construction and cheap enough for bulk corpora.
 */
export function composeDescription(a: SampledAttributes, seedText: string, key: string): string {
  const random = rng(`compose:${key}`);
  const terms = salientTerms(seedText, 3);
  const topic = terms.length > 0 ? terms.join(', ') : 'everyday life';
  // Each opener ends where a relative clause ("who ...") reads naturally, and none says "someone who", the prompt's relation line, which validation refuses as a leak.
  const opener = pick(random, [
    `${a.name} is a ${a.age}-year-old ${a.occupation} in ${cityOf(a.locale)}`,
    `${a.name}, ${a.age}, is ${withArticle(a.occupation)} based in ${cityOf(a.locale)}`,
    `${a.name} is ${a.age} and works in ${cityOf(a.locale)} as ${withArticle(a.occupation)}, one`,
  ]);
  const link = `${LINKS[a.seedRelation]} ${topic}`;
  const [t1, t2, t3] = a.traits;
  const streak = t3 ?? 'quiet';
  return `${opener} who ${link}. ${capitalize(t1 ?? 'thoughtful')} and ${t2 ?? 'curious'}, with ${withArticle(streak)} streak, they bring that outlook to their work and to conversations about ${terms[0] ?? 'the world around them'}.`;
}

/**
 * Sampler mode's written facets: composed from the attributes, the demographics the persona was
 * grounded on (when a profile drew them) and the seed's salient terms, so they never contradict the
 * record. They name the person, not a pronoun: the sampler does not write gendered prose.
 */
export function composeFacets(a: SampledAttributes, d: Demographics | null, seedText: string, key: string): Facets {
  const random = rng(`facets:${key}`);
  const terms = salientTerms(seedText, 3);
  const topic = terms.length > 0 ? terms.join(', ') : 'everyday life';
  const first = firstName(a.name);
  const city = cityOf(a.locale);
  const [t1 = 'thoughtful', t2 = 'curious'] = a.traits;
  const hobbies = d && d.hobbies.length > 0 ? d.hobbies : pickDistinct(random, PASTIMES, 2);
  return {
    shortPersona: `${capitalize(withArticle(`${t1} ${a.occupation}`))} in ${city} who ${LINKS[a.seedRelation]} ${topic}.`,
    professional: d
      ? `${first} is ${withArticle(a.occupation)}${d.industry === 'none' ? '' : ` (${d.industry})`} with ${education(d)}, and the next goal is to ${d.careerGoal}.`
      : `${first} works as ${withArticle(a.occupation)} in ${city} and is known there as ${t2}.`,
    family: d ? `${first} is ${d.maritalStatus} and ${householdClause(d.household)} in ${city}.` : `${first} lives in ${city}, close to the people ${first} grew up with.`,
    leisure: `In free time ${first} turns to ${hobbies.slice(0, 2).join(' and ')}${d && d.languages.length > 1 ? `, and at home speaks ${d.languages.slice(0, 2).join(' and ')}` : ''}.`,
    seedRelation: `${first} ${LINKS[a.seedRelation]} ${topic}, as ${withArticle(t2)} ${a.occupation} would.`,
  };
}

/**
 * A profile's household value as a clause about the person ("lives with their parents"): the bare value
 * ("with parents") is misread, by a model too, as something about the parents.
 */
export function householdClause(household: string): string {
  return HOUSEHOLDS[household] ?? `lives in a ${household} household`;
}

/** The profiles' household values; a value a future profile adds reads through the fallback. */
const HOUSEHOLDS: Record<string, string> = {
  'couple without children': 'lives with a partner and no children', 'couple with children': 'lives with a partner and their children',
  'extended family': 'lives with extended family', 'with parents': 'lives with their parents', 'living alone': 'lives alone',
  'shared with non-relatives': 'shares a home with housemates', 'single parent': 'raises children alone',
};
/** Pastimes for a persona without sampled hobbies (a related persona, drawn from its parent rather than a profile). */
const PASTIMES = ['cooking', 'long walks', 'football on television', 'gardening', 'music', 'reading', 'card games with friends', 'local history'];

function education(d: Demographics): string {
  if (d.educationLevel === 'tertiary') return `a degree in ${d.educationField}`;
  if (d.educationLevel === 'secondary') return `${d.educationField} secondary schooling`;
  if (d.educationLevel === 'primary') return 'primary schooling';
  return 'no formal schooling';
}

const firstName = (name: string): string => name.split(' ')[0] ?? name;

/** The sampler's own words for the seed relation: not the prompt's, which validation refuses in a text as a leak. */
const LINKS: Record<SampledAttributes['seedRelation'], string> = {
  READER: 'would read a piece about', WRITER: 'could have written a piece about', ENTHUSIAST: 'would love a piece about',
  CRITIC: 'would argue against a piece about', SUBJECT: 'could be the subject of a piece about',
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
