import type { ChatMessage } from '../core/chat.ts';
import { OCCUPATIONS, pickTraits, sampleName, type Occupation, type OccupationField, type SampledAttributes } from './attributes.ts';
import type { Facets, Lineage, Seed } from '../schemas/types.generated.ts';
import { composeFacets } from './compose.ts';
import { facetsInstruction } from './prompt.ts';
import { cityOf, hashId, pick, pickDistinct, rng, withArticle } from './text.ts';

/**
 * Persona-to-Persona (PersonaHub §2.2): from a persona, infer people in a close relationship with it.
 * Each relation kind says who can have it (a patient needs a carer), and how the related person's
 * attributes follow from the parent's (a colleague shares the occupation's field; a mentor is older;
 * family shares a surname and a home region), so a derived persona is grounded, not free-floating.
 */
export const RELATION_KINDS = ['family', 'colleague', 'client', 'patient', 'mentor', 'student', 'neighbour', 'rival', 'community'] as const;
export type RelationKind = (typeof RELATION_KINDS)[number];

/** The parent persona as far as relations need it. */
export interface RelationParent {
  name: string;
  age: number;
  occupation: string;
  locale: string;
}

const occupationOf = (title: string): Occupation | undefined => OCCUPATIONS.find((o) => o.title === title);

/** Fields whose workers have patients, clients or students. */
const CARE_FIELDS: ReadonlySet<OccupationField> = new Set(['health']);
const CLIENT_FIELDS: ReadonlySet<OccupationField> = new Set(['finance', 'hospitality', 'food', 'trades', 'arts', 'civic', 'media', 'transport', 'technology']);
const TEACHING = /teacher|librarian|instructor|director|curator|professor|schoolteacher/;

interface KindSpec {
  /** How the prompt names the relation: "<name> is <phrase> <parent>". */
  phrase: string;
  /** What the description should show of the relation: the kind's own prompt line. */
  focus: string;
  /** Whether a persona of this occupation and age can have a person of this kind. */
  applies: (parent: RelationParent, occupation: Occupation | undefined) => boolean;
  /** Age range of the related person, from the parent's age (clamped to 18-92 for adults). */
  ages: (parentAge: number) => readonly [number, number];
  /** Which occupations the related person may have. */
  occupations: (occupation: Occupation | undefined) => readonly Occupation[];
  sameSurname?: boolean;
}

const anyAdult = (): readonly Occupation[] => OCCUPATIONS;
const sameField = (o: Occupation | undefined): readonly Occupation[] => {
  const peers = o ? OCCUPATIONS.filter((x) => x.field === o.field && x.title !== o.title) : [];
  return peers.length > 0 ? peers : o ? [o] : OCCUPATIONS;
};

export const RELATIONS: Record<RelationKind, KindSpec> = {
  family: { phrase: 'a close relative of', focus: 'how they are related and what the family shares or argues about', applies: () => true, ages: (a) => [Math.max(18, a - 35), a + 30], occupations: anyAdult, sameSurname: true },
  colleague: { phrase: 'a colleague of', focus: 'the work they share and how they differ on the job', applies: (_p, o) => o !== undefined && o.field !== 'home', ages: (a) => [a - 15, a + 15], occupations: (o) => (o ? [o, ...sameField(o)] : OCCUPATIONS) },
  client: { phrase: 'a regular client of', focus: 'what they come to the other person for and what they expect', applies: (_p, o) => o !== undefined && CLIENT_FIELDS.has(o.field), ages: () => [20, 85], occupations: anyAdult },
  // A patient of a paediatric nurse is a child; personas are adults, so it is the child's parent who speaks.
  patient: { phrase: 'a patient (or the parent of a young patient) of', focus: 'the care they receive and what worries them', applies: (_p, o) => o !== undefined && CARE_FIELDS.has(o.field), ages: (a) => [20, Math.max(45, a + 20)], occupations: anyAdult },
  mentor: { phrase: 'a long-time mentor of', focus: 'what they taught the other person and what they still disagree on', applies: (p) => p.age <= 65, ages: (a) => [a + 10, a + 30], occupations: sameField },
  // "is a student of" would read as a job ("is a student") that contradicts the person's own occupation.
  student: { phrase: 'taught by', focus: 'what they are learning from the other person and what they hope to become', applies: (_p, o) => o !== undefined && (TEACHING.test(o.title) || o.field === 'academia' || o.title === 'yoga instructor'), ages: () => [18, 30], occupations: (o) => OCCUPATIONS.filter((x) => x.field === 'academia' || x.minAge <= 18 || x === o) },
  neighbour: { phrase: 'a next-door neighbour of', focus: 'their daily encounters and what they know of each other', applies: () => true, ages: () => [18, 90], occupations: anyAdult },
  rival: { phrase: 'a professional rival of', focus: 'what they compete over and how they see each other', applies: (_p, o) => o !== undefined && o.field !== 'home', ages: (a) => [a - 10, a + 10], occupations: (o) => (o ? [o, ...sameField(o)] : OCCUPATIONS) },
  community: { phrase: 'a fellow member of a community group with', focus: 'the group they share and the role each plays in it', applies: () => true, ages: () => [18, 90], occupations: anyAdult },
};

