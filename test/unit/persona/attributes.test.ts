import { describe, expect, it } from 'vitest';
import { OCCUPATIONS, sampleAttributes } from '../../../persona/attributes.ts';

describe('attribute sampling', () => {
  it('is deterministic per (seed, index) and varies across them', () => {
    expect(sampleAttributes('s1', 0)).toEqual(sampleAttributes('s1', 0));
    const many = Array.from({ length: 200 }, (_, i) => sampleAttributes(`seed-${i}`, 0));
    expect(new Set(many.map((a) => a.occupation)).size).toBeGreaterThan(20);
    expect(new Set(many.map((a) => a.locale)).size).toBeGreaterThan(15);
  });

  it('never samples an age implausible for the occupation', () => {
    for (let i = 0; i < 500; i += 1) {
      const a = sampleAttributes(`s${i}`, i % 3);
      const spec = OCCUPATIONS.find((o) => o.title === a.occupation);
      expect(spec).toBeDefined();
      expect(a.age).toBeGreaterThanOrEqual(spec?.minAge ?? 0);
      expect(a.age).toBeLessThanOrEqual(spec?.maxAge ?? 200);
      expect(new Set(a.traits).size).toBe(3);
    }
  });
});
