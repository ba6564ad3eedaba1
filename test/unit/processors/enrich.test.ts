import { describe, expect, it } from 'vitest';
import { bigFiveFor, lifeStageFor, modalitiesFor } from '../../../persona/modalities.ts';
import { enrich } from '../../../processors/enrich/index.ts';
import { hashEmbed, hashEmbedder } from '../../../llm/embedder.ts';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../core/logger.ts';
import { samplePersona } from '../../helpers/samples.ts';

const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0);

describe('enrichment', () => {
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

  it('adds the embedding of the description with the embedder model name', async () => {
    const p = { ...samplePersona(), enrichment: null };
    const ctx = { config: loadConfig({}), logger: createLogger({ level: 'silent' }), llm: undefined, embedder: hashEmbedder(384), store: undefined as never, now: () => 7 };
    const [out] = await enrich.process(p, ctx);
    expect(out?.value.enrichment?.embedding).toEqual(hashEmbed(p.description, 384));
    expect(out?.value.enrichment?.embeddingModel).toBe('hash-bow-384');
  });

  it('hash embeddings are unit vectors, closer for texts sharing words', () => {
    const a = hashEmbed('a nurse who loves chess', 384);
    const b = hashEmbed('a nurse who plays chess', 384);
    const c = hashEmbed('quarterly tax filing deadlines', 384);
    expect(Math.hypot(...a)).toBeCloseTo(1, 6);
    expect(cos(a, b)).toBeGreaterThan(cos(a, c) + 0.3);
  });
});
