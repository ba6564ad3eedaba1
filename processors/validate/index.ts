import type { Persona } from '../../schemas/types.generated.ts';
import type { Processor, ProcessorContext } from '../../runtime/processor.ts';
import { dedupText, nearDuplicate } from '../../persona/dedup.ts';
import { bandKeys, DEFAULT_MINHASH, lshParams, signatureFromBuffer, signatureOf, signatureToBuffer } from '../../persona/minhash.ts';
import { textHash } from '../../persona/ids.ts';
import { checkPersona } from '../../persona/coherence.ts';
import { judgePersona } from './judge.ts';

function withoutEmbedding(p: Persona): string {
  return JSON.stringify({ ...p, enrichment: p.enrichment ? { ...p.enrichment, embedding: `[${p.enrichment.embedding.length} floats]` } : null });
}

/**
 * Invariants, coherence (with one bounded repair), the optional LLM judge (PERSONAHUB_LLM_JUDGE; see
 * persona/judge.ts) and duplicate removal: exact (the normalized text's
 * hash) and near (MinHash LSH candidates and nearest neighbours, confirmed by embedding cosine; see
 * persona/dedup.ts). Both are decided in the store, so every instance of this stage shares one view
 * and near twins validated at the same moment cannot both pass; a re-delivered persona finds its own
 * claims rather than being called a duplicate of itself.
 */
/**
 * A derived persona rejected as a duplicate still records its relation, to the persona kept in its
 * place, so the lattice loses no edge to dedup (unless the duplicate is of the parent itself).
 */
async function keepEdge(input: Persona, kept: string, ctx: ProcessorContext): Promise<void> {
  const l = input.lineage;
  if (l?.parentPersonaId && l.relationKind && l.parentPersonaId !== kept) await ctx.store.addRelation({ from: l.parentPersonaId, to: kept, kind: l.relationKind, depth: l.depth });
}

export const validate: Processor<'validate'> = {
  stage: 'validate',
  async process(input, ctx) {
    const result = checkPersona(input, { dimensions: ctx.config.embeddingDimensions, maxDescriptionChars: ctx.config.maxDescriptionChars });
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
    // The judge before the duplicate claims: a persona it rejects must not hold a text or band claim that would
    // turn its later, better twin away as a duplicate.
    const judged = ctx.config.llmJudge === 'on' && ctx.llm ? await judgePersona(ctx.llm, result.persona, ctx.config.llmJudgeThreshold) : undefined;
    if (judged && !judged.passed) return reject(judged.reasons, null);
    const owner = await ctx.store.claimSignature('text-sha256', hash, input.id);
    if (owner !== input.id) {
      await keepEdge(input, owner, ctx);
      return reject([{ code: 'DUPLICATE', message: `same normalized text as persona ${owner}` }], owner);
    }
    const embedding = result.persona.enrichment?.embedding;
    if (embedding && ctx.config.nearDuplicateCosine < 1) {
      const { minhashPermutations: permutations, minhashShingle: shingleSize, dedupJaccard: jaccard, nearDuplicateCosine: cosine } = ctx.config;
      const signature = signatureOf(dedupText(result.persona.description, result.persona.name), { permutations, shingleSize, seed: DEFAULT_MINHASH.seed });
      const verdict = await ctx.store.claimNearDuplicate(
        { personaId: input.id, signature: signatureToBuffer(signature), bandKeys: bandKeys(signature, lshParams(jaccard, permutations)), embedding, neighbours: ctx.config.dedupNeighbours },
        (candidates) => nearDuplicate(signature, embedding, candidates.map((c) => ({ id: c.id, embedding: c.embedding, signature: c.signature && signatureFromBuffer(c.signature) })), { jaccard, cosine }),
      );
      if (verdict.duplicateOf !== undefined) {
        await keepEdge(input, verdict.duplicateOf, ctx);
        return reject([{ code: 'NEAR_DUPLICATE', message: `near-duplicate of persona ${verdict.duplicateOf}: ${'reason' in verdict ? verdict.reason : ''}` }], verdict.duplicateOf);
      }
    }
    const validated: Persona = {
      ...result.persona,
      validation: { textHash: hash, checks: [...result.passed, ...(judged?.checks ?? []), 'unique_text', 'not_near_duplicate'], repaired: result.repaired, validatedAt: ctx.now() },
    };
    return [{ event: 'validated' as const, key: input.id, value: validated }];
  },
};
