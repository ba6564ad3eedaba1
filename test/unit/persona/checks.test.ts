import { describe, expect, it } from 'vitest';
import type { Persona } from '../../../schemas/types.generated.ts';
import { checkPersona, REASON_CODES } from '../../../persona/coherence.ts';
import { age, locale, name, occupation, traits } from '../../../persona/checks/attributes.ts';
import { fewShotEcho, seedCopy } from '../../../persona/checks/copying.ts';
import { descriptionLength, foreignScript, promptLeak, specialTokens } from '../../../persona/checks/hygiene.ts';
import type { Check } from '../../../persona/checks/input.ts';
import { pronouns } from '../../../persona/checks/pronouns.ts';
import { cutRepetition, repetition } from '../../../persona/checks/repetition.ts';
import { seedEventAsOwn } from '../../../persona/checks/seed-event.ts';
import { timeSpans, yearsIn } from '../../../persona/checks/time-spans.ts';
import { samplePersona } from '../../helpers/samples.ts';
import { checkPersona as parsePersona } from '../../../corpus/persona-json.ts';
import { readFileSync } from 'node:fs';

/**
 * Every check on a positive and a negative case. The texts are real model outputs: the issue's
 * quotes of Gemma 3 270M, and Qwen2.5-Coder 0.5B/1.5B outputs from test/fixtures/draft-outputs.jsonl
 * (quoted with the persona they were written for).
 */
const at2026 = Date.UTC(2026, 10, 26);
function persona(overrides: Partial<Persona>): Persona {
  const p = samplePersona(overrides);
  return { ...p, provenance: { ...p.provenance, createdAt: overrides.provenance?.createdAt ?? at2026 } };
}
const codes = (check: Check, p: Persona, seedText?: string): string[] => check({ persona: p, seedText, maxDescriptionChars: 2000 }).map((f) => f.code);

/** Output number `i` of test/fixtures/draft-outputs.jsonl (0-based, after the header), as the draft stage made it. */
const fixtureLines = readFileSync(new URL('../../fixtures/draft-outputs.jsonl', import.meta.url), 'utf8').trim().split('\n').slice(1);
function real(i: number): { persona: Persona; seedText: string; defects: string[] } {
  const raw = JSON.parse(fixtureLines[i] ?? 'null') as { persona: unknown; seedText: string; defects: string[] };
  return { persona: parsePersona(raw.persona, `fixture ${i}`), seedText: raw.seedText, defects: raw.defects };
}
const on = (check: Check, i: number): string[] => codes(check, real(i).persona, real(i).seedText);
const ALL_CHECKS: Check[] = [specialTokens, promptLeak, foreignScript, descriptionLength, pronouns, name, age, occupation, locale, traits, timeSpans, repetition, fewShotEcho, seedCopy, seedEventAsOwn];

