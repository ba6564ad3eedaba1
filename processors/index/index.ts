import type { Processor } from '../../runtime/processor.ts';
import { PersonaHubError } from '../../core/errors.ts';

/**
 * Upserts validated personas (and a derived persona's edge from its parent) into the store, then announces them. The store write is idempotent by
 * (id, version), so a chunk redone after a crash re-announces but never duplicates a persona, and it
 * re-announces with the outcome of the first write (INSERTED stays INSERTED).
 */
export const index: Processor<'index'> = {
  stage: 'index',
  async init(ctx) {
    await ctx.store.migrate();
    // Refuse to start against a store built with another embedding model (DESIGN §4, issue 10).
    await ctx.store.checkEmbeddingSpace(ctx.embedder.model, ctx.config.embeddingDimensions);
  },
  async process(persona, ctx) {
    const e = persona.enrichment;
    if (!e || !persona.validation) throw new PersonaHubError('PH_INDEX_NOT_VALIDATED', `persona ${persona.id} reached the indexer without enrichment or validation`);
    await ctx.store.checkEmbeddingSpace(e.embeddingModel, e.embedding.length);
    // The delivery lets the store tell this input's own redo (same outcome again) from another copy (UNCHANGED).
    const outcome = await ctx.store.upsertPersona(persona, ctx.delivery);
    // The lattice edge from the parent, written after the persona so an edge never names a persona the store lacks.
    const l = persona.lineage;
    if (l?.parentPersonaId && l.relationKind) await ctx.store.addRelation({ from: l.parentPersonaId, to: persona.id, kind: l.relationKind, depth: l.depth });
    return [{
      event: 'indexed', key: persona.id,
      value: { id: persona.id, version: persona.version, seedId: persona.seedId, description: persona.description, embeddingModel: e.embeddingModel, store: ctx.store.kind, outcome, indexedAt: ctx.now() },
    }];
  },
  // A deleted persona: out of the store (search, listings, near-duplicate checks), and the tombstone passed on
  // to the indexed topic, so the services that follow it delete their copy too.
  async tombstone(id, ctx) {
    const removed = await ctx.store.deletePersona(id);
    ctx.logger.info({ persona: id, removed }, 'persona deleted');
    return [{ event: 'indexed', key: id, value: null }];
  },
};