/** The kinds this parent can have, in the configured order (a kind listed but not applicable is left out). */
export function applicableKinds(parent: RelationParent, kinds: readonly RelationKind[]): RelationKind[] {
  const occupation = occupationOf(parent.occupation);
  return kinds.filter((k) => RELATIONS[k].applies(parent, occupation));
}

/**
 * Attributes of the person of `kind` related to `parent`: deterministic in (parent id, kind, index), in
 * the kind's age range intersected with what the chosen occupation allows, same locale (everyone in a
 * close relationship here shares a city), the family's surname for relatives.
 */
export function sampleRelatedAttributes(parentId: string, parent: RelationParent, kind: RelationKind, index: number): SampledAttributes {
  const random = rng(`relation:${parentId}:${kind}:${index}`);
  const spec = RELATIONS[kind];
  const [lo, hi] = spec.ages(parent.age);
  const low = Math.max(18, Math.min(lo, 92));
  const high = Math.max(low, Math.min(92, hi));
  const candidates = spec.occupations(occupationOf(parent.occupation)).filter((o) => o.maxAge >= low && o.minAge <= high);
  const occupation = pick(random, candidates.length > 0 ? candidates : OCCUPATIONS);
  const ageLow = Math.max(low, occupation.minAge);
  const ageHigh = Math.max(ageLow, Math.min(high, occupation.maxAge));
  const surname = parent.name.split(' ').slice(1).join(' ');
  return {
    name: sampleName(random, spec.sameSurname && surname ? surname : undefined, parent.name.split(' ')[0]),
    age: ageLow + Math.floor(random() * (ageHigh - ageLow + 1)),
    occupation: occupation.title,
    locale: parent.locale,
    traits: pickTraits(random, 3),
    seedRelation: 'SUBJECT',
  };
}

/** The relation's line in the draft prompt, in place of the seed-text relation. */
export function relationPhrase(kind: RelationKind, parent: RelationParent): string {
  return `${RELATIONS[kind].phrase} ${parent.name} (${parent.age}, ${parent.occupation}, ${parent.locale})`;
}

export interface ExpansionBounds {
  /** Lattice depth of the deepest derived persona (the seed's own personas are depth 0). */
  maxDepth: number;
  /** Derived personas per parent. */
  perPersona: number;
  /** Derived personas per root seed, over the whole lattice below it. */
  perRoot: number;
}

/**
 * How many related personas to derive from a persona at `depth`, given what the root's budget has
 * left: 0 at the maximum depth or with the budget spent. With these bounds the lattice below one root
 * holds at most min(perRoot, perPersona + perPersona² + … + perPersona^maxDepth) derived personas.
 */
export function expansionCount(depth: number, budgetLeft: number, b: ExpansionBounds): number {
  if (depth >= b.maxDepth) return 0;
  return Math.max(0, Math.min(b.perPersona, budgetLeft));
}

/** The most derived personas one root can reach under the bounds (for docs, tests and sizing). */
export function latticeCeiling(b: ExpansionBounds): number {
  let total = 0;
  for (let d = 1; d <= b.maxDepth; d += 1) total += b.perPersona ** d;
  return Math.min(total, b.perRoot);
}

/** Where a persona drafted from `seed` sits in the lattice: a source seed's personas are its roots, at depth 0. */
export function lineageOf(seed: Pick<Seed, 'id' | 'depth' | 'parentPersonaId' | 'rootSeedId' | 'relationKind'>): Lineage {
  if (seed.parentPersonaId === null) return { depth: 0, rootSeedId: seed.id, parentPersonaId: null, relationKind: null };
  return { depth: seed.depth, rootSeedId: seed.rootSeedId ?? seed.id, parentPersonaId: seed.parentPersonaId, relationKind: seed.relationKind };
}

/** The relation kinds a persona expands into: `count` of those that apply to it, chosen reproducibly per persona. */
export function chooseKinds(personaId: string, parent: RelationParent, kinds: readonly RelationKind[], count: number): RelationKind[] {
  const applicable = applicableKinds(parent, kinds);
  return pickDistinct(rng(`kinds:${personaId}`), applicable, Math.min(count, applicable.length));
}

/** The parent of an expansion seed, as the seed carries it. */
export interface ExpandingPersona extends RelationParent {
  id: string;
  description: string;
  lineage: Lineage;
}

