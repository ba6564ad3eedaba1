import type { SampledAttributes } from './attributes.ts';
import { RELATION_VERBS } from './prompt.ts';
import { cityOf, pick, rng, salientTerms, withArticle } from './text.ts';

/**
 * Sampler mode: a persona written without a model, from the sampled attributes and the seed's
 * salient terms. Plain, but coherent by construction and cheap enough for bulk corpora.
 */
export function composeDescription(a: SampledAttributes, seedText: string, key: string): string {
  const random = rng(`compose:${key}`);
  const terms = salientTerms(seedText, 3);
  const topic = terms.length > 0 ? terms.join(', ') : 'everyday life';
  // Each opener ends where a relative clause ("who ...") reads naturally.
  const opener = pick(random, [
    `${a.name} is a ${a.age}-year-old ${a.occupation} in ${cityOf(a.locale)}`,
    `${a.name}, ${a.age}, is ${withArticle(a.occupation)} based in ${cityOf(a.locale)}`,
    `${a.name} is ${a.age} and works in ${cityOf(a.locale)} as ${withArticle(a.occupation)}, someone`,
  ]);
  const link = `${RELATION_VERBS[a.seedRelation]} a piece about ${topic}`;
  const [t1, t2, t3] = a.traits;
  const streak = t3 ?? 'quiet';
  return `${opener} who ${link}. ${capitalize(t1 ?? 'thoughtful')} and ${t2 ?? 'curious'}, with ${withArticle(streak)} streak, they bring that outlook to their work and to conversations about ${terms[0] ?? 'the world around them'}.`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
