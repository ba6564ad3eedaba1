import type { Finding } from './codes.ts';
import { recordedSex, sentencesOf, type CheckInput } from './input.ts';

/**
 * Pronouns for the persona. A description is about one person, so a sentence that starts with a
 * pronoun, or that names the persona and has no one else in it, uses the persona's pronouns. Both
 * he and she there is a switch; the recorded sex, when the record has one, decides which is wrong.
 * Sentences about someone else (a daughter, a patient, another named person) are left out: that is
 * what keeps this check from rejecting "her son says he ...".
 */
const MASCULINE = /\b(?:he|him|his|himself)\b/gi;
const FEMININE = /\b(?:she|her|hers|herself)\b/gi;
const OTHER_PERSON = /\b(?:mother|father|mom|dad|mum|parents?|wife|husband|partner|spouse|son|daughter|sons|daughters|child|children|kids?|boy|girl|brother|sister|siblings?|grand\w+|aunt|uncle|nephew|niece|cousin|friend|boss|colleague|coworker|co-worker|neighbou?r|patient|client|customer|student|pupil|teacher|mentor|man|woman|men|women|gentleman|lady|guy|player|author|writer|doctor|someone|anyone|everyone|people|user|poster|reader|baby|toddler|teen|teenager|fiancée?|girlfriend|boyfriend|widow|widower|king|queen|actor|actress|singer|he or she|his or her)\b/i;

const NOT_NAMES = /^(?:He|She|His|Her|The|A|An|In|On|At|As|With|When|While|Although|Despite|After|Before|Whether|I|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|English|Spanish|French|German)$/;

/** Another capitalized name inside the sentence (not the persona's, not its locale): a pronoun may mean that person. */
function otherName(sentence: string, persona: { name: string; locale: string }): boolean {
  return [...sentence.matchAll(/(?<=\s)[A-Z][a-z]+\b/g)].some((m) => !persona.name.includes(m[0]) && !persona.locale.includes(m[0]) && !NOT_NAMES.test(m[0]));
}

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

export function pronouns({ persona }: CheckInput): Finding[] {
  const [first = persona.name] = persona.name.split(' ');
  let masculine = 0;
  let feminine = 0;
  for (const sentence of sentencesOf(persona.description)) {
    const opening = /^\s*(He|She|His|Her)\b/.exec(sentence)?.[1];
    // A sentence that opens with a pronoun, in a text about one person, opens with the persona's.
    if (opening === 'He' || opening === 'His') masculine += 1;
    if (opening === 'She' || opening === 'Her') feminine += 1;
    if (!(opening !== undefined || sentence.includes(first)) || OTHER_PERSON.test(sentence) || otherName(sentence, persona)) continue;
    masculine += count(sentence, MASCULINE) - (opening === 'He' || opening === 'His' ? 1 : 0);
    feminine += count(sentence, FEMININE) - (opening === 'She' || opening === 'Her' ? 1 : 0);
  }
  const sex = recordedSex(persona);
  if (sex === 'female' && masculine > 0) return [{ code: 'PRONOUN_MISMATCH', message: `he/him/his used ${masculine} time(s) for a persona recorded as female` }];
  if (sex === 'male' && feminine > 0) return [{ code: 'PRONOUN_MISMATCH', message: `she/her used ${feminine} time(s) for a persona recorded as male` }];
  if (masculine > 0 && feminine > 0) return [{ code: 'PRONOUN_SWITCH', message: `the persona is both he (${masculine}) and she (${feminine})` }];
  return [];
}
