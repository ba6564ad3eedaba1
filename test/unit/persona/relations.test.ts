import { describe, expect, it } from 'vitest';
import { OCCUPATIONS } from '../../../persona/attributes.ts';
import { applicableKinds, expansionCount, latticeCeiling, RELATION_KINDS, relationPhrase, sampleRelatedAttributes, type RelationParent } from '../../../persona/relations.ts';

const nurse: RelationParent = { name: 'Amara Okafor', age: 34, occupation: 'pediatric nurse', locale: 'Lagos, Nigeria' };
const engineer: RelationParent = { name: 'Luis Reyes', age: 41, occupation: 'software engineer', locale: 'Mexico City, Mexico' };
const fieldOf = (title: string) => OCCUPATIONS.find((o) => o.title === title)?.field;

describe('relation kinds', () => {
  it('offers a kind only to a persona who can have it', () => {
    expect(applicableKinds(nurse, RELATION_KINDS)).toContain('patient');
    expect(applicableKinds(engineer, RELATION_KINDS)).not.toContain('patient');
    expect(applicableKinds(engineer, RELATION_KINDS)).not.toContain('student');
    expect(applicableKinds({ ...engineer, occupation: 'high school chemistry teacher' }, RELATION_KINDS)).toContain('student');
    expect(applicableKinds({ ...nurse, age: 70 }, ['mentor', 'family'])).toEqual(['family']);
  });

  it('grounds the related person on the parent: locale, surname for family, field for colleagues, older mentors', () => {
    for (let i = 0; i < 50; i += 1) {
      const relative = sampleRelatedAttributes('p1', nurse, 'family', i);
      expect(relative.locale).toBe(nurse.locale);
      expect(relative.name.endsWith(' Okafor')).toBe(true);
      const colleague = sampleRelatedAttributes('p1', engineer, 'colleague', i);
      expect(fieldOf(colleague.occupation)).toBe('technology');
      const mentor = sampleRelatedAttributes('p1', engineer, 'mentor', i);
      expect(mentor.age).toBeGreaterThanOrEqual(engineer.age + 10);
      for (const a of [relative, colleague, mentor, sampleRelatedAttributes('p1', nurse, 'patient', i)]) {
        const o = OCCUPATIONS.find((x) => x.title === a.occupation);
        expect(a.age).toBeGreaterThanOrEqual(Math.max(18, o?.minAge ?? 0));
        expect(a.age).toBeLessThanOrEqual(Math.min(92, o?.maxAge ?? 200));
        expect(new Set(a.traits).size).toBe(3);
      }
    }
  });

  it('is deterministic per (parent, kind, index) and varies across indexes', () => {
    expect(sampleRelatedAttributes('p1', nurse, 'neighbour', 0)).toEqual(sampleRelatedAttributes('p1', nurse, 'neighbour', 0));
    const names = new Set(Array.from({ length: 20 }, (_, i) => sampleRelatedAttributes('p1', nurse, 'neighbour', i).name));
    expect(names.size).toBeGreaterThan(10);
  });

  it('names the relation and the parent in the prompt line', () => {
    expect(relationPhrase('patient', nurse)).toBe('a patient (or the parent of a young patient) of Amara Okafor (34, pediatric nurse, Lagos, Nigeria)');
  });
});

describe('expansion bounds', () => {
  const bounds = { maxDepth: 2, perPersona: 2, perRoot: 5 };

  it('stops at the maximum depth and when the root\'s budget is spent', () => {
    expect(expansionCount(0, 5, bounds)).toBe(2);
    expect(expansionCount(1, 5, bounds)).toBe(2);
    expect(expansionCount(2, 5, bounds)).toBe(0);
    expect(expansionCount(1, 1, bounds)).toBe(1);
    expect(expansionCount(0, 0, bounds)).toBe(0);
  });

  it('bounds a root\'s lattice by the geometric sum and the budget', () => {
    expect(latticeCeiling({ maxDepth: 2, perPersona: 2, perRoot: 100 })).toBe(6);
    expect(latticeCeiling(bounds)).toBe(5);
    expect(latticeCeiling({ maxDepth: 6, perPersona: 3, perRoot: 1_000_000 })).toBe(3 + 9 + 27 + 81 + 243 + 729);
  });
});