describe('validator checks on real outputs of the small models', () => {
  it('pass every hand-labelled coherent output, each check on its own', () => {
    const coherent = fixtureLines.map((_, i) => i).filter((i) => real(i).defects.length === 0);
    expect(coherent.length).toBeGreaterThan(30);
    for (const i of coherent) for (const check of ALL_CHECKS) expect(on(check, i), `output ${i}, ${check.name}`).toEqual([]);
  });

  it('find the defect each was labelled with', () => {
    // "Carmen Farouk has been an urban planner for 43 years and has written the text." (43, 1.5B)
    expect(on(timeSpans, 20)).toEqual(['CAREER_SPAN']);
    expect(on(promptLeak, 20)).toEqual(['PROMPT_LEAK']);
    // "... is the person described as frugal, soft-spoken, and anxious." (1.5B)
    expect(on(promptLeak, 74)).toEqual(['PROMPT_LEAK']);
    // "... Stubborn and nostalgic, he still knows every stop by heart." and "he knows every route by heart" (0.5B, 1.5B)
    expect(on(fewShotEcho, 1)).toEqual(['FEW_SHOT_ECHO']);
    expect(on(fewShotEcho, 6)).toEqual(['FEW_SHOT_ECHO']);
    // "... replace his concrete garage floor with a new light-rail line" echoes the example's seed (0.5B)
    expect(on(fewShotEcho, 75)).toEqual(['FEW_SHOT_ECHO']);
    // The seed restated with the persona's name in front (0.5B).
    expect(on(seedCopy, 11)).toEqual(['SEED_COPY']);
    // "... Lucia Osei ... who, when he has stable employment, keeps ... She also works in gig or seasonal jobs" (0.5B)
    expect(on(pronouns, 87)).toEqual(['PRONOUN_SWITCH']);
    // "Her experience as a junior backend developer ..." for a community organizer; "He is a primary school teaching assistant" for an illustrator.
    expect(on(occupation, 38)).toEqual(['OCCUPATION_CONTRADICTION']);
    expect(on(occupation, 115)).toEqual(['OCCUPATION_CONTRADICTION']);
    // "... a log of which vehicles she has recently taken. ... a note of which vehicles she has recently taken ..." (0.5B)
    expect(on(repetition, 55)).toEqual(['REPETITION']);
    // READER personas doing the seed's act: "placed third in the provincial championship", "has tried cloth diapers in a tiny apartment".
    expect(on(seedEventAsOwn, 91)).toEqual(['SEED_EVENT_AS_OWN']);
    expect(on(seedEventAsOwn, 108)).toEqual(['SEED_EVENT_AS_OWN']);
    // ... while a reader who follows the seed's advice is no such case: "backpacks Patagonia on a budget".
    expect(on(seedEventAsOwn, 44)).toEqual([]);
  });

  it('repair what is safe to repair in real outputs, and reject the rest', () => {
    const opts = { maxDescriptionChars: 2000, requireEnrichment: false };
    const tail = checkPersona(real(46).persona, { ...opts, seedText: real(46).seedText });
    expect(tail.repaired).toEqual(['description.leaked_tail']);
    expect(tail.persona.description).toBe('Ngozi Aziz is a 43-year-old video game designer who has written about signs of heat exhaustion in the local newspaper.');
    expect(tail.reasons).toEqual([]);
    const loop = checkPersona(real(33).persona, { ...opts, seedText: real(33).seedText });
    expect(loop.repaired).toEqual(['description.repetition']);
    expect(loop.persona.description).toBe('Kwame Okafor is 37 years old who is the construction site manager for Sao Paulo. Competitive and cautious, he sets limits that have actually stuck.');
    // "Elena Torres, an 61-year-old beekeeper, believes that her debut album" (0.5B): too short to cut back.
    const cut = checkPersona(real(25).persona, { ...opts, seedText: real(25).seedText });
    expect(cut.reasons.map((r) => r.code)).toEqual(['TRUNCATED']);
  });
});

