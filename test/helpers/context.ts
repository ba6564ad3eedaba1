import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../core/logger.ts';
import { dot, normalize } from '../../core/vector.ts';
import { hashEmbedder } from '../../llm/embedder.ts';
import type { ProcessorContext } from '../../runtime/processor.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import type { InputClaim, LatticeEdge, LatticeTables, NearCandidate, NearClaim, SearchHit, Store, UpsertOutcome } from '../../store/index.ts';

/**
 * The store's contract in memory, for unit tests of processors and the runner: signature and input
 * claims are first-come, upserts are idempotent by (id, version) and give a redoing delivery its
 * original outcome, nearest and search rank by cosine. Integration tests use the real stores; this
 * only spares unit tests a database.
 */
export class MemoryStore implements Store {
  readonly kind = 'pglite' as const;
  readonly personas = new Map<string, Persona>();
  /** Dedup signature claims, `kind:signature` → owning persona id. */
  readonly claims = new Map<string, string>();
  /** Input claims, `stage\0identity` → owning delivery. */
  readonly inputClaims = new Map<string, string>();
  /** Per persona id: the delivery that last changed the row and the outcome it got. */
  readonly lastWrite = new Map<string, { delivery: string; outcome: 'INSERTED' | 'UPDATED' }>();
  private space: { model: string; dimensions: number } | undefined;
  private readonly clusters = new Map<string, number>();

  async migrate(): Promise<void> {}

  async checkEmbeddingSpace(model: string, dimensions: number): Promise<void> {
    this.space ??= { model, dimensions };
    if (this.space.model !== model || this.space.dimensions !== dimensions) throw new Error(`store holds ${this.space.model}/${this.space.dimensions}, not ${model}/${dimensions}`);
  }

  async claimInputs(stage: string, claims: readonly InputClaim[]): Promise<Map<string, string>> {
    const owners = new Map<string, string>();
    for (const c of claims) {
      const key = `${stage}\0${c.identity}`;
      const owner = this.inputClaims.get(key) ?? c.delivery;
      this.inputClaims.set(key, owner);
      owners.set(c.identity, owner);
    }
    return owners;
  }

  async releaseInput(stage: string, identity: string, delivery: string): Promise<void> {
    const key = `${stage}\0${identity}`;
    if (this.inputClaims.get(key) === delivery) this.inputClaims.delete(key);
  }

  /** `delivery` defaults for tests that only fill the store; the contract always passes one. */
  async upsertPersona(p: Persona, delivery = 'memory-store:0:0'): Promise<UpsertOutcome> {
    const old = this.personas.get(p.id);
    // The same test for "changes the row" as the SQL store: newer version, or same version with other text or models.
    const changes = !old || old.version < p.version || (old.version === p.version
      && (old.description !== p.description || old.provenance.model !== p.provenance.model || old.enrichment?.embeddingModel !== p.enrichment?.embeddingModel));
    const last = this.lastWrite.get(p.id);
    if (!changes) return last?.delivery === delivery ? last.outcome : 'UNCHANGED';
    const outcome = old ? 'UPDATED' : 'INSERTED';
    this.personas.set(p.id, p);
    this.lastWrite.set(p.id, { delivery, outcome });
    return outcome;
  }

  async claimSignature(kind: string, signature: string, personaId: string): Promise<string> {
    const key = `${kind}:${signature}`;
    const owner = this.claims.get(key) ?? personaId;
    this.claims.set(key, owner);
    return owner;
  }

  /** Passed personas' near-duplicate state: id → band keys, signature, embedding. */
  readonly near = new Map<string, NearCandidate & { keys: readonly bigint[] }>();
  readonly expansions = new Map<string, number>();
  readonly budgets = new Map<string, number>();
  readonly relations = new Map<string, LatticeEdge>();

  async claimNearDuplicate<V extends { duplicateOf: string | undefined }>(claim: NearClaim, decide: (candidates: readonly NearCandidate[]) => V) {
    if (this.near.has(claim.personaId)) return { duplicateOf: undefined, already: true as const };
    const keys = new Set(claim.bandKeys);
    const q = normalize([...claim.embedding]);
    const byBand = [...this.near.values()].filter((c) => c.keys.some((k) => keys.has(k)));
    const byMeaning = [...this.near.values()].filter((c) => !byBand.includes(c))
      .sort((a, b) => dot(q, normalize(b.embedding)) - dot(q, normalize(a.embedding))).slice(0, claim.neighbours);
    const verdict = decide([...byBand.map((c) => ({ ...c, via: 'band' as const })), ...byMeaning.map((c) => ({ ...c, via: 'neighbour' as const }))]);
    if (verdict.duplicateOf === undefined) this.near.set(claim.personaId, { id: claim.personaId, signature: claim.signature, embedding: [...claim.embedding], via: 'band', keys: [...keys] });
    return verdict;
  }

  async reserveExpansion(parentId: string, rootSeedId: string, want: number, budget: number): Promise<number> {
    const earlier = this.expansions.get(parentId);
    if (earlier !== undefined) return earlier;
    const spent = this.budgets.get(rootSeedId) ?? 0;
    const granted = Math.max(0, Math.min(want, budget - spent));
    this.expansions.set(parentId, granted);
    this.budgets.set(rootSeedId, spent + granted);
    return granted;
  }

  async expansionGrants(parentIds: readonly string[]): Promise<Map<string, number>> {
    return new Map(parentIds.flatMap((id) => { const g = this.expansions.get(id); return g === undefined ? [] : [[id, g] as const]; }));
  }

  async addRelation(edge: Omit<LatticeEdge, 'createdAt'>): Promise<void> {
    const key = `${edge.from}\0${edge.to}\0${edge.kind}`;
    if (!this.relations.has(key)) this.relations.set(key, { ...edge, createdAt: 42 });
  }

  async neighbours(id: string, depth: number): Promise<(LatticeEdge & { hops: number })[]> {
    const hops = new Map([[id, 0]]);
    for (let d = 0; d < depth; d += 1) {
      for (const e of this.relations.values()) {
        for (const [a, b] of [[e.from, e.to], [e.to, e.from]] as const) if (hops.get(a) === d && !hops.has(b)) hops.set(b, d + 1);
      }
    }
    return [...this.relations.values()].flatMap((e) => {
      const h = Math.min(hops.get(e.from) ?? Infinity, hops.get(e.to) ?? Infinity);
      return h < depth ? [{ ...e, hops: h + 1 }] : [];
    }).sort((a, b) => a.hops - b.hops || a.depth - b.depth);
  }

  async latticeTables(o: { limitEdges: number }): Promise<LatticeTables> {
    const depths = new Map<number, number>();
    for (const p of this.personas.values()) depths.set(p.lineage?.depth ?? 0, (depths.get(p.lineage?.depth ?? 0) ?? 0) + 1);
    const kinds = new Map<string, number>();
    for (const e of this.relations.values()) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    return {
      personasByDepth: [...depths].sort((a, b) => a[0] - b[0]).map(([depth, personas]) => ({ depth, personas })),
      edgesByKind: [...kinds].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([kind, edges]) => ({ kind, edges })),
      edges: [...this.relations.values()].slice(0, o.limitEdges).map((e) => ({ from: e.from, to: e.to })),
    };
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

  async readPersona(id: string): Promise<Persona | undefined> {
    return this.personas.get(id);
  }

  async deletePersona(id: string): Promise<boolean> {
    return this.personas.delete(id);
  }

  async readPersonasAfter(afterId: string | null, limit: number): Promise<Persona[]> {
    return [...this.personas.values()].filter((p) => afterId === null || p.id > afterId).sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, limit);
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
