import type { SampledAttributes } from './attributes.ts';
import { cityOf, pick, rng, salientTerms, withArticle } from './text.ts';

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

/** The sampler's own words for the seed relation: not the prompt's, which validation refuses in a text as a leak. */
const LINKS: Record<SampledAttributes['seedRelation'], string> = {
  READER: 'would read a piece about', WRITER: 'could have written a piece about', ENTHUSIAST: 'would love a piece about',
  CRITIC: 'would argue against a piece about', SUBJECT: 'could be the subject of a piece about',
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
