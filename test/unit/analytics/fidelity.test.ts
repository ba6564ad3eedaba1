import { describe, expect, it } from 'vitest';
import { divergences, fidelity, marginalShares, OTHER_VALUES, renderFidelity, type FidelityPersona } from '../../../analytics/fidelity.ts';
import { parseWhere } from '../../../persona/filter.ts';
import { loadProfile } from '../../../persona/profile.ts';
import { createSampler, samplePersona } from '../../../persona/sampler.ts';

const profile = loadProfile('global');

function population(n: number, where = ''): FidelityPersona[] {
  const sampler = createSampler(profile, parseWhere(where));
  return Array.from({ length: n }, (_, i) => {
    const p = samplePersona(sampler, `fidelity-${i}`, 0);
    return { age: p.attributes.age, occupation: p.attributes.occupation, seedRelation: p.attributes.seedRelation, demographics: p.demographics };
  });
}

const MALE_DOMINATED = ['craft and trades', 'machine operators'];

/**
 * The Nemotron-Personas-Korea failure, planted: no woman in the trades. Each woman there swaps sex with
 * a man elsewhere, so both marginals (sex, occupation group) stay exactly as drawn and only the joint moves.
 */
function plantSkew(personas: FidelityPersona[]): number {
  const men = personas.filter((p) => p.demographics?.sex === 'male' && !MALE_DOMINATED.includes(p.demographics.occupationGroup));
  let swapped = 0;
  for (const p of personas) {
    const d = p.demographics;
    const partner = men[swapped];
    if (!d || d.sex !== 'female' || !MALE_DOMINATED.includes(d.occupationGroup) || !partner?.demographics) continue;
    p.demographics = { ...d, sex: 'male' };
    partner.demographics = { ...partner.demographics, sex: 'female' };
    swapped += 1;
  }
  return swapped;
}

describe('population fidelity', () => {
  it('measures TVD and JSD as defined', () => {
    const p = new Map([['a', 0.5], ['b', 0.5]]);
    expect(divergences(p, p)).toEqual({ tvd: 0, jsd: 0 });
    const disjoint = divergences(new Map([['a', 1]]), new Map([['b', 1]]));
    expect(disjoint.tvd).toBeCloseTo(1, 12);
    expect(disjoint.jsd).toBeCloseTo(1, 12);
    expect(divergences(p, new Map([['a', 0.8], ['b', 0.2]])).tvd).toBeCloseTo(0.3, 12);
  });

  it('flags the pair with a planted skew in its joint distribution, and nothing in the population as drawn', () => {
    const personas = population(20_000);
    const clean = fidelity(profile, personas);
    expect(clean.pairs.filter((p) => p.flagged)).toEqual([]);
    expect(clean.marginals.every((m) => m.coverage === 1 && m.tvd < 0.03)).toBe(true);

    expect(plantSkew(personas)).toBeGreaterThan(500);
    const skewed = fidelity(profile, personas);
    // The marginals did not move...
    expect(skewed.marginals).toEqual(clean.marginals);
    // ...but the joint did, and the report puts it first.
    expect(skewed.pairs[0]?.pair).toEqual(['sex', 'occupationGroup']);
    expect(skewed.pairs[0]?.flagged).toBe(true);
    const flagged = skewed.pairs.filter((p) => p.flagged).map((p) => p.pair.join(' × '));
    expect(flagged.every((p) => p.startsWith('sex × ') || p.endsWith(' × sex'))).toBe(true);
    expect(renderFidelity(skewed)).toContain('| sex × occupationGroup |');
    // The figures docs/QUALITY.md quotes.
    console.log(`planted skew, 20000 personas: clean worst pair ${clean.pairs[0]?.pair.join(' × ')} chi-square ${clean.pairs[0]?.chiSquare}/${clean.pairs[0]?.critical}; skewed: ${skewed.pairs.slice(0, 3).map((p) => `${p.pair.join(' × ')} TVD ${p.tvd} JSD ${p.jsd} chi-square ${p.chiSquare}/${p.critical}`).join('; ')}; flagged ${flagged.length}`);
  });

  it('compares a targeted job with the conditional target, not the whole population', () => {
    const where = 'country=Nigeria,educationLevel=tertiary';
    const personas = population(5000, where);
    expect(fidelity(profile, personas, parseWhere(where), where).pairs.filter((p) => p.flagged)).toEqual([]);
    // Against the unconditioned population the same personas are far off.
    const unconditioned = fidelity(profile, personas);
    expect(unconditioned.marginals.find((m) => m.attribute === 'country')?.tvd).toBeGreaterThan(0.9);
    expect(unconditioned.pairs.some((p) => p.flagged)).toBe(true);
  });

  it('charts each attribute observed beside target: the top values, the rest pooled, shares summing to one on both sides', () => {
    const personas = population(400);
    const shares = marginalShares(profile, personas, [], 5);
    expect(shares.map((m) => m.attribute)).toEqual(fidelity(profile, personas).marginals.map((m) => m.attribute));
    for (const m of shares) {
      expect(m.values.length).toBeLessThanOrEqual(6);
      expect(m.values.reduce((s, v) => s + v.observed, 0)).toBeCloseTo(1, 2);
      expect(m.values.reduce((s, v) => s + v.target, 0)).toBeCloseTo(1, 2);
    }
    const city = shares.find((m) => m.attribute === 'city');
    expect(city?.values.at(-1)?.value).toBe(OTHER_VALUES);
    // A persona with a value the target rules out shows it, with a target share of 0.
    const odd = marginalShares(profile, [{ ...(personas[0] as FidelityPersona), occupation: 'lighthouse keeper of the moon' }], [], 50);
    expect(odd.find((m) => m.attribute === 'occupation')?.values).toContainEqual({ value: 'lighthouse keeper of the moon', observed: 1, target: 0 });
  });
});
