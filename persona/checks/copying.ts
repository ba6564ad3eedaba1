import { FEW_SHOT } from '../prompt.ts';
import type { Finding } from './codes.ts';
import { ngrams, wordsOf, type CheckInput } from './input.ts';

/**
 * Copying: small models lift phrases from the prompt's few-shot examples ("keeps a notebook of ...",
 * "knows every stop by heart") and long runs of the seed text instead of writing about the person.
 */

/** Words that a shared n-gram must not consist of alone ("is a", "in the") to count as an echo. */
const FUNCTION_WORDS = new Set('a an the and or but of in on at to for with by from as is are was were be been has have had he she his her him they their it its who that which this every each'.split(' '));

const FEW_SHOT_NGRAM = 4;
const distinctive = (gram: string): boolean => gram.split(' ').filter((w) => w !== '_' && !FUNCTION_WORDS.has(w)).length >= 2;
/**
 * The examples' 4-word phrases, and their 5-word phrases with any one inner word left open, so that
 * "knows every route by heart" is seen as "still knows every stop by heart" reworded. Each keeps two
 * content words at least, so "is a" and "in the" never count.
 */
const fewShotGrams = new Set<string>();
for (const ex of FEW_SHOT) {
  for (const text of [ex.description, ex.seed]) {
    const words = wordsOf(text);
    for (const gram of ngrams(words, FEW_SHOT_NGRAM)) if (distinctive(gram)) fewShotGrams.add(gram);
    for (const gram of ngrams(words, FEW_SHOT_NGRAM + 1)) for (const open of gapped(gram)) if (distinctive(open)) fewShotGrams.add(open);
  }
}
/**
 * The examples' people: a full name, a surname alone, or a first name not followed by another surname
 * ("Rosa" copied from the example, but not "Rosa Ivanova", a namesake: a related persona's parent, say).
 */
const fewShotNames = FEW_SHOT.flatMap((ex) => {
  const [first = '', ...rest] = ex.attributes.name.split(' ');
  const surname = rest.join(' ');
  return [{ name: first, pattern: new RegExp(`\\b${first}\\b(?! (?!${surname}\\b)\\p{Lu})`, 'u') }, { name: surname, pattern: new RegExp(`\\b${surname}\\b`, 'u') }];
});

/** A 5-word phrase with each inner word in turn left open ("knows every _ by heart"). */
function gapped(gram: string): string[] {
  const words = gram.split(' ');
  return [1, 2, 3].map((i) => words.map((w, j) => (j === i ? '_' : w)).join(' '));
}

export function fewShotEcho({ persona }: CheckInput): Finding[] {
  const own = new Set(wordsOf(persona.name));
  const names = fewShotNames.filter((n) => !own.has(n.name.toLowerCase()) && n.pattern.test(persona.description)).map((n) => n.name);
  if (names.length > 0) return [{ code: 'FEW_SHOT_ECHO', message: `names a few-shot example's person: ${names.join(', ')}` }];
  const words = wordsOf(persona.description);
  const shared = [...new Set([...ngrams(words, FEW_SHOT_NGRAM), ...ngrams(words, FEW_SHOT_NGRAM + 1).flatMap(gapped)])].filter((g) => fewShotGrams.has(g));
  return shared.length > 0 ? [{ code: 'FEW_SHOT_ECHO', message: `shares a phrase with a few-shot example: ${shared.slice(0, 3).map((g) => JSON.stringify(g)).join(', ')}` }] : [];
}

/** Eight words in a row is a copied clause, not a shared topic. */
export const SEED_COPY_WORDS = 8;

export function seedCopy({ persona, seedText }: CheckInput): Finding[] {
  if (seedText === undefined) return [];
  const seedGrams = new Set(ngrams(wordsOf(seedText), SEED_COPY_WORDS));
  const copied = ngrams(wordsOf(persona.description), SEED_COPY_WORDS).find((g) => seedGrams.has(g));
  return copied ? [{ code: 'SEED_COPY', message: `copies ${SEED_COPY_WORDS}+ words in a row from the seed: ${JSON.stringify(copied)}` }] : [];
}
