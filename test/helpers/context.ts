import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../core/logger.ts';
import { dot, normalize } from '../../core/vector.ts';
import { hashEmbedder } from '../../llm/embedder.ts';
import type { ProcessorContext } from '../../runtime/processor.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import type { SearchHit, Store, UpsertOutcome } from '../../store/index.ts';

/**
 * The store's contract in memory, for unit tests of processors: claims are first-come, upserts are
 * idempotent by (id, version), nearest and search rank by cosine. Integration tests use the real
 * stores; this only spares processor unit tests a database.
 */
export class MemoryStore implements Store {
  readonly kind = 'pglite' as const;
  readonly personas = new Map<string, Persona>();
  readonly claims = new Map<string, string>();
  private space: { model: string; dimensions: number } | undefined;
  private readonly clusters = new Map<string, number>();

  async migrate(): Promise<void> {}

  async checkEmbeddingSpace(model: string, dimensions: number): Promise<void> {
    this.space ??= { model, dimensions };
    if (this.space.model !== model || this.space.dimensions !== dimensions) throw new Error(`store holds ${this.space.model}/${this.space.dimensions}, not ${model}/${dimensions}`);
  }

  async upsertPersona(p: Persona): Promise<UpsertOutcome> {
    const old = this.personas.get(p.id);
    if (old && old.version > p.version) return 'UNCHANGED';
    if (old && old.version === p.version && old.description === p.description) return 'UNCHANGED';
    this.personas.set(p.id, p);
    return old ? 'UPDATED' : 'INSERTED';
  }

  async claimSignature(kind: string, signature: string, personaId: string): Promise<string> {
    const key = `${kind}:${signature}`;
    const owner = this.claims.get(key) ?? personaId;
    this.claims.set(key, owner);
    return owner;
  }

  async search(vector: number[], limit: number): Promise<SearchHit[]> {
    return this.ranked(vector).slice(0, limit).map(({ p, score }) => ({
      id: p.id, name: p.name, occupation: p.occupation, description: p.description, mode: p.provenance.mode, cluster: this.clusters.get(p.id) ?? null, score,
    }));
  }

  async nearest(vector: number[], excludeId: string): Promise<{ id: string; score: number } | undefined> {
    const best = this.ranked(vector).find(({ p }) => p.id !== excludeId);
    return best && { id: best.p.id, score: best.score };
  }

  async countPersonas(): Promise<number> {
    return this.personas.size;
  }

  async embeddings(limit: number): Promise<{ id: string; embedding: number[] }[]> {
    return [...this.personas.values()].sort((a, b) => a.id.localeCompare(b.id)).slice(0, limit).map((p) => ({ id: p.id, embedding: p.enrichment?.embedding ?? [] }));
  }

  async setClusters(assignments: readonly { id: string; cluster: number }[]): Promise<void> {
    for (const a of assignments) this.clusters.set(a.id, a.cluster);
  }

  async getPersona(id: string) {
    const p = this.personas.get(id);
    const e = p?.enrichment;
    return p && e ? { id: p.id, description: p.description, embeddingModel: e.embeddingModel, embedding: e.embedding, mode: p.provenance.mode, model: p.provenance.model } : undefined;
  }

  async close(): Promise<void> {}

  private ranked(vector: number[]): { p: Persona; score: number }[] {
    const q = normalize(vector);
    return [...this.personas.values()]
      .filter((p) => p.enrichment)
      .map((p) => ({ p, score: dot(q, normalize(p.enrichment?.embedding ?? [])) }))
      .sort((a, b) => b.score - a.score);
  }
}

/**
 * The one fake processor context of the unit tests: real config (from `env`, nothing inherited), a
 * silent logger, no LLM, hash embeddings, an in-memory store and a fixed clock. Override what a test needs.
 */
export function fakeContext(overrides: Partial<ProcessorContext> & { env?: Record<string, string> } = {}): ProcessorContext & { store: Store } {
  const { env, ...rest } = overrides;
  return {
    config: loadConfig({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', ...env }),
    logger: createLogger({ level: 'silent' }),
    llm: undefined,
    embedder: hashEmbedder(384),
    store: new MemoryStore(),
    now: () => 42,
    delivery: 'test-topic:0:0',
    ...rest,
  };
}