/**
 * Persona-to-Persona as events: one expansion seed per kind, keyed by (parent, kind), so asking again
 * yields the same seeds (and the same personas downstream), never more. The seed's text is the
 * parent's description: what the related persona is grounded on besides the attributes.
 */
export function expansionSeeds(parent: ExpandingPersona, kinds: readonly RelationKind[], now: number): Seed[] {
  return kinds.map((kind) => ({
    id: hashId('expand', parent.id, kind),
    text: parent.description,
    source: `lattice:${parent.id}`,
    lineNumber: null,
    depth: parent.lineage.depth + 1,
    parentPersonaId: parent.id,
    rootSeedId: parent.lineage.rootSeedId,
    relationKind: kind,
    parent: { name: parent.name, age: parent.age, occupation: parent.occupation, locale: parent.locale },
    target: null,
    createdAt: now,
  }));
}

/** An expansion seed's relation, or undefined for a source seed (or one naming a kind this version does not know). */
export function relationOf(seed: Seed): { kind: RelationKind; parentId: string; parent: RelationParent } | undefined {
  const kind = RELATION_KINDS.find((k) => k === seed.relationKind);
  if (!kind || seed.parentPersonaId === null || seed.parent === null) return undefined;
  return { kind, parentId: seed.parentPersonaId, parent: seed.parent };
}

export const RELATION_PROMPT_VERSION = 'relate-v2';

/**
 * The draft prompt for a related persona: the parent (attributes and description) first, the relation
 * and its kind's focus, then the person, whose attributes were sampled to fit the relation.
 */
export function buildRelationMessages(a: SampledAttributes, kind: RelationKind, parent: RelationParent, parentDescription: string): ChatMessage[] {
  const spec = RELATIONS[kind];
  return [
    {
      role: 'system',
      content: `You write short, specific persona descriptions of a person in a close relationship with another person. Use exactly the given name, age, occupation and locale; show the traits; say who the other person is to them. ${facetsInstruction('the other person, by name')}`,
    },
    {
      role: 'user',
      content: [
        `Other person: ${parentDescription.slice(0, 800)}`,
        `Relation: ${a.name} is ${relationPhrase(kind, parent)}`,
        `Show: ${spec.focus}`,
        `Name: ${a.name}`, `Age: ${a.age}`, `Occupation: ${a.occupation}`, `Locale: ${a.locale}`, `Traits: ${a.traits.join(', ')}`,
      ].join('\n'),
    },
  ];
}

/** Sampler mode: a related persona without a model, coherent by construction. */
export function composeRelated(a: SampledAttributes, kind: RelationKind, parent: RelationParent, key: string): string {
  const random = rng(`compose-related:${key}`);
  const [t1, t2] = a.traits;
  const opener = pick(random, [
    `${a.name} is ${a.age} and works as ${withArticle(a.occupation)} in ${cityOf(a.locale)}`,
    `${a.name}, ${a.age}, works as ${withArticle(a.occupation)} in ${cityOf(a.locale)}`,
  ]);
  // The parent's job only when it is another one: "a bank loan officer ... of X, a bank loan officer" says it twice.
  const parentJob = parent.occupation === a.occupation ? ', in the same line of work' : `, ${withArticle(parent.occupation)}`;
  return `${opener} and is ${RELATIONS[kind].phrase} ${parent.name}${parentJob}. ${capitalize(t1 ?? 'thoughtful')} and ${t2 ?? 'curious'}, the two know each other through ${KIND_CONTEXT[kind]}.`;
}

/** Sampler mode's facets of a related persona: the composed ones, with the short persona and the relation facet about the parent, not a text. */
export function composeRelatedFacets(a: SampledAttributes, kind: RelationKind, parent: RelationParent, key: string): Facets {
  const [t1 = 'thoughtful'] = a.traits;
  return {
    ...composeFacets(a, null, '', key),
    shortPersona: `${capitalize(withArticle(`${t1} ${a.occupation}`))} in ${cityOf(a.locale)} who is ${RELATIONS[kind].phrase} ${parent.name}.`,
    seedRelation: `${firstName(a.name)} is ${RELATIONS[kind].phrase} ${parent.name} and knows ${firstName(parent.name)} through ${KIND_CONTEXT[kind]}.`,
  };
}

const KIND_CONTEXT: Record<RelationKind, string> = {
  family: 'family gatherings and shared history', colleague: 'long shifts on the same job', client: 'years of regular appointments',
  patient: 'visits and follow-up care', mentor: 'years of advice given and taken', student: 'lessons and office hours',
  neighbour: 'the same street and its daily routines', rival: 'competing for the same work', community: 'meetings of the group they both belong to',
};

const capitalize = (x: string): string => x.charAt(0).toUpperCase() + x.slice(1);
const firstName = (name: string): string => name.split(' ')[0] ?? name;
