import { describe, expect, it } from 'vitest';
import { checkPersona, contradictingOccupations, statedAges } from '../../../persona/coherence.ts';
import { withArticle } from '../../../persona/text.ts';
import { FEW_SHOT } from '../../../persona/prompt.ts';
import { samplePersona } from '../../helpers/samples.ts';
import { hashEmbed } from '../../../llm/embedder.ts';

const dims = { dimensions: 384, maxDescriptionChars: 2000 };

describe('coherence rules', () => {
  it('passes a coherent persona untouched', () => {
    const r = checkPersona(samplePersona(), dims);
    expect(r.reasons).toEqual([]);
    expect(r.repaired).toEqual([]);
    expect(r.passed).toContain('age_in_text');
  });

  it('finds the ages a text states', () => {
    expect(statedAges('a 32-year-old nurse, aged 40, who is 51 years old').map((m) => m.age)).toEqual([32, 51, 40]);
  });

  it('repairs a stated age that contradicts the age field, once, and records it', () => {
    const p = samplePersona({ description: 'Amara Okafor is a 19-year-old pediatric nurse in Lagos who reads every update on vaccination schedules.' });
    const r = checkPersona(p, dims);
    expect(r.reasons).toEqual([]);
    expect(r.repaired).toEqual(['description.age']);
    expect(r.persona.description).toContain('34-year-old');
  });

  it('ignores ages that belong to someone else', () => {
    expect(statedAges('She raises a 19-year-old daughter and a 3-year-old dog; at 34, she works nights.').map((m) => m.age)).toEqual([34]);
    const r = checkPersona(samplePersona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos with a 12-year-old son who plays chess.' }), dims);
    expect(r.repaired).toEqual([]);
    expect(r.reasons).toEqual([]);
  });

  it('cuts a description that ends mid-sentence back to its last full sentence', () => {
    const r = checkPersona(samplePersona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update. Now, she is in' }), dims);
    expect(r.repaired).toEqual(['description.truncated']);
    expect(r.persona.description).toBe('Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update.');
    expect(r.reasons).toEqual([]);
    const short = checkPersona(samplePersona({ description: 'Amara Okafor is a nurse who reads the vaccination schedules every' }), dims);
    expect(short.reasons.map((x) => x.code)).toEqual(['TRUNCATED']);
  });

  it('sets a misspelt first name right when the surname is there', () => {
    const r = checkPersona(samplePersona({ description: 'Amarah Okafor is a 34-year-old pediatric nurse in Lagos who reads every update on vaccination schedules.' }), dims);
    expect(r.repaired).toEqual(['description.name']);
    expect(r.persona.description.startsWith('Amara Okafor is')).toBe(true);
    expect(r.reasons).toEqual([]);
    const other = checkPersona(samplePersona({ description: 'Grace Miller is a 34-year-old pediatric nurse in Lagos who reads every update on vaccination schedules.' }), dims);
    expect(other.reasons.map((x) => x.code)).toEqual(['NAME_NOT_IN_TEXT']);
  });

  it('drops repeated sentences a looping model wrote', () => {
    const r = checkPersona(samplePersona({ description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update. Female. Female. female.' }), dims);
    expect(r.repaired).toEqual(['description.repetition']);
    expect(r.persona.description).toBe('Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update. Female.');
    expect(r.reasons).toEqual([]);
  });

  it('repairs an occupation the text contradicts', () => {
    expect(contradictingOccupations('She works as an airline pilot in Lagos.', 'pediatric nurse')).toEqual(['airline pilot']);
    const r = checkPersona(samplePersona({ description: 'Amara Okafor works as an airline pilot in Lagos and reads every update on vaccination schedules.' }), dims);
    expect(r.repaired).toEqual(['description.occupation']);
    expect(r.persona.description).toBe('Amara Okafor works as a pediatric nurse in Lagos and reads every update on vaccination schedules.');
  });

  it('fits the article to the occupation it puts in', () => {
    const r = checkPersona(samplePersona({ occupation: 'emergency room physician', description: 'Amara Okafor is a 34-year-old airline pilot in Lagos who reads every update on vaccination schedules. A airline pilot, she says.' }), dims);
    expect(r.persona.description).toContain('is a 34-year-old emergency room physician');
    expect(r.persona.description).toContain('An emergency room physician, she says.');
    expect(withArticle('union electrician')).toBe('a union electrician');
    expect(withArticle('undergraduate studying economics')).toBe('an undergraduate studying economics');
    expect(withArticle('honest broker')).toBe('an honest broker');
    expect(withArticle('pediatric nurse', 'An')).toBe('A pediatric nurse');
  });

  it('rejects with every reason: missing name, implausible age for the job, wrong dims, copied few-shot', () => {
    const r = checkPersona(samplePersona({ age: 17, description: FEW_SHOT[0]?.description ?? '' }), { ...dims, dimensions: 768 });
    const codes = r.reasons.map((x) => x.code);
    expect(codes).toEqual(expect.arrayContaining(['NAME_NOT_IN_TEXT', 'AGE_OCCUPATION', 'EMBEDDING_DIMENSIONS', 'FEW_SHOT_ECHO']));
  });

  it('rejects a life stage that does not fit the age', () => {
    const p = samplePersona();
    const senior = { ...p, enrichment: p.enrichment ? { ...p.enrichment, lifeStage: 'SENIOR' as const } : null };
    expect(checkPersona(senior, dims).reasons.map((x) => x.code)).toEqual(['LIFE_STAGE_MISMATCH']);
  });

  it('rejects a description outside the length bounds and a zero embedding', () => {
    const p = samplePersona({ description: 'Amara.' });
    const zero = { ...p, enrichment: p.enrichment ? { ...p.enrichment, embedding: new Array(384).fill(0) } : null };
    const codes = checkPersona(zero, dims).reasons.map((x) => x.code);
    expect(codes).toEqual(expect.arrayContaining(['DESCRIPTION_TOO_SHORT', 'EMBEDDING_INVALID']));
  });
});
