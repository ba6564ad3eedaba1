import type { Persona } from '../schemas/types.generated.ts';
import { OCCUPATIONS } from './attributes.ts';
import { FEW_SHOT } from './prompt.ts';
import { lifeStageFor } from './modalities.ts';
import { normalizeText, withArticle } from './text.ts';

export interface Reason {
  code: string;
  message: string;
}

export interface CheckResult {
  /** The persona after the repair step (unchanged when nothing was repaired). */
  persona: Persona;
  passed: string[];
  repaired: string[];
  reasons: Reason[];
}

const AGE_MENTIONS = [/\b(\d{1,3})[- ]years?[- ]old\b/gi, /\baged (\d{1,3})\b/gi, /\bat (\d{1,3}),/gi, /, (\d{1,3}), (?:is|works|lives)\b/gi];

const escapeRegExp = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The word as a whole word ("Amara" is not in "Amarah"), ignoring case. */
export function mentions(text: string, word: string): boolean {
  return new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(word)}(?![\\p{L}\\p{N}])`, 'iu').test(text);
}

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

function shingles(text: string, n = 3): Set<string> {
  const words = normalizeText(text).split(' ');
  const out = new Set<string>();
  for (let i = 0; i + n <= words.length; i += 1) out.add(words.slice(i, i + n).join(' '));
  return out;
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter += 1;
  return inter === 0 ? 0 : inter / (a.size + b.size - inter);
}

const fewShotShingles = FEW_SHOT.map((ex) => shingles(ex.description));

/**
 * Schema invariants and cross-field coherence. Contradictions a model makes between the sampled
 * attributes and its text (a stated age or occupation that differs) get one bounded, deterministic
 * repair: the text is made to agree with the attributes, which are the ground truth; whatever still
 * fails after that is rejected with every reason.
 */
export function checkPersona(input: Persona, opts: { dimensions: number }): CheckResult {
  const passed: string[] = [];
  const reasons: Reason[] = [];
  const repaired: string[] = [];
  let persona = input;
  const check = (name: string, ok: boolean, code: string, message: string): void => {
    if (ok) passed.push(name);
    else reasons.push({ code, message });
  };

  // Repair step (at most once per field).
  const wrongAges = statedAges(persona.description).filter((m) => m.age !== persona.age);
  if (wrongAges.length > 0) {
    let text = persona.description;
    for (const m of [...wrongAges].sort((a, b) => b.index - a.index)) text = `${text.slice(0, m.index)}${persona.age}${text.slice(m.index + m.length)}`;
    persona = { ...persona, description: text };
    repaired.push('description.age');
  }
  // A misspelt first name before the right surname ("Tomasth Tanaka" for Tomasz Tanaka) is set right.
  const [first = '', ...rest] = persona.name.split(' ');
  const surname = rest.join(' ');
  if (surname && !mentions(persona.description, first)) {
    const misspelt = new RegExp(`\\b[A-Z][\\p{L}'-]*(?= ${escapeRegExp(surname)}\\b)`, 'u');
    if (misspelt.test(persona.description)) {
      persona = { ...persona, description: persona.description.replace(misspelt, first) };
      repaired.push('description.name');
    }
  }
  const otherJobs = contradictingOccupations(persona.description, persona.occupation);
  if (otherJobs.length > 0) {
    let text = persona.description;
    // The article goes with the noun it precedes: "an airline pilot" becomes "a pediatric nurse".
    for (const job of otherJobs) {
      text = text.replace(new RegExp(`\\b(?:(an?) )?${escapeRegExp(job)}\\b`, 'gi'), (_m, article: string | undefined) => (article ? `${withArticle(persona.occupation, article)}` : persona.occupation));
    }
    persona = { ...persona, description: text };
    repaired.push('description.occupation');
  }

  // A small model stopped by max_tokens ends mid-sentence; keep the complete sentences when enough remain.
  if (!/[.!?]["')\]]?$/.test(persona.description.trim())) {
    const lastEnd = Math.max(...['. ', '! ', '? '].map((p) => persona.description.lastIndexOf(p)));
    if (lastEnd >= 60) {
      persona = { ...persona, description: persona.description.slice(0, lastEnd + 1) };
      repaired.push('description.truncated');
    }
  }

  // Small models loop ("Female. Female. Female."): keep the first of each repeated sentence.
  const sentences = persona.description.match(/[^.!?]+[.!?]+["')\]]?\s*|[^.!?]+$/g) ?? [persona.description];
  const seen = new Set<string>();
  const unique = sentences.filter((x) => {
    const key = normalizeText(x);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (unique.length < sentences.length) {
    persona = { ...persona, description: unique.join('').trim() };
    repaired.push('description.repetition');
  }

  const d = persona.description;
  check('name', persona.name.trim().length >= 2, 'NAME_EMPTY', 'name is empty');
  check('age_range', persona.age >= 16 && persona.age <= 100, 'AGE_OUT_OF_RANGE', `age ${persona.age} is outside 16-100`);
  check('description_length', d.length >= 40 && d.length <= 2000, 'DESCRIPTION_LENGTH', `description has ${d.length} chars, allowed 40-2000`);
  check('traits', persona.traits.length > 0, 'NO_TRAITS', 'no traits');
  check('complete_sentence', /[.!?]["')\]]?$/.test(d.trim()), 'TRUNCATED', 'description ends mid-sentence and is too short to cut back');
  const firstName = persona.name.split(' ')[0] ?? persona.name;
  check('name_in_text', mentions(d, firstName), 'NAME_NOT_IN_TEXT', `description never names ${firstName}`);
  check('age_in_text', statedAges(d).every((m) => m.age === persona.age), 'AGE_CONTRADICTION', `text states an age other than ${persona.age} after repair`);
  check('occupation_in_text', contradictingOccupations(d, persona.occupation).length === 0, 'OCCUPATION_CONTRADICTION', `text gives another occupation than ${persona.occupation}`);
  const spec = OCCUPATIONS.find((o) => o.title === persona.occupation);
  check('age_fits_occupation', !spec || (persona.age >= spec.minAge && persona.age <= spec.maxAge), 'AGE_OCCUPATION', `a ${persona.age}-year-old ${persona.occupation} is implausible`);
  const own = shingles(d);
  const copied = fewShotShingles.some((ex) => jaccard(own, ex) > 0.4);
  check('not_few_shot_copy', !copied, 'FEW_SHOT_COPY', 'description copies a few-shot example');

  const e = persona.enrichment;
  if (!e) {
    reasons.push({ code: 'NOT_ENRICHED', message: 'persona has no enrichment' });
  } else {
    check('life_stage', e.lifeStage === lifeStageFor(persona.age), 'LIFE_STAGE_MISMATCH', `life stage ${e.lifeStage} does not fit age ${persona.age}`);
    check('embedding_dimensions', e.embedding.length === opts.dimensions, 'EMBEDDING_DIMENSIONS', `embedding has ${e.embedding.length} dims, expected ${opts.dimensions}`);
    const finite = e.embedding.every(Number.isFinite);
    check('embedding_finite', finite && Math.hypot(...e.embedding) > 1e-6, 'EMBEDDING_INVALID', 'embedding has non-finite values or zero norm');
    const b = e.bigFive;
    check('big_five_range', [b.openness, b.conscientiousness, b.extraversion, b.agreeableness, b.neuroticism].every((x) => x >= 0 && x <= 1), 'BIG_FIVE_RANGE', 'a Big Five score is outside 0-1');
  }
  return { persona, passed, repaired, reasons };
}
