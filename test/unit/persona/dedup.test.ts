import { describe, expect, it } from 'vitest';
import { hashEmbed } from '../../../llm/embedder.ts';
import { dedupText, nearDuplicate } from '../../../persona/dedup.ts';
import { signatureOf } from '../../../persona/minhash.ts';

const t = { jaccard: 0.9, cosine: 0.9 };
const text = 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who reads every update on vaccination schedules and explains them to parents.';
const candidate = (id: string, body: string, withSignature = true) => ({ id, signature: withSignature ? signatureOf(body) : undefined, embedding: hashEmbed(body, 384) });

describe('near-duplicate decision', () => {
  it('names the candidate confirmed by cosine, with both scores', () => {
    const twin = text.replace('every update', 'each update');
    const v = nearDuplicate(signatureOf(text), hashEmbed(text, 384), [candidate('far', 'Kenji Sato keeps bees in Osaka and sells honey at the weekend market.'), candidate('twin', twin)], t);
    expect(v.duplicateOf).toBe('twin');
    expect(v.cosine).toBeGreaterThanOrEqual(0.9);
    expect(v.jaccard).toBeGreaterThan(0.8);
    expect(v.reason).toContain('persona twin');
  });

  it('passes a persona whose candidates are below the cosine threshold, whatever their shared words', () => {
    const v = nearDuplicate(signatureOf(text), hashEmbed(text, 384), [candidate('far', 'Kenji Sato keeps bees in Osaka and sells honey at the weekend market.')], t);
    expect(v).toEqual({ duplicateOf: undefined, jaccard: undefined, cosine: undefined, reason: undefined });
  });

  it('takes a nearest neighbour without a signature on its embedding alone', () => {
    const v = nearDuplicate(signatureOf(text), hashEmbed(text, 384), [candidate('neighbour', text, false)], t);
    expect(v.duplicateOf).toBe('neighbour');
    expect(v.jaccard).toBeUndefined();
    expect(v.reason).toContain('nearest neighbour');
  });

  it('takes a candidate at the Jaccard threshold on its words alone, however far its embedding', () => {
    const renamed = text.replace('Amara Okafor', 'Chiamaka Eze');
    const signature = signatureOf(dedupText(text, 'Amara Okafor'));
    const v = nearDuplicate(signature, hashEmbed(text, 384), [{ id: 'renamed', signature: signatureOf(dedupText(renamed, 'Chiamaka Eze')), embedding: hashEmbed('Kenji Sato keeps bees in Osaka.', 384) }], t);
    expect(v.duplicateOf).toBe('renamed');
    expect(v.jaccard).toBe(1);
    expect(v.cosine).toBeLessThan(t.cosine);
    expect(v.reason).toContain('estimated Jaccard 1.000 ≥ 0.9');
  });

  it('compares personas without their names: a rename has the same words, another name is not a difference', () => {
    expect(dedupText(text, 'Amara Okafor')).toBe(dedupText(text.replace(/Amara Okafor/g, 'Chiamaka Eze'), 'Chiamaka Eze'));
    expect(dedupText("Amara's patients call Amara Okafor by her first name.", 'Amara Okafor')).toBe('patients call by her first name');
    expect(dedupText(text, 'Amara Okafor')).not.toBe(dedupText(text.replace('Lagos', 'Accra'), 'Amara Okafor'));
  });

  it('prefers the candidate with the same words when several are close in meaning', () => {
    const v = nearDuplicate(signatureOf(text), hashEmbed(text, 384), [candidate('meaning', text, false), candidate('words', text)], t);
    expect(v.duplicateOf).toBe('words');
  });
});
