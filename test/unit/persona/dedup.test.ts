import { describe, expect, it } from 'vitest';
import { hashEmbed } from '../../../llm/embedder.ts';
import { nearDuplicate } from '../../../persona/dedup.ts';
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

  it('prefers the candidate with the same words when several are close in meaning', () => {
    const v = nearDuplicate(signatureOf(text), hashEmbed(text, 384), [candidate('meaning', text, false), candidate('words', text)], t);
    expect(v.duplicateOf).toBe('words');
  });
});
