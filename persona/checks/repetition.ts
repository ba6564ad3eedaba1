import { normalizeText } from '../text.ts';
import type { Finding } from './codes.ts';
import { ngrams, sentencesOf, wordsOf, type CheckInput } from './input.ts';

/**
 * Repetition that is not word for word: a model in a loop rewords the same sentence ("He'd like to
 * believe it. He'd like to believe it, but he'd like to believe it, too."). A phrase of PHRASE_WORDS
 * words said twice, or two sentences sharing most of their word pairs, is a loop in text this short.
 */
const PHRASE_WORDS = 4;
const NEAR_SENTENCE = 0.5;

/** Phrases made only of these are ordinary connective tissue ("and he is a"), not a loop. */
const FILLER = new Set('a an the and or but of in on at to for with by from as is are was were be he she his her him they their it its who that which this has have had i my we our you your'.split(' '));

function bigrams(text: string): Set<string> {
  return new Set(ngrams(wordsOf(text), 2));
}

function overlap(a: Set<string>, b: Set<string>): number {
  let shared = 0;
  for (const x of a) if (b.has(x)) shared += 1;
  return Math.min(a.size, b.size) === 0 ? 0 : shared / Math.min(a.size, b.size);
}

/** A phrase said at least twice, if any: the first such PHRASE_WORDS-word run that is not filler alone. */
export function repeatedPhrase(text: string): string | undefined {
  const seen = new Set<string>();
  for (const gram of ngrams(wordsOf(text), PHRASE_WORDS)) {
    if (gram.split(' ').every((w) => FILLER.has(w))) continue;
    if (seen.has(gram)) return gram;
    seen.add(gram);
  }
  return undefined;
}

/** Two sentences that share most of their word pairs (the shorter one's), if any. */
function nearRepeatedSentences(text: string): [string, string] | undefined {
  const sentences = sentencesOf(text).map((s) => s.trim());
  const grams = sentences.map(bigrams);
  for (let i = 0; i < sentences.length; i += 1) {
    for (let j = i + 1; j < sentences.length; j += 1) {
      const a = grams[i];
      const b = grams[j];
      if (a && b && Math.min(a.size, b.size) >= 3 && overlap(a, b) >= NEAR_SENTENCE) return [sentences[i] ?? '', sentences[j] ?? ''];
    }
  }
  return undefined;
}

export function repetition({ persona }: CheckInput): Finding[] {
  const d = persona.description;
  const near = nearRepeatedSentences(d);
  if (near) return [{ code: 'REPETITION', message: `two sentences say nearly the same: ${JSON.stringify(near[0])} / ${JSON.stringify(near[1])}` }];
  const phrase = repeatedPhrase(d);
  return phrase === undefined ? [] : [{ code: 'REPETITION', message: `the phrase ${JSON.stringify(phrase)} is repeated` }];
}

/**
 * The repair: drop sentences repeated word for word, then cut a loop at the tail (every sentence from
 * some point on repeats what came before). Returns the repaired text, or undefined when there was
 * nothing to repair or the cut would leave too little.
 */
export function cutRepetition(text: string): string | undefined {
  const seen = new Set<string>();
  const unique = sentencesOf(text).filter((s) => {
    const key = normalizeText(s).replace(/[.!?"')\]\s]+$/, '');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  let cut = unique.length;
  for (let i = unique.length - 1; i >= 1; i -= 1) {
    const before = unique.slice(0, i).join('');
    const sentence = unique[i] ?? '';
    const repeats = repeatedPhrase(`${before} ${sentence}`) !== undefined && repeatedPhrase(before) === undefined;
    const near = overlap(bigrams(sentence), bigrams(before)) >= NEAR_SENTENCE;
    if (!repeats && !near) break;
    cut = i;
  }
  const kept = unique.slice(0, cut).join('').trim();
  if (kept === text.trim() || kept.length < 60) return undefined;
  return kept;
}
