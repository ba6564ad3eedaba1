import type { ChatMessage } from '../core/chat.ts';
import type { SampledAttributes } from './attributes.ts';

export const PROMPT_VERSION = 'draft-v2';

export const RELATION_VERBS: Record<SampledAttributes['seedRelation'], string> = {
  READER: 'would read', WRITER: 'could have written', ENTHUSIAST: 'would love', CRITIC: 'would argue against', SUBJECT: 'is the kind of person described in',
};

/** The model fills one field; the attributes are fixed beforehand (grounded generation). Bounded, so a small model cannot ramble. */
export const DRAFT_OUTPUT_SCHEMA = {
  type: 'object',
  properties: { description: { type: 'string', minLength: 60, maxLength: 420 } },
  required: ['description'],
  additionalProperties: false,
} as const;

/**
 * Few-shot examples: a base model continues the pattern it sees. They are kept in a fixed order
 * and before the variable part, so a server that caches the prompt prefix reuses them across
 * requests; validation rejects outputs that copy them.
 */
export const FEW_SHOT: readonly { attributes: SampledAttributes; seed: string; description: string }[] = [
  {
    attributes: { name: 'Rosa Delgado', age: 41, occupation: 'hospital pharmacist', locale: 'Valencia, Spain', traits: ['meticulous', 'warm', 'skeptical'], seedRelation: 'READER' },
    seed: 'New guidelines change how antibiotics are prescribed for children with ear infections.',
    description: 'Rosa Delgado is a 41-year-old hospital pharmacist in Valencia who double-checks every pediatric dosage and reads new prescribing guidelines the week they appear. Warm with anxious parents but skeptical of hype, she keeps a notebook of drug interactions she has caught.',
  },
  {
    attributes: { name: 'Kofi Asante', age: 67, occupation: 'retired bus driver', locale: 'Kumasi, Ghana', traits: ['talkative', 'frugal', 'nostalgic'], seedRelation: 'CRITIC' },
    seed: 'The city plans to replace its minibus routes with a new light-rail line.',
    description: 'Kofi Asante spent thirty years driving minibuses through Kumasi and, now retired at 67, argues at every community meeting that the new light rail will strand the neighborhoods his old routes served. Frugal and talkative, he still knows every stop by heart.',
  },
];

/**
 * The seed text comes first and the person last: a small base model continues from what it read last,
 * and with the text last it tends to copy the text instead of describing the person.
 */
function describe(a: SampledAttributes, seed: string): string {
  return [
    `Text: ${seed}`, `Relation: someone who ${RELATION_VERBS[a.seedRelation]} the text`,
    `Name: ${a.name}`, `Age: ${a.age}`, `Occupation: ${a.occupation}`, `Locale: ${a.locale}`, `Traits: ${a.traits.join(', ')}`,
  ].join('\n');
}

export function buildDraftMessages(attributes: SampledAttributes, seedText: string): ChatMessage[] {
  const messages: ChatMessage[] = [{
    role: 'system',
    content: 'You write short, specific persona descriptions. Use exactly the given name, age, occupation and locale; show the traits; connect the person to the text. Answer with JSON {"description": "..."}.',
  }];
  for (const ex of FEW_SHOT) {
    messages.push({ role: 'user', content: describe(ex.attributes, ex.seed) });
    messages.push({ role: 'assistant', content: JSON.stringify({ description: ex.description }) });
  }
  messages.push({ role: 'user', content: describe(attributes, seedText.slice(0, 1200)) });
  return messages;
}
