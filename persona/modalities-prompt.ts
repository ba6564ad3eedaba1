import type { ChatMessage } from '../core/chat.ts';
import type { Persona } from '../schemas/types.generated.ts';
import { householdClause } from './compose.ts';
import { FEW_SHOT } from './prompt.ts';

/**
 * LLM-written modalities: one structured call per persona, made by the enrich stage where a model is
 * configured, grounded on everything the persona already says. Life stage and Big Five are not asked
 * for: they follow from the age and the traits (persona/modalities.ts), and a small model's numbers
 * would be noise.
 */
export const MODALITIES_PROMPT_VERSION = 'modalities-v1';

const text = (minLength: number, maxLength: number) => ({ type: 'string', minLength, maxLength }) as const;
const list = (minItems: number, maxItems: number, maxLength: number) => ({ type: 'array', items: text(2, maxLength), minItems, maxItems }) as const;

/**
 * Every field bounded, in length and in count, so the whole answer stays under about 1,900 characters
 * (some 500 tokens): what a 1.5B model on two cores writes in well under a minute.
 */
export const MODALITIES_OUTPUT_SCHEMA = {
  type: 'object',
  properties: {
    backstory: text(60, 300), speakingStyle: text(20, 140), habits: list(2, 3, 60), goals: list(1, 2, 80), values: list(2, 3, 30),
    mediaDiet: list(2, 3, 50), appearance: text(30, 180), imagePrompt: text(40, 220), settings: list(2, 3, 50), routines: list(1, 2, 140),
  },
  required: ['backstory', 'speakingStyle', 'habits', 'goals', 'values', 'mediaDiet', 'appearance', 'imagePrompt', 'settings', 'routines'],
  additionalProperties: false,
} as const;

/** Room for the longest answer the schema allows (about 1,900 characters, some 500 tokens) and the JSON around it. */
export const MODALITIES_MAX_TOKENS = 640;

/** The modalities the model writes, as the enrich stage's parser types them. */
export interface ModalitiesOutput {
  backstory: string;
  speakingStyle: string;
  habits: string[];
  goals: string[];
  values: string[];
  mediaDiet: string[];
  appearance: string;
  imagePrompt: string;
  settings: string[];
  routines: string[];
}

const SYSTEM = 'You add detail to a persona for a synthetic-data corpus. Stay consistent with every given fact (name, age, sex, occupation, place, family, traits) and contradict none; the example is another person, so take nothing from it but the form. '
  + 'Answer with JSON: "backstory" (two or three sentences of their past), "speakingStyle" (how they talk), "habits", "goals", "values" (short words), "mediaDiet" (what they read, watch or listen to), '
  + '"appearance" (what they look like), "imagePrompt" (a photo prompt showing them at work or at home, without their name), "settings" (places they spend time), "routines" (a weekday, a weekend). Lists hold short phrases.';

/** The persona as the prompt states it: attributes, then whatever text and demographics it has. */
function describe(p: Pick<Persona, 'name' | 'age' | 'occupation' | 'locale' | 'traits' | 'description' | 'demographics' | 'facets'>): string {
  const d = p.demographics;
  const f = p.facets;
  return [
    `Name: ${p.name}`, `Age: ${p.age}`, ...(d ? [`Sex: ${d.sex}`] : []), `Occupation: ${p.occupation}`, `Locale: ${p.locale}`, `Traits: ${p.traits.join(', ')}`,
    ...(d ? [`Family: ${d.maritalStatus}, ${householdClause(d.household)}`, `Hobbies: ${d.hobbies.join(', ')}`, `Languages: ${d.languages.join(', ')}`] : []),
    `Description: ${p.description.slice(0, 800)}`,
    ...(f ? [`Work: ${f.professional}`, `Home: ${f.family}`, `Free time: ${f.leisure}`] : []),
  ].join('\n');
}

/** One worked example, the first draft few-shot persona's, so the answer's shape and register are shown, not only described. */
const EXAMPLE = FEW_SHOT[0];
const EXAMPLE_MODALITIES: ModalitiesOutput = {
  backstory: 'Rosa grew up above her parents\' corner shop in Albacete and moved to Valencia to study pharmacy. A dosing error she caught in her first year made her the one colleagues ask to check a child\'s prescription.',
  speakingStyle: 'Calm and precise; she explains doses with her hands and asks one more question than anyone expects.',
  habits: ['rechecks every pediatric dose twice', 'swims before the early shift'],
  goals: ['lead the hospital\'s medication safety committee'],
  values: ['care', 'accuracy', 'honesty'],
  mediaDiet: ['pharmacology newsletters', 'crime novels', 'morning radio news'],
  appearance: 'A woman of forty-one with short dark hair, a calm, watchful face and quick hands.',
  imagePrompt: 'Documentary photo of a pharmacist in her forties checking a child\'s prescription at a hospital dispensary counter, Valencia, soft daylight, 35mm',
  settings: ['hospital dispensary', 'municipal pool', 'balcony at home'],
  routines: ['Weekdays start with a swim, then the dispensary from eight until four.', 'Sunday lunch with her family and a call to her mother.'],
};

export function buildModalitiesMessages(p: Parameters<typeof describe>[0]): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: SYSTEM }];
  if (EXAMPLE) {
    messages.push({ role: 'user', content: describe({ ...EXAMPLE.attributes, description: EXAMPLE.description, demographics: null, facets: { ...EXAMPLE.facets, seedRelation: EXAMPLE.facets.relation } }) });
    messages.push({ role: 'assistant', content: JSON.stringify(EXAMPLE_MODALITIES) });
  }
  messages.push({ role: 'user', content: describe(p) });
  return messages;
}

/**
 * A bounded string the grammar closed mid-sentence ("..., but he still") cut back to its last full
 * sentence, when it has one; a phrase with no sentence end at all (a list item) is left as it is.
 */
export function toLastSentence(text: string): string {
  const t = text.trim();
  if (/[.!?]["')]?$/.test(t)) return t;
  const end = Math.max(t.lastIndexOf('. '), t.lastIndexOf('! '), t.lastIndexOf('? '));
  return end > 0 ? t.slice(0, end + 1) : t;
}
