import { describe, expect, it } from 'vitest';
import { bigFiveFor, bigFiveLabels, lifeStageFor, modalitiesFor } from '../../../persona/modalities.ts';
import { samplePersona } from '../../helpers/samples.ts';

describe('modalities', () => {
  it('maps age to life stage at the documented boundaries', () => {
    expect([18, 29, 30, 44, 45, 64, 65, 90].map(lifeStageFor)).toEqual(['YOUNG_ADULT', 'YOUNG_ADULT', 'ADULT', 'ADULT', 'MIDDLE_AGED', 'MIDDLE_AGED', 'SENIOR', 'SENIOR']);
  });

  it('moves Big Five scores with the traits', () => {
    const anxious = bigFiveFor({ id: 'x', traits: ['anxious', 'cautious', 'impatient'] });
    const calm = bigFiveFor({ id: 'x', traits: ['optimistic', 'patient', 'pragmatic'] });
    expect(anxious.neuroticism).toBeGreaterThan(calm.neuroticism);
  });

  it('is deterministic per persona', () => {
    const p = samplePersona();
    expect(modalitiesFor(p)).toEqual(modalitiesFor(p));
    expect(modalitiesFor(p).imagePrompt).toContain('pediatric nurse');
  });


});

describe('Big Five labels', () => {
  it('put each dimension in words, at the stated cut-offs', () => {
    expect(bigFiveLabels({ openness: 0.34, conscientiousness: 0.35, extraversion: 0.649, agreeableness: 0.65, neuroticism: 1 }))
      .toEqual(['low openness', 'moderate conscientiousness', 'moderate extraversion', 'high agreeableness', 'high neuroticism']);
  });

  it('come with the scores in every derived modality set', () => {
    const m = modalitiesFor(samplePersona());
    expect(m.bigFiveLabels).toEqual(bigFiveLabels(m.bigFive));
  });
});
