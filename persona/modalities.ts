import type { BigFive, Enrichment, LifeStage, Persona } from '../schemas/types.generated.ts';
import { cityOf, pickDistinct, rng } from './text.ts';

export function lifeStageFor(age: number): LifeStage {
  if (age < 30) return 'YOUNG_ADULT';
  if (age < 45) return 'ADULT';
  if (age < 65) return 'MIDDLE_AGED';
  return 'SENIOR';
}

/** Trait words nudge the Big Five away from the population mean, so scores agree with the text. */
const TRAIT_EFFECTS: Record<string, Partial<BigFive>> = {
  curious: { openness: 0.2 }, idealistic: { openness: 0.15 }, spontaneous: { openness: 0.1, conscientiousness: -0.1 },
  meticulous: { conscientiousness: 0.2 }, organized: { conscientiousness: 0.2 }, frugal: { conscientiousness: 0.1 }, restless: { conscientiousness: -0.1, neuroticism: 0.1 },
  sociable: { extraversion: 0.2 }, outspoken: { extraversion: 0.15 }, playful: { extraversion: 0.1 }, private: { extraversion: -0.2 }, 'soft-spoken': { extraversion: -0.15 }, introspective: { extraversion: -0.1, openness: 0.1 },
  warm: { agreeableness: 0.2 }, generous: { agreeableness: 0.2 }, patient: { agreeableness: 0.1, neuroticism: -0.1 }, blunt: { agreeableness: -0.15 }, sarcastic: { agreeableness: -0.1 }, competitive: { agreeableness: -0.1 }, stubborn: { agreeableness: -0.1 },
  anxious: { neuroticism: 0.25 }, cautious: { neuroticism: 0.1 }, impatient: { neuroticism: 0.1 }, optimistic: { neuroticism: -0.15 }, pragmatic: { neuroticism: -0.05 },
};

export function bigFiveFor(persona: Pick<Persona, 'id' | 'traits'>): BigFive {
  const random = rng(`bigfive:${persona.id}`);
  const score = (k: keyof BigFive): number => {
    const base = 0.35 + random() * 0.3 + persona.traits.reduce((s, t) => s + (TRAIT_EFFECTS[t]?.[k] ?? 0), 0);
    return Math.round(Math.min(1, Math.max(0, base)) * 100) / 100;
  };
  return { openness: score('openness'), conscientiousness: score('conscientiousness'), extraversion: score('extraversion'), agreeableness: score('agreeableness'), neuroticism: score('neuroticism') };
}

/** Each Big Five dimension in words: low below 0.35, high from 0.65, moderate between (the scores are 0-1). */
export function bigFiveLabels(b: BigFive): string[] {
  const level = (x: number): string => (x < 0.35 ? 'low' : x >= 0.65 ? 'high' : 'moderate');
  return (['openness', 'conscientiousness', 'extraversion', 'agreeableness', 'neuroticism'] as const).map((k) => `${level(b[k])} ${k}`);
}

const HABITS = ['keeps a handwritten journal', 'walks the same route every morning', 'cooks for extended family on Sundays', 'listens to podcasts while commuting',
  'volunteers at a local food bank', 'plays chess online late at night', 'tends a balcony garden', 'runs before dawn', 'reads the news on paper',
  'repairs things instead of replacing them', 'naps after lunch', 'collects vinyl records', 'attends religious services weekly', 'goes fishing on free days'];
const GOALS = ['save enough to buy a home', 'learn a new language', 'get promoted within two years', 'spend more time with family', 'start a small business',
  'pay off student loans', 'run a marathon', 'retire somewhere quieter', 'write a book', 'mentor younger colleagues', 'travel abroad for the first time', 'improve their health'];
const MEDIA = ['local radio', 'YouTube explainers', 'trade journals', 'WhatsApp family groups', 'public broadcaster news', 'true-crime podcasts', 'football coverage',
  'cooking shows', 'Reddit forums', 'romance novels', 'TikTok', 'long-form magazines', 'community newsletters', 'history documentaries'];
const SETTINGS_BY_STAGE: Record<LifeStage, string[]> = {
  YOUNG_ADULT: ['shared apartment', 'campus library', 'late-night cafe', 'gym', 'public transit'],
  ADULT: ['office or worksite', 'children\'s school gate', 'supermarket', 'commuter train', 'neighborhood park'],
  MIDDLE_AGED: ['workplace', 'parents\' home', 'community center', 'hardware store', 'place of worship'],
  SENIOR: ['home garden', 'clinic waiting room', 'market stalls', 'senior center', 'grandchildren\'s home'],
};
const LOOKS = ['short graying hair', 'round glasses', 'a weathered face', 'a neat beard', 'braided hair', 'a bright scarf', 'work boots', 'a tidy uniform', 'laugh lines', 'a cardigan with patched elbows'];

/** The modalities without what the enrich processor adds (the embedding and the time). */
export type Modalities = Omit<Enrichment, 'embedding' | 'embeddingModel' | 'enrichedAt'>;

/**
 * What a record written before LLM-made modalities reads as: the schema's defaults, which label the
 * modalities as the sampler's (they were, then) and leave the model-only fields empty.
 */
export function samplerModalityDefaults(): Pick<Modalities, 'modalitiesSource' | 'modalitiesModel' | 'backstory' | 'speakingStyle' | 'values' | 'routines'> {
  return { modalitiesSource: 'SAMPLER', modalitiesModel: 'sampler', backstory: '', speakingStyle: '', values: [], routines: [] };
}

/**
 * Behavioral, visual and contextual modalities, derived deterministically from the persona so a
 * re-run gives the same enrichment, labelled as the sampler's. The embedding is added by the processor.
 */
export function modalitiesFor(p: Persona): Modalities {
  const random = rng(`enrich:${p.id}`);
  const lifeStage = lifeStageFor(p.age);
  const looks = pickDistinct(random, LOOKS, 2);
  const appearance = `${p.age}-year-old ${p.occupation} with ${looks.join(' and ')}, ${p.traits[0] ?? 'calm'} in manner`;
  const bigFive = bigFiveFor(p);
  return {
    lifeStage,
    bigFive,
    bigFiveLabels: bigFiveLabels(bigFive),
    habits: pickDistinct(random, HABITS, 3),
    goals: pickDistinct(random, GOALS, 2),
    mediaDiet: pickDistinct(random, MEDIA, 3),
    appearance,
    imagePrompt: `Candid documentary photo of ${appearance}, in ${cityOf(p.locale)}, natural light, 35mm`,
    settings: pickDistinct(random, SETTINGS_BY_STAGE[lifeStage], 3),
    ...samplerModalityDefaults(),
  };
}
