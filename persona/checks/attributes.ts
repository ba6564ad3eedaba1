import { LOCALES, OCCUPATIONS } from '../attributes.ts';
import { cityOf } from '../text.ts';
import type { Finding } from './codes.ts';
import { escapeRegExp, wordsOf, type CheckInput } from './input.ts';

/** Attributes contradicted in the prose: the sampled attributes are the ground truth, the text must agree. */

/** The word as a whole word ("Amara" is not in "Amarah"), ignoring case. */
export function mentions(text: string, word: string): boolean {
  return new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(word)}(?![\\p{L}\\p{N}])`, 'iu').test(text);
}

const AGE_MENTIONS = [/\b(\d{1,3})[- ]years?[- ]old\b/gi, /\baged (\d{1,3})\b/gi, /\bat (\d{1,3}),/gi, /, (\d{1,3}), (?:is|works|lives)\b/gi];

/** "a 19-year-old daughter" states someone else's age: such mentions are not about the persona. */
const OTHER_PEOPLE = /^[- ](?:daughter|son|child|kid|baby|boy|girl|grandson|granddaughter|grandchild|nephew|niece|brother|sister|sibling|twin|mother|father|mom|dad|parent|wife|husband|partner|student|patient|client|dog|cat|horse|car|truck|house|home|business|company|firm|shop|bakery|farm|tree)s?\b/i;

/** Ages the text states about the persona, with where they are, so a contradiction can be repaired in place. */
export function statedAges(text: string): { age: number; index: number; length: number; digits: string }[] {
  const found: { age: number; index: number; length: number; digits: string }[] = [];
  for (const pattern of AGE_MENTIONS) {
    for (const m of text.matchAll(pattern)) {
      const digits = m[1];
      if (digits === undefined || m.index === undefined) continue;
      if (OTHER_PEOPLE.test(text.slice(m.index + m[0].length))) continue;
      found.push({ age: Number(digits), index: m.index + m[0].indexOf(digits), length: digits.length, digits });
    }
  }
  return found;
}

/** Other known occupations the text claims for the person ("works as a pilot" for a nurse). */
export function contradictingOccupations(text: string, occupation: string): string[] {
  const lower = text.toLowerCase();
  const own = occupation.toLowerCase();
  return OCCUPATIONS.map((o) => o.title.toLowerCase())
    .filter((title) => title !== own && !own.includes(title) && !title.includes(own))
    .filter((title) => new RegExp(`\\b(?:as an?|is an?|works as an?|\\d+-year-old) ${escapeRegExp(title)}\\b`).test(lower));
}

export function name({ persona }: CheckInput): Finding[] {
  const [first = persona.name, ...rest] = persona.name.split(' ');
  const surname = rest.join(' ');
  const d = persona.description;
  if (!mentions(d, first)) return [{ code: 'NAME_NOT_IN_TEXT', message: `description never names ${first}` }];
  // The first name with another surname ("Rafael Moreno" for Rafael Berg).
  const other = surname === '' ? null : new RegExp(`\\b${escapeRegExp(first)} ((?!${escapeRegExp(surname)}\\b)[A-Z][\\p{L}'-]+)`, 'u').exec(d);
  const notName = other?.[1] !== undefined && (mentions(persona.locale, other[1]) || /^(?:Is|Was|Has|Had|Works|Lives|And|But|Who|The|A|An|In|At|On|From|With|Grew|Spends|Reads|Loves|Feels|Now)$/.test(other[1]));
  if (other && !notName) return [{ code: 'NAME_CONTRADICTION', message: `the persona is called "${other[0]}", not ${persona.name}` }];
  return [];
}

export function age({ persona }: CheckInput): Finding[] {
  const wrong = statedAges(persona.description).filter((m) => m.age !== persona.age);
  return wrong.length > 0 ? [{ code: 'AGE_CONTRADICTION', message: `text states age ${wrong.map((m) => m.age).join(', ')}, not ${persona.age}` }] : [];
}

export function ageFitsOccupation({ persona }: CheckInput): Finding[] {
  const spec = OCCUPATIONS.find((o) => o.title === persona.occupation);
  return spec && (persona.age < spec.minAge || persona.age > spec.maxAge) ? [{ code: 'AGE_OCCUPATION', message: `a ${persona.age}-year-old ${persona.occupation} is implausible` }] : [];
}

/** Words of an occupation that say which job it is ("nurse" in "pediatric nurse"), not its qualifiers. */
const NOT_JOB_WORDS = new Set('a an the at in of for on and or to with who as retired former senior junior head chief local small-town freelance full-time part-time studying student graduate'.split(' '));
const jobWords = (phrase: string): string[] => wordsOf(phrase).filter((w) => !NOT_JOB_WORDS.has(w) && !/\d/.test(w)).map((w) => w.replace(/(?:ers?|s)$/, ''));

/** Nouns that name a job: "is a primary school teaching assistant" names one, "is a regular reader" does not. */
const JOB_NOUNS = 'assistant|developer|engineer|teacher|nurse|driver|manager|designer|analyst|clerk|janitor|cashier|waiter|waitress|chef|cook|farmer|doctor|lawyer|accountant|programmer|technician|mechanic|electrician|plumber|carpenter|pilot|journalist|photographer|professor|scientist|researcher|officer|soldier|sergeant|librarian|curator|therapist|pharmacist|physician|surgeon|dentist|architect|planner|organizer|mayor|instructor|coach|interpreter|translator|housekeeper|fisherman|beekeeper|founder|consultant|banker|secretary|receptionist|firefighter|paramedic|deckhand|judge|illustrator|baker|student';

/** Other words for the sampled occupations, so "a doctor" for an emergency room physician is no contradiction. */
const ALIASES: readonly (readonly [RegExp, string])[] = [
  [/physician/, 'doctor'], [/software engineer/, 'developer programmer'], [/game designer/, 'developer'], [/instructor/, 'teacher coach'],
  [/line cook/, 'chef'], [/sergeant/, 'soldier officer'], [/undergraduate|graduate student/, 'student researcher'], [/technician/, 'engineer'],
  [/bakery owner/, 'baker'], [/schoolteacher/, 'teacher'], [/loan officer/, 'banker'],
];

/** "works as a janitor", "her experience as a junior backend developer": the job phrase after "as a". */
const AS_A_JOB = /\b(?:works|working|worked|employed|job|career|position|experience|role|work) as an? ((?:[a-z-]+ ){0,3}?[a-z-]+)(?=[,.;!?]| (?:in|at|for|and|who|while|with|on|near|from|but)\b|$)/gi;
/** "is a primary school teaching assistant": the job noun that ends the phrase. */
const IS_A_JOB = new RegExp(`\\b(?:is|was) an? (?:[\\w-]+ ){0,5}?(${JOB_NOUNS})s?\\b`, 'gi');

export function occupation({ persona }: CheckInput): Finding[] {
  const known = contradictingOccupations(persona.description, persona.occupation);
  if (known.length > 0) return [{ code: 'OCCUPATION_CONTRADICTION', message: `text calls the persona a ${known.join(', ')}, not a ${persona.occupation}` }];
  const ownText = [persona.occupation.toLowerCase(), ...ALIASES.filter(([p]) => p.test(persona.occupation.toLowerCase())).map(([, a]) => a)].join(' ');
  const own = jobWords(ownText);
  for (const m of persona.description.matchAll(AS_A_JOB)) {
    const words = jobWords(m[1] ?? '');
    if (words.length > 0 && !words.some((w) => own.some((o) => o.includes(w) || w.includes(o)))) return [{ code: 'OCCUPATION_CONTRADICTION', message: `"${m[0]}" names another job than ${persona.occupation}` }];
  }
  for (const m of persona.description.matchAll(IS_A_JOB)) {
    if (!ownText.includes((m[1] ?? '').toLowerCase())) return [{ code: 'OCCUPATION_CONTRADICTION', message: `"${m[0]}" names another job than ${persona.occupation}` }];
  }
  return [];
}

const PLACES = LOCALES.flatMap(([locale]) => locale.split(',').map((p) => p.replace(/^rural /, '').trim()));

/** "lives in Berlin" for a persona sampled in Manila; or a known place named while the persona's own is never mentioned. */
export function locale({ persona }: CheckInput): Finding[] {
  const d = persona.description;
  const ownParts = persona.locale.split(',').map((p) => p.replace(/^rural /, '').trim());
  const others = PLACES.filter((p) => !ownParts.some((o) => o.includes(p) || p.includes(o)) && mentions(d, p));
  for (const place of others) {
    const m = new RegExp(`\\b(?:lives|living|based|resides|residing|settled|works|working)(?: \\w+){0,2} in ${escapeRegExp(place)}\\b`, 'i').exec(d);
    if (m) return [{ code: 'LOCALE_CONTRADICTION', message: `"${m[0]}" for a persona in ${persona.locale}` }];
  }
  const ownMentioned = ownParts.some((p) => mentions(d, p)) || mentions(d, cityOf(persona.locale));
  if (!ownMentioned && others.length > 0) return [{ code: 'LOCALE_CONTRADICTION', message: `places the persona in ${others.join(', ')}, never in ${persona.locale}` }];
  return [];
}

/** Opposites of the sampled traits (words with other everyday senses, like "cold" or "loud", are left out). Sampled traits are checked against each other too: the sampler draws "patient" with "impatient". */
const OPPOSITES: Readonly<Record<string, readonly string[]>> = {
  patient: ['impatient'], impatient: ['patient'], organized: ['disorganized', 'unorganized'], cautious: ['reckless', 'careless'],
  sociable: ['unsociable', 'antisocial'], generous: ['stingy', 'selfish'], warm: ['aloof'], optimistic: ['pessimistic'],
  frugal: ['extravagant', 'spendthrift'], 'soft-spoken': ['outspoken', 'brash'], meticulous: ['careless', 'sloppy'],
  idealistic: ['cynical'], pragmatic: ['impractical'], skeptical: ['gullible', 'credulous'], ambitious: ['unambitious'],
  competitive: ['uncompetitive'], outspoken: ['reticent', 'soft-spoken'], curious: ['incurious'], blunt: ['tactful'], anxious: ['carefree'],
};

/** "patient" is also a noun; only its adjective use ("is patient", "patient with") contradicts "impatient". */
function usesTrait(text: string, trait: string): boolean {
  if (trait === 'patient') return /\b(?:is|be|being|stays?|remains?|very|more|ever|endlessly|infinitely|and|,)\s+patient\b(?!s|'s| care| records?| files?)|\bpatient (?:with|and)\b/i.test(text);
  return mentions(text, trait);
}

export function traits({ persona }: CheckInput): Finding[] {
  const sampled = persona.traits.map((t) => t.toLowerCase());
  for (const t of sampled) {
    const clash = (OPPOSITES[t] ?? []).find((o) => sampled.includes(o));
    if (clash) return [{ code: 'TRAIT_CONTRADICTION', message: `sampled traits "${t}" and "${clash}" contradict each other` }];
  }
  for (const t of sampled) {
    const said = (OPPOSITES[t] ?? []).find((o) => !sampled.includes(o) && usesTrait(persona.description, o));
    if (said) return [{ code: 'TRAIT_CONTRADICTION', message: `text calls the persona "${said}", the opposite of the sampled "${t}"` }];
  }
  return [];
}
