import type { Persona } from '../../schemas/types.generated.ts';
import type { Processor } from '../../runtime/processor.ts';
import { textHash } from '../../persona/ids.ts';
import { checkPersona } from '../../persona/coherence.ts';

function withoutEmbedding(p: Persona): string {
  return JSON.stringify({ ...p, enrichment: p.enrichment ? { ...p.enrichment, embedding: `[${p.enrichment.embedding.length} floats]` } : null });
}

/**
 * Invariants, coherence (with one bounded repair) and exact-duplicate removal. The duplicate
 * signature is claimed in the store, so every instance of this stage shares one view, and a
 * re-delivered persona finds its own claim rather than being called a duplicate of itself.
 */
export const validate: Processor<'validate'> = {
  stage: 'validate',
  async process(input, ctx) {
    const result = checkPersona(input, { dimensions: ctx.config.embeddingDimensions });
    // A repaired text no longer matches the embedding enrich computed: embed it again, so search and
    // near-duplicate checks see the text that is actually stored.
    const enrichment = result.persona.enrichment;
    if (result.repaired.length > 0 && result.reasons.length === 0 && enrichment) {
      const [embedding] = await ctx.embedder.embed([result.persona.description]);
      if (embedding) result.persona = { ...result.persona, enrichment: { ...enrichment, embedding, embeddingModel: ctx.embedder.model } };
    }
    const hash = textHash(result.persona.description);
    const reject = (reasons: { code: string; message: string }[], duplicateOf: string | null) => [{
      event: 'rejected' as const, key: input.id,
      value: { id: input.id, seedId: input.seedId, stage: 'validate', reasons, duplicateOf, personaJson: withoutEmbedding(result.persona), rejectedAt: ctx.now() },
    }];
    if (result.reasons.length > 0) return reject(result.reasons, null);
    const owner = await ctx.store.claimSignature('text-sha256', hash, input.id);
    if (owner !== input.id) return reject([{ code: 'DUPLICATE', message: `same normalized text as persona ${owner}` }], owner);
    // Near-duplicates by meaning, against what is already indexed. Two near-duplicates validated in the
    // same moment can both pass; the exact-text claim above has no such gap.
    const embedding = result.persona.enrichment?.embedding;
    if (embedding && ctx.config.nearDuplicateCosine < 1) {
      const near = await ctx.store.nearest(embedding, input.id);
      if (near && near.score >= ctx.config.nearDuplicateCosine) {
        return reject([{ code: 'NEAR_DUPLICATE', message: `cosine ${near.score.toFixed(4)} to persona ${near.id} (threshold ${ctx.config.nearDuplicateCosine})` }], near.id);
      }
    }
    const validated: Persona = {
      ...result.persona,
      validation: { textHash: hash, checks: [...result.passed, 'unique_text', 'not_near_duplicate'], repaired: result.repaired, validatedAt: ctx.now() },
    };
    return [{ event: 'validated' as const, key: input.id, value: validated }];
  },
};
