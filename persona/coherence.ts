import type { Persona } from '../schemas/types.generated.ts';
import { lifeStageFor } from './modalities.ts';
import { withArticle } from './text.ts';
import { age, ageFitsOccupation, contradictingOccupations, locale, mentions, name, occupation, statedAges, traits } from './checks/attributes.ts';
import type { Finding } from './checks/codes.ts';
import { fewShotEcho, seedCopy } from './checks/copying.ts';
import { descriptionLength, foreignScript, promptLeak, specialTokens } from './checks/hygiene.ts';
import { escapeRegExp, sentencesOf, type Check, type CheckInput } from './checks/input.ts';
import { pronouns } from './checks/pronouns.ts';
import { cutRepetition, repetition } from './checks/repetition.ts';
import { seedEventAsOwn } from './checks/seed-event.ts';
import { timeSpans } from './checks/time-spans.ts';

export { contradictingOccupations, mentions, statedAges } from './checks/attributes.ts';
export { REASON_CODES, type ReasonCode } from './checks/codes.ts';

export type Reason = Finding;

export interface CheckResult {
  /** The persona after the repair step (unchanged when nothing was repaired). */
  persona: Persona;
  passed: string[];
  repaired: string[];
  reasons: Reason[];
}

export interface CheckOptions {
  /** The embedding's expected dimensions; undefined skips that check (a persona made elsewhere, with another embedder). */
  dimensions?: number | undefined;
  /** PERSONAHUB_MAX_DESCRIPTION_CHARS. */
  maxDescriptionChars: number;
  /** The seed text, when known: the seed-copy and seed-event checks need it. */
  seedText?: string | undefined;
  /** The validate stage requires the enrichment section; a user's file may have none. */
  requireEnrichment?: boolean;
}

