import { describe, expect, it } from 'vitest';
import { OCCUPATIONS } from '../../../persona/attributes.ts';
import {
  applicableKinds, buildRelationMessages, chooseKinds, composeRelated, expansionCount, expansionSeeds, latticeCeiling, lineageOf, RELATION_KINDS, relationOf, relationPhrase,
  sampleRelatedAttributes, type RelationParent,
} from '../../../persona/relations.ts';
import { RELATION_KINDS as CONFIGURED_KINDS } from '../../../config/index.ts';
import type { Seed } from '../../../schemas/types.generated.ts';

const nurse: RelationParent = { name: 'Amara Okafor', age: 34, occupation: 'pediatric nurse', locale: 'Lagos, Nigeria' };
const engineer: RelationParent = { name: 'Luis Reyes', age: 41, occupation: 'software engineer', locale: 'Mexico City, Mexico' };
const fieldOf = (title: string) => OCCUPATIONS.find((o) => o.title === title)?.field;

describe('relation kinds', () => {
  it('are the kinds the configuration accepts (PERSONAHUB_RELATION_KINDS)', () => {
    expect([...CONFIGURED_KINDS]).toEqual([...RELATION_KINDS]);
  });

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

describe('relation prompts and expansion seeds', () => {
  const parent = { id: 'p'.repeat(32), description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who explains vaccination schedules to worried parents.', lineage: { depth: 0, rootSeedId: 'r'.repeat(32), parentPersonaId: null, relationKind: null }, ...nurse };

  it('renders each kind\'s prompt with the parent, the relation, its focus and the sampled person', () => {
    for (const kind of RELATION_KINDS) {
      const a = sampleRelatedAttributes(parent.id, nurse, kind, 0);
      const messages = buildRelationMessages(a, kind, nurse, parent.description);
      expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
      const user = messages[1]?.content ?? '';
      expect(user).toContain(`Other person: ${parent.description}`);
      expect(user).toContain(`Relation: ${a.name} is ${relationPhrase(kind, nurse)}`);
      expect(user).toMatch(/^Show: .+$/m);
      expect(user).toContain(`Name: ${a.name}\nAge: ${a.age}\nOccupation: ${a.occupation}\nLocale: ${a.locale}\nTraits: ${a.traits.join(', ')}`);
      expect(messages[0]?.content).toContain('"relation" (one sentence on how they relate to the other person, by name)');
    }
  });

  it('writes a related persona in sampler mode that names the person, the relation and the parent', () => {
    const a = sampleRelatedAttributes(parent.id, nurse, 'patient', 0);
    const text = composeRelated(a, 'patient', nurse, 'k');
    expect(text).toContain(a.name);
    expect(text).toContain(String(a.age));
    expect(text).toContain('a patient (or the parent of a young patient) of Amara Okafor, a pediatric nurse');
    expect(composeRelated(a, 'patient', nurse, 'k')).toBe(text);
  });

  it('chooses kinds reproducibly per persona, only applicable ones, at most as many as asked', () => {
    expect(chooseKinds('x', engineer, RELATION_KINDS, 2)).toEqual(chooseKinds('x', engineer, RELATION_KINDS, 2));
    expect(chooseKinds('x', engineer, RELATION_KINDS, 2)).toHaveLength(2);
    expect(chooseKinds('x', engineer, RELATION_KINDS, 20).sort()).toEqual(applicableKinds(engineer, RELATION_KINDS).sort());
    expect(chooseKinds('x', engineer, ['patient'], 2)).toEqual([]);
    const seen = new Set(Array.from({ length: 30 }, (_, i) => chooseKinds(`p${i}`, engineer, RELATION_KINDS, 1)[0]));
    expect(seen.size).toBeGreaterThan(3);
  });

  it('makes one seed per kind, keyed by (parent, kind), one level deeper, on the parent\'s root and text', () => {
    const seeds = expansionSeeds(parent, ['family', 'patient'], 7);
    expect(seeds.map((s) => s.id)).toEqual(expansionSeeds(parent, ['family', 'patient'], 99).map((s) => s.id));
    expect(new Set(seeds.map((s) => s.id)).size).toBe(2);
    expect(seeds[1]).toMatchObject({ text: parent.description, depth: 1, parentPersonaId: parent.id, rootSeedId: parent.lineage.rootSeedId, relationKind: 'patient', parent: nurse, createdAt: 7 });
    expect(relationOf(seeds[1] as Seed)).toEqual({ kind: 'patient', parentId: parent.id, parent: nurse });
    expect(lineageOf(seeds[1] as Seed)).toEqual({ depth: 1, rootSeedId: parent.lineage.rootSeedId, parentPersonaId: parent.id, relationKind: 'patient' });
  });

  it('reads a source seed as the root of its own lattice, and an unknown kind as no relation', () => {
    const source: Seed = { id: 's'.repeat(32), text: 't', source: 'f', lineNumber: 1, depth: 0, parentPersonaId: null, rootSeedId: null, relationKind: null, parent: null, target: null, createdAt: 0 };
    expect(relationOf(source)).toBeUndefined();
    expect(lineageOf(source)).toEqual({ depth: 0, rootSeedId: source.id, parentPersonaId: null, relationKind: null });
    const [seed] = expansionSeeds(parent, ['family'], 0);
    expect(relationOf({ ...(seed as Seed), relationKind: 'landlord' })).toBeUndefined();
  });
});
