import { describe, expect, it } from 'vitest';
import { hashEmbed } from '../../../llm/embedder.ts';
import { enrich } from '../../../processors/enrich/index.ts';
import { fakeContext } from '../../helpers/context.ts';
import { samplePersona } from '../../helpers/samples.ts';

describe('enrich processor', () => {
  it('adds the embedding of the description with the embedder model name', async () => {
    const p = { ...samplePersona(), enrichment: null };
    const [out] = await enrich.process(p, fakeContext());
    expect(out?.value.enrichment?.embedding).toEqual(hashEmbed(p.description, 384));
    expect(out?.value.enrichment?.embeddingModel).toBe('hash-bow-384');
  });
});