const ENDS_SENTENCE = /[.!?]["')\]\u201d]?$/;

function truncation({ persona }: CheckInput): Finding[] {
  return ENDS_SENTENCE.test(persona.description.trim()) ? [] : [{ code: 'TRUNCATED', message: 'description ends mid-sentence and is too short to cut back' }];
}

function invariants({ persona }: CheckInput): Finding[] {
  const found: Finding[] = [];
  if (persona.name.trim().length < 2) found.push({ code: 'NAME_EMPTY', message: 'name is empty' });
  if (persona.age < 16 || persona.age > 100) found.push({ code: 'AGE_OUT_OF_RANGE', message: `age ${persona.age} is outside 16-100` });
  if (persona.traits.length === 0) found.push({ code: 'NO_TRAITS', message: 'no traits' });
  return found;
}

/**
 * The text checks, by the name recorded in `validation.checks` when they pass. Each is a pure
 * function under persona/checks/ with its own reason codes (persona/checks/codes.ts).
 */
export const TEXT_CHECKS: Readonly<Record<string, Check>> = {
  invariants, description_length: descriptionLength, special_tokens: specialTokens, prompt_leak: promptLeak,
  foreign_script: foreignScript, complete_sentence: truncation, name_in_text: name, age_in_text: age,
  age_fits_occupation: ageFitsOccupation, occupation_in_text: occupation, locale_in_text: locale, traits_in_text: traits,
  pronouns, time_spans: timeSpans, repetition, not_few_shot_copy: fewShotEcho, not_seed_copy: seedCopy, seed_event: seedEventAsOwn,
};

/** Findings that the tail cut can remove: a leaked fragment after the last good sentence. */
const HYGIENE: readonly Check[] = [specialTokens, promptLeak, foreignScript];

/**
 * The repair: one bounded, deterministic pass, each step at most once. The sampled attributes are the
 * ground truth, so a stated age, a misspelt first name or another known occupation is set to them; a
 * leaked fragment after the last good sentence is dropped, a cut-off text is cut back to its last
 * full sentence, repeated sentences and a loop at the tail are dropped. Nothing else is rewritten:
 * whatever still fails is rejected with every reason.
 */
function repair(input: CheckInput): { persona: Persona; repaired: string[] } {
  let persona = input.persona;
  const repaired: string[] = [];
  const set = (description: string, what: string): void => {
    persona = { ...persona, description };
    repaired.push(what);
  };

  // A leaked tail ("…work with.”}<start_of_image>In the text, there are…"): keep the sentences before it, if they make a text.
  const sentences = sentencesOf(persona.description);
  const firstBad = sentences.findIndex((s) => HYGIENE.some((c) => c({ ...input, persona: { ...persona, description: s } }).length > 0));
  if (firstBad > 0) {
    const kept = sentences.slice(0, firstBad).join('').trim();
    const tail = sentences.slice(firstBad).join('');
    const cleaned = kept.replace(/["\u201d]?\s*[}\]]+\s*$/, '');
    if (cleaned.length >= 60 && ENDS_SENTENCE.test(cleaned) && tail.length <= cleaned.length) set(cleaned, 'description.leaked_tail');
  }

  const wrongAges = statedAges(persona.description).filter((m) => m.age !== persona.age);
  if (wrongAges.length > 0) {
    let text = persona.description;
    for (const m of [...wrongAges].sort((a, b) => b.index - a.index)) text = `${text.slice(0, m.index)}${persona.age}${text.slice(m.index + m.length)}`;
    set(text, 'description.age');
  }
  // A misspelt first name before the right surname ("Tomasth Tanaka" for Tomasz Tanaka) is set right.
  const [first = '', ...rest] = persona.name.split(' ');
  const surname = rest.join(' ');
  if (surname && !mentions(persona.description, first)) {
    const misspelt = new RegExp(`\\b[A-Z][\\p{L}'-]*(?= ${escapeRegExp(surname)}\\b)`, 'u');
    if (misspelt.test(persona.description)) set(persona.description.replace(misspelt, first), 'description.name');
  }
  const otherJobs = contradictingOccupations(persona.description, persona.occupation);
  if (otherJobs.length > 0) {
    let text = persona.description;
    // The article goes with the noun it precedes: "an airline pilot" becomes "a pediatric nurse".
    for (const job of otherJobs) {
      text = text.replace(new RegExp(`\\b(?:(an?) )?${escapeRegExp(job)}\\b`, 'gi'), (_m, article: string | undefined) => (article ? withArticle(persona.occupation, article) : persona.occupation));
    }
    set(text, 'description.occupation');
  }

  // A small model stopped by max_tokens ends mid-sentence; keep the complete sentences when enough remain.
  if (!ENDS_SENTENCE.test(persona.description.trim())) {
    const lastEnd = Math.max(...['. ', '! ', '? '].map((p) => persona.description.lastIndexOf(p)));
    if (lastEnd >= 60) set(persona.description.slice(0, lastEnd + 1), 'description.truncated');
  }

  const cut = cutRepetition(persona.description);
  if (cut !== undefined) set(cut, 'description.repetition');
  return { persona, repaired };
}

/**
 * Schema invariants, the text checks and cross-field coherence, after one bounded repair. What still
 * fails is rejected with every reason.
 */
export function checkPersona(input: Persona, opts: CheckOptions): CheckResult {
  const base: CheckInput = { persona: input, seedText: opts.seedText, maxDescriptionChars: opts.maxDescriptionChars };
  const { persona, repaired } = repair(base);
  const checked: CheckInput = { ...base, persona };
  const passed: string[] = [];
  const reasons: Reason[] = [];
  for (const [checkName, check] of Object.entries(TEXT_CHECKS)) {
    const found = check(checked);
    if (found.length === 0) passed.push(checkName);
    reasons.push(...found);
  }

  const e = persona.enrichment;
  const structural = (checkName: string, ok: boolean, finding: Finding): void => {
    if (ok) passed.push(checkName);
    else reasons.push(finding);
  };
  if (!e) {
    if (opts.requireEnrichment ?? true) reasons.push({ code: 'NOT_ENRICHED', message: 'persona has no enrichment' });
  } else {
    structural('life_stage', e.lifeStage === lifeStageFor(persona.age), { code: 'LIFE_STAGE_MISMATCH', message: `life stage ${e.lifeStage} does not fit age ${persona.age}` });
    if (opts.dimensions !== undefined) structural('embedding_dimensions', e.embedding.length === opts.dimensions, { code: 'EMBEDDING_DIMENSIONS', message: `embedding has ${e.embedding.length} dims, expected ${opts.dimensions}` });
    const finite = e.embedding.every(Number.isFinite);
    structural('embedding_finite', finite && Math.hypot(...e.embedding) > 1e-6, { code: 'EMBEDDING_INVALID', message: 'embedding has non-finite values or zero norm' });
    const b = e.bigFive;
    structural('big_five_range', [b.openness, b.conscientiousness, b.extraversion, b.agreeableness, b.neuroticism].every((x) => x >= 0 && x <= 1), { code: 'BIG_FIVE_RANGE', message: 'a Big Five score is outside 0-1' });
  }
  return { persona, passed, repaired, reasons };
}