describe('validator checks on the issue\'s quotes and constructed cases', () => {
  it('special and control tokens', () => {
    const p = persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos; she\'s a person we\'d like to work with.”}<start_of_image>In the text, there are a few short sentences.' });
    expect(codes(specialTokens, p)).toEqual(['SPECIAL_TOKEN']);
    expect(codes(specialTokens, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos.<|im_end|>' }))).toEqual(['SPECIAL_TOKEN']);
    expect(codes(specialTokens, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos\u0007 who reads.' }))).toEqual(['SPECIAL_TOKEN']);
    expect(codes(specialTokens, persona({}))).toEqual([]);
  });

  it('leaked prompt text', () => {
    for (const d of [
      'Amara Okafor is the kind of person described in the text: a 34-year-old pediatric nurse in Lagos.',
      'Amara Okafor, 34, a pediatric nurse in Lagos, is someone who would read the notice about vaccines.',
      'Amara Okafor is a 34-year-old pediatric nurse in Lagos. "description": She reads vaccination updates.',
      'As an AI, I would describe Amara Okafor as a 34-year-old pediatric nurse in Lagos.',
      'This persona is Amara Okafor, a 34-year-old pediatric nurse in Lagos who reads updates.',
    ]) expect(codes(promptLeak, persona({ description: d })), d).toEqual(['PROMPT_LEAK']);
    expect(codes(promptLeak, persona({ description: 'Amara Okafor, a 34-year-old pediatric nurse in Lagos, answers text messages from worried parents at night.' }))).toEqual([]);
  });

  it('foreign-script drift', () => {
    expect(codes(foreignScript, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos 她喜欢阅读疫苗接种的最新消息.' }))).toEqual(['FOREIGN_SCRIPT']);
    expect(codes(foreignScript, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse from São Paulo who moved to Lagos and reads every update.' }))).toEqual([]);
  });

  it('pronouns that switch, and pronouns against the recorded sex', () => {
    const switching = persona({ name: 'Rafael Berg', description: 'Rafael Berg is a 34-year-old pediatric nurse in Lagos. He reads every vaccination update. She keeps a notebook of the questions parents ask.' });
    expect(codes(pronouns, switching)).toEqual(['PRONOUN_SWITCH']);
    expect(codes(pronouns, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. Her son says he wants to be a doctor, and she smiles.' }))).toEqual([]);
    const he = persona({ name: 'Amara Okafor', description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. He reads every vaccination update.' });
    expect(codes(pronouns, he)).toEqual([]);
    const female = { ...he, demographics: { sex: 'female', maritalStatus: '', household: '', educationLevel: '', educationField: '', employmentStatus: '', occupationGroup: '', industry: '', city: '', region: '', country: '', culturalBackground: '', languages: [], hobbies: [], skills: [], careerGoal: '' } };
    expect(codes(pronouns, female)).toEqual(['PRONOUN_MISMATCH']);
  });

  it('the name: missing, or with another surname', () => {
    expect(codes(name, persona({ description: 'Grace Miller is a 34-year-old pediatric nurse in Lagos who reads every vaccination update.' }))).toEqual(['NAME_NOT_IN_TEXT']);
    expect(codes(name, persona({ description: 'Amara Delgado is a 34-year-old pediatric nurse in Lagos who reads every vaccination update.' }))).toEqual(['NAME_CONTRADICTION']);
    expect(codes(name, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. Amara reads every vaccination update.' }))).toEqual([]);
  });

  it('the age', () => {
    expect(codes(age, persona({ description: 'Amara Okafor is a 19-year-old pediatric nurse in Lagos who reads every vaccination update.' }))).toEqual(['AGE_CONTRADICTION']);
    expect(codes(age, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos with a 12-year-old son.' }))).toEqual([]);
  });

  it('the occupation, including a phrase that names another job', () => {
    const mayor = persona({ occupation: 'small-town mayor', description: 'Amara Okafor is a 34-year-old small-town mayor in Lagos who works as a janitor at the town hall.' });
    expect(codes(occupation, mayor)).toEqual(['OCCUPATION_CONTRADICTION']);
    expect(codes(occupation, persona({ description: 'Amara Okafor, 34, works as an airline pilot in Lagos.' }))).toEqual(['OCCUPATION_CONTRADICTION']);
    expect(codes(occupation, persona({ description: 'Amara Okafor, 34, works as a nurse on the pediatric ward in Lagos.' }))).toEqual([]);
  });

  it('the locale', () => {
    expect(codes(locale, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse who lives in Berlin and reads every vaccination update.' }))).toEqual(['LOCALE_CONTRADICTION']);
    expect(codes(locale, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who trained in Berlin for a year.' }))).toEqual([]);
  });

  it('traits: an opposite in the text, or contradictory sampled traits', () => {
    expect(codes(traits, persona({ traits: ['patient', 'warm', 'curious'], description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos, impatient with slow paperwork.' }))).toEqual(['TRAIT_CONTRADICTION']);
    expect(codes(traits, persona({ traits: ['patient', 'optimistic', 'impatient'] }))).toEqual(['TRAIT_CONTRADICTION']);
    // "patient" the noun is not the trait.
    expect(codes(traits, persona({ traits: ['impatient', 'warm', 'curious'], description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who checks on every patient twice.' }))).toEqual([]);
  });

  it('time spans the age makes impossible', () => {
    expect(codes(timeSpans, persona({ age: 64, occupation: 'pediatric nurse', description: 'Amara Okafor is a 64-year-old pediatric nurse in Lagos who has been in the pediatric nursing field for 64 years.' }))).toEqual(['CAREER_SPAN']);
    expect(codes(timeSpans, persona({ age: 25, description: 'Amara Okafor, a 25-year-old pediatric nurse in Lagos, has been a nurse since 1992.' }))).toEqual(['CAREER_SPAN']);
    expect(codes(timeSpans, persona({ age: 67, description: 'Amara Okafor spent thirty years nursing children in Lagos and, now 67, still volunteers.' }))).toEqual([]);
    expect(codes(timeSpans, persona({ age: 34, description: 'Amara Okafor, 34, has lived in Lagos for 34 years and nursed children there for ten years.' }))).toEqual([]);
    expect([yearsIn('sixty-four', 'years'), yearsIn('two', 'decades'), yearsIn('12', 'years')]).toEqual([64, 20, 12]);
  });

  it('repetition, word for word or nearly, and the loop cut', () => {
    const loop = persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who wonders about the new vaccine. She\'d like to believe it. She\'d like to believe it, but she\'d like to believe it, too.' });
    expect(codes(repetition, loop)).toEqual(['REPETITION']);
    expect(cutRepetition(loop.description)).toBe('Amara Okafor is a 34-year-old pediatric nurse in Lagos who wonders about the new vaccine. She\'d like to believe it.');
    expect(codes(repetition, persona({}))).toEqual([]);
  });

  it('few-shot echoes', () => {
    expect(codes(fewShotEcho, persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who keeps a notebook of drug interactions she has caught.' }))).toEqual(['FEW_SHOT_ECHO']);
    expect(codes(fewShotEcho, persona({ description: 'Amara Okafor, like Kofi Asante, is a 34-year-old pediatric nurse in Lagos.' }))).toEqual(['FEW_SHOT_ECHO']);
    expect(codes(fewShotEcho, persona({}))).toEqual([]);
  });

  it('copied seed text, only with the seed at hand', () => {
    const seed = 'Residents of Millbrook Road can expect overnight lane closures from Monday as crews replace a 1950s water main.';
    const p = persona({ description: 'Amara Okafor, 34, a pediatric nurse in Lagos, says residents of Millbrook Road can expect overnight lane closures from Monday.' });
    expect(codes(seedCopy, p, seed)).toEqual(['SEED_COPY']);
    expect(codes(seedCopy, p)).toEqual([]);
    expect(codes(seedCopy, persona({}), seed)).toEqual([]);
  });

  it('the seed\'s event told as a reader\'s own act', () => {
    const seed = 'Our quilting circle finished 40 quilts for the children\'s hospital this year. New members are welcome every second Tuesday.';
    const own = persona({ seedRelation: 'READER', description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. She finished 40 quilts for the children\'s hospital this year.' });
    expect(codes(seedEventAsOwn, own, seed)).toEqual(['SEED_EVENT_AS_OWN']);
    expect(codes(seedEventAsOwn, { ...own, seedRelation: 'WRITER' }, seed)).toEqual([]);
    expect(codes(seedEventAsOwn, persona({ seedRelation: 'READER', description: 'Amara Okafor, 34, a pediatric nurse in Lagos, reads that the circle finished 40 quilts for her hospital.' }), seed)).toEqual([]);
  });

  it('the description length bound', () => {
    const long = persona({ description: `Amara Okafor is a 34-year-old pediatric nurse in Lagos. ${'She reads every update. '.repeat(100)}` });
    expect(descriptionLength({ persona: long, seedText: undefined, maxDescriptionChars: 2000 }).map((f) => f.code)).toEqual(['DESCRIPTION_TOO_LONG']);
    expect(descriptionLength({ persona: long, seedText: undefined, maxDescriptionChars: 5000 })).toEqual([]);
  });

  it('repairs a leaked trailing fragment and keeps the rest', () => {
    const r = checkPersona(persona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who reads every vaccination update before her shift.”}<start_of_image>In the text, there are a few short sentences.' }), { dimensions: 384, maxDescriptionChars: 2000 });
    expect(r.repaired).toEqual(['description.leaked_tail']);
    expect(r.persona.description).toBe('Amara Okafor is a 34-year-old pediatric nurse in Lagos who reads every vaccination update before her shift.');
    expect(r.reasons).toEqual([]);
  });

  it('every reason code is documented in docs/QUALITY.md', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../../docs/QUALITY.md', import.meta.url), 'utf8');
    expect(Object.keys(REASON_CODES).filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
  });
});
