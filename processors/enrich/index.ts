import type { Processor } from '../../runtime/processor.ts';
import { PersonaHubError } from '../../core/errors.ts';
import { modalitiesFor } from '../../persona/modalities.ts';

/** Adds the modalities and the embedding of the persona text. */
export const enrich: Processor<'enrich'> = {
  stage: 'enrich',
  async process(persona, ctx) {
    const [embedding] = await ctx.embedder.embed([persona.description]);
    if (!embedding) throw new PersonaHubError('PH_ENRICH_NO_EMBEDDING', `embedder ${ctx.embedder.model} returned no vector`, { transient: true });
    const enriched = {
      ...persona,
      enrichment: { ...modalitiesFor(persona), embedding, embeddingModel: ctx.embedder.model, enrichedAt: ctx.now() },
    };
    return [{ event: 'enriched', key: persona.id, value: enriched }];
  },
};
