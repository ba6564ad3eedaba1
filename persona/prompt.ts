import type { ChatMessage } from '../core/chat.ts';
import type { Demographics } from '../schemas/types.generated.ts';
import type { SampledAttributes } from './attributes.ts';
import { householdClause } from './compose.ts';

/** The demographics the prompt states, so the pronouns, the family facet and the leisure facet follow the record. */
export type DraftGrounding = Pick<Demographics, 'sex' | 'maritalStatus' | 'household' | 'hobbies'>;

export const PROMPT_VERSION = 'draft-v3';

export const RELATION_VERBS: Record<SampledAttributes['seedRelation'], string> = {
  READER: 'would read', WRITER: 'could have written', ENTHUSIAST: 'would love', CRITIC: 'would argue against', SUBJECT: 'is the kind of person described in',
};

/** The written facets as the draft call's JSON carries them; `relation` becomes the record's `seedRelation` facet. */
export interface FacetsOutput {
  shortPersona: string;
  professional: string;
  family: string;
  leisure: string;
  relation: string;
}

const text = (minLength: number, maxLength: number) => ({ type: 'string', minLength, maxLength }) as const;

/**
 * The model fills the description and the facets in one call; the attributes are fixed beforehand
 * (grounded generation). Every field is bounded, so a small model cannot ramble, and the order is the
 * order a grammar-constrained server makes the model write them: the description first, as before.
 */
export const DRAFT_OUTPUT_SCHEMA = {
  type: 'object',
  properties: {
    description: text(60, 420), shortPersona: text(20, 160), professional: text(30, 260), family: text(20, 220), leisure: text(20, 220), relation: text(20, 220),
  },
  required: ['description', 'shortPersona', 'professional', 'family', 'leisure', 'relation'],
  additionalProperties: false,
} as const;

/** The six bounded fields come to about 1,500 characters at most: some 400 tokens with the JSON around them. */
export const DRAFT_MAX_TOKENS = 480;

/** What the draft call asks for, in words: the system prompts of both draft kinds end with it; `relatedTo` says what the relation facet is about. */
export function facetsInstruction(relatedTo: string): string {
  return 'Answer with JSON: "description" (two or three sentences), "shortPersona" (one sentence that starts with "A" or "An" and the occupation, without the name, like "A pediatric nurse who ..."), '
    + `"professional" (their work), "family" (the people at home), "leisure" (free time), "relation" (one sentence on how they relate to ${relatedTo}). One or two sentences each, consistent with each other.`;
}

/**
 * Few-shot examples: the model continues the pattern it sees. They are kept in a fixed order and
 * before the variable part, so a server that caches the prompt prefix reuses them across requests;
 * validation rejects outputs that copy them.
 */
export const FEW_SHOT: readonly { attributes: SampledAttributes; grounding: DraftGrounding; seed: string; description: string; facets: FacetsOutput }[] = [
  {
    attributes: { name: 'Rosa Delgado', age: 41, occupation: 'hospital pharmacist', locale: 'Valencia, Spain', traits: ['meticulous', 'warm', 'skeptical'], seedRelation: 'READER' },
    grounding: { sex: 'female', maritalStatus: 'cohabiting', household: 'couple with children', hobbies: ['swimming', 'crime novels'] },
    seed: 'New guidelines change how antibiotics are prescribed for children with ear infections.',
    description: 'Rosa Delgado is a 41-year-old hospital pharmacist in Valencia who double-checks every pediatric dosage and reads new prescribing guidelines the week they appear. Warm with anxious parents but skeptical of hype, she keeps a notebook of drug interactions she has caught.',
    facets: {
      shortPersona: 'A meticulous hospital pharmacist in Valencia who reads every new pediatric prescribing guideline the week it appears.',
      professional: 'Rosa runs the children\'s dispensary of a public hospital, checks each dosage twice and trains the junior pharmacists on night shifts.',
      family: 'She shares a flat near the old riverbed with her partner, a music teacher, and their nine-year-old son, and calls her mother every Sunday.',
      leisure: 'On free evenings she swims at the municipal pool and reads crime novels on her small balcony.',
      relation: 'She would read the new antibiotic rules closely, because parents ask her about ear infections every week.',
    },
  },
  {
    attributes: { name: 'Kofi Asante', age: 67, occupation: 'retired bus driver', locale: 'Kumasi, Ghana', traits: ['talkative', 'frugal', 'nostalgic'], seedRelation: 'CRITIC' },
    grounding: { sex: 'male', maritalStatus: 'married', household: 'couple without children', hobbies: ['board games', 'music'] },
    seed: 'The city plans to replace its minibus routes with a new light-rail line.',
    description: 'Kofi Asante spent thirty years driving minibuses through Kumasi and, now retired at 67, argues at every community meeting that the new light rail will strand the neighborhoods his old routes served. Frugal and talkative, he still knows every stop by heart.',
    facets: {
      shortPersona: 'A retired minibus driver in Kumasi who fights the city\'s plan to replace his old routes with light rail.',
      professional: 'Kofi drove minibuses for three decades before retiring, and younger drivers at the central station still ask him for shortcuts.',
      family: 'He lives with his wife Akosua in the house they built together; they have no children, and his nephews visit on Sundays.',
      leisure: 'He plays draughts with old colleagues under a mango tree in the afternoons and listens to highlife records at night.',
      relation: 'He would argue against the light-rail plan, sure that it cuts off the stops his passengers relied on.',
    },
  },
];

/**
 * The seed text comes first and the person last: a small base model continues from what it read last,
 * and with the text last it tends to copy the text instead of describing the person.
 */
function describe(a: SampledAttributes, seed: string, g: DraftGrounding | null): string {
  return [
    `Text: ${seed}`, `Relation: someone who ${RELATION_VERBS[a.seedRelation]} the text`,
    `Name: ${a.name}`, `Age: ${a.age}`, ...(g ? [`Sex: ${g.sex}`] : []), `Occupation: ${a.occupation}`, `Locale: ${a.locale}`,
    ...(g ? [`Family: ${g.maritalStatus}, ${householdClause(g.household)}`, `Hobbies: ${g.hobbies.join(', ')}`] : []), `Traits: ${a.traits.join(', ')}`,
  ].join('\n');
}

/** `grounding`: the demographics a profile drew, when it drew them (null for a persona sampled without a profile). */
export function buildDraftMessages(attributes: SampledAttributes, seedText: string, grounding: DraftGrounding | null = null): ChatMessage[] {
  const messages: ChatMessage[] = [{
    role: 'system',
    content: `You write short, specific persona descriptions. Use exactly the given name, age, occupation and locale; show the traits; connect the person to the text. ${facetsInstruction('the text, naming what it is about, never "the text"')}`,
  }];
  for (const ex of FEW_SHOT) {
    messages.push({ role: 'user', content: describe(ex.attributes, ex.seed, ex.grounding) });
    messages.push({ role: 'assistant', content: JSON.stringify({ description: ex.description, ...ex.facets }) });
  }
  messages.push({ role: 'user', content: describe(attributes, seedText.slice(0, 1200), grounding) });
  return messages;
}
