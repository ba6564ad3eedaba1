import { describe, expect, it } from 'vitest';
import { sampleAttributes } from '../../../persona/attributes.ts';
import { composeDescription, composeFacets } from '../../../persona/compose.ts';
import { composeRelatedFacets } from '../../../persona/relations.ts';
import { samplePersona, samplerFor } from '../../../persona/sampler.ts';
import { salientTerms } from '../../../persona/text.ts';

describe('sampler-mode composition', () => {
  it('composes a description that states the sampled attributes and the seed terms', () => {
    const a = sampleAttributes('seed', 0);
    const text = composeDescription(a, 'Farmers in Kenya adopt drought-resistant sorghum varieties; sorghum yields rose.', 'k');
    expect(text).toContain(a.name);
    expect(text).toContain(`${a.age}`);
    expect(text).toContain(a.occupation);
    expect(text).toContain('sorghum');
  });

  it('composes the written facets from the attributes and demographics, the same for the same key', () => {
    const seed = 'Farmers in Kenya adopt drought-resistant sorghum varieties; sorghum yields rose.';
    const drawn = Array.from({ length: 40 }, (_, i) => samplePersona(samplerFor('global'), 'seed', i));
    for (const [i, { attributes: a, demographics: d }] of drawn.entries()) {
      const f = composeFacets(a, d, seed, `k${i}`);
      expect(composeFacets(a, d, seed, `k${i}`)).toEqual(f);
      expect(f.shortPersona).toMatch(new RegExp(`^An? ${a.traits[0]} ${a.occupation} in `));
      expect(f.shortPersona).toContain('sorghum');
      expect(f.professional).toContain(a.occupation);
      expect(f.family).toContain(d.maritalStatus);
      expect(f.leisure).toContain(d.hobbies[0] ?? '');
      expect(f.seedRelation).toContain('sorghum');
      // The sampler names the person and never picks a pronoun for them: the validator checks pronouns against the sampled sex.
      for (const text of Object.values(f)) expect(text).not.toMatch(/\b(?:he|she|his|her|him)\b/i);
    }
    // The household clause reads each of the profile's household values, not the fallback.
    expect(new Set(drawn.map(({ attributes: a, demographics: d }, i) => composeFacets(a, d, seed, `k${i}`).family)).size).toBeGreaterThan(10);
    for (const { attributes: a, demographics: d } of drawn) expect(composeFacets(a, d, seed, 'k').family).not.toContain('household');
  });

  it('a related persona\'s facets are about the parent, not a text', () => {
    const a = sampleAttributes('seed', 1);
    const parent = { name: 'Amara Okafor', age: 34, occupation: 'pediatric nurse', locale: 'Lagos, Nigeria' };
    const f = composeRelatedFacets(a, 'neighbour', parent, 'k');
    expect(f.shortPersona).toContain('a next-door neighbour of Amara Okafor');
    expect(f.seedRelation).toContain('knows Amara through the same street');
    expect(f.professional).toContain(a.occupation);
  });

  it('salient terms skip stop words and rank by frequency', () => {
    expect(salientTerms('The river and the river bank flooded; the bank closed.', 2)).toEqual(['river', 'bank']);
  });
});
