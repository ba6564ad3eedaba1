import type { Finding } from './codes.ts';
import { ngrams, sentencesOf, wordsOf, type CheckInput } from './input.ts';

/**
 * A reader of a text did not do what the text tells: a persona who "would read" that a robotics team
 * placed third did not place third. Kept conservative; only when the relation is READER, and only in a
 * sentence about the persona (its name, or he or she) with no word of reading, hearing or wanting, one of:
 * - a verb the seed reports as done ("placed", "built", "spent") retold with its object ("placed third
 *   at the" → "placed third in the");
 * - for a first-person seed (a post: "I", "my", "our"), FIRST_PERSON_RUN words of it in a row, the
 *   poster's experience told as the persona's.
 */
const FIRST_PERSON_RUN = 5;
const LEARNING = /\b(?:read|reads|reading|follow|follows|following|heard|hears|learn|learned|learns|saw|sees|seen|news|article|post|posts|report|reports|forum|thread|story|headline|update|updates|announcement|notice|guide|advice|tips|question|asks?|wonder|wonders|worr(?:y|ies|ied)|curious|interested|keen|eager|excited|idea|dream|hopes?|wants?|believes?|thinks?|if|would|could|might)\b/i;
const FIRST_PERSON = /\b(?:I|I'm|I've|I'd|my|me|we|our|us)\b/;
const FILLER = new Set('a an the and or but of in on at to for with by from as is are was were be it its this that his her their my i we you'.split(' '));
const IRREGULAR: Readonly<Record<string, string>> = {
  built: 'build', builds: 'build', spent: 'spend', spends: 'spend', bought: 'buy', buys: 'buy', won: 'win', wins: 'win', took: 'take', takes: 'take',
  kept: 'keep', found: 'find', finds: 'find', ran: 'run', wrote: 'write', writes: 'write', sold: 'sell', sells: 'sell', gave: 'give', began: 'begin', lost: 'lose',
};
const PAST_IRREGULAR = new Set(['built', 'spent', 'bought', 'won', 'took', 'kept', 'found', 'ran', 'wrote', 'sold', 'gave', 'began', 'lost']);
/** Past participles that ask for something rather than report it ("deckhand needed", "experience required"). */
const NOT_EVENTS = new Set(['need', 'requir', 'want', 'seek', 'advis', 'urg', 'expect', 'welcom', 'invit', 'ask', 'recommend', 'desir', 'propos', 'plann', 'schedul']);

/** A crude stem, enough to see "pinned" and "pinning", "expressed" and "expresses" as one verb. */
export function verbStem(word: string): string {
  const w = word.toLowerCase();
  if (IRREGULAR[w] !== undefined) return IRREGULAR[w];
  const bare = w.replace(/(?:ing|ed|es|s)$/, '').replace(/e$/, '');
  return /([bdgmnprt])\1$/.test(bare) ? bare.slice(0, -1) : bare;
}

/** The seed's reported acts: each past-tense verb with the three words after it. */
function seedEvents(seedText: string): { stem: string; object: string[] }[] {
  const words = wordsOf(seedText);
  return words.flatMap((w, i) => ((w.length >= 5 && w.endsWith('ed')) || PAST_IRREGULAR.has(w)) && !NOT_EVENTS.has(verbStem(w)) ? [{ stem: verbStem(w), object: words.slice(i + 1, i + 4) }] : []);
}

export function seedEventAsOwn({ persona, seedText }: CheckInput): Finding[] {
  if (seedText === undefined || persona.seedRelation !== 'READER') return [];
  const events = seedEvents(seedText);
  const firstPerson = FIRST_PERSON.test(seedText);
  const seedRuns = new Set(ngrams(wordsOf(seedText), FIRST_PERSON_RUN).filter((g) => g.split(' ').filter((w) => !FILLER.has(w)).length >= 2));
  const [first = persona.name] = persona.name.split(' ');
  for (const sentence of sentencesOf(persona.description)) {
    if (!/\b(?:he|she)\b/i.test(sentence) && !sentence.includes(first)) continue;
    if (LEARNING.test(sentence)) continue;
    const words = wordsOf(sentence);
    for (const [i, w] of words.entries()) {
      const next = words.slice(i + 1, i + 4);
      const event = events.find((e) => e.stem === verbStem(w) && next.filter((x) => e.object.includes(x)).length >= 2);
      if (event) return [{ code: 'SEED_EVENT_AS_OWN', message: `a reader of the seed is told as doing what it reports: "${[w, ...next].join(' ')}" in "${sentence.trim()}"` }];
    }
    const retold = firstPerson ? ngrams(words, FIRST_PERSON_RUN).find((g) => seedRuns.has(g)) : undefined;
    if (retold) return [{ code: 'SEED_EVENT_AS_OWN', message: `the poster's experience told as the persona's own: "${retold}" in "${sentence.trim()}"` }];
  }
  return [];
}
