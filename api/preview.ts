import type { IngestRejection } from '../persona/seeds.ts';
import { parseSeedLines } from '../persona/seeds.ts';
import { processors } from '../processors/registry.ts';
import type { SharedContext } from '../runtime/processor.ts';
import type { Persona, Rejected } from '../schemas/types.generated.ts';
import type { LatticeEdge, LatticeTables, NearCandidate, NearClaim, SearchHit, Store, UpsertOutcome } from '../store/index.ts';
import { dot, normalize } from '../core/vector.ts';
import { ApiError } from './errors.ts';

/**
 * A store for one preview, in memory: the validate stage's duplicate checks see the preview's own
 * personas and nothing else, and nothing is written anywhere. Writes the preview's stages never make
 * (indexing, claims of inputs) are refused, so a stage that started making them would fail loudly here.
 */
class PreviewStore implements Store {
  readonly kind = 'pglite' as const;
  private readonly signatures = new Map<string, string>();
  private readonly vectors = new Map<string, number[]>();
  /** Near-duplicate claims the preview's personas made: band key → persona ids, id → signature. */
  private readonly bands = new Map<bigint, string[]>();
  private readonly nearSignatures = new Map<string, Buffer>();

  async migrate(): Promise<void> {}
  async checkEmbeddingSpace(): Promise<void> {}
  claimInputs(): Promise<Map<string, string>> {
    return refused('claimInputs');
  }
  releaseInput(): Promise<void> {
    return refused('releaseInput');
  }
  upsertPersona(): Promise<UpsertOutcome> {
    return refused('upsertPersona');
  }
  async claimSignature(kind: string, signature: string, personaId: string): Promise<string> {
    const key = `${kind}:${signature}`;
    const owner = this.signatures.get(key) ?? personaId;
    this.signatures.set(key, owner);
    return owner;
  }
  /** As store/dedup.ts, over the preview's own personas: candidates by shared band or by nearest vectors, the decision the caller's. */
  async claimNearDuplicate<V extends { duplicateOf: string | undefined }>(claim: NearClaim, decide: (candidates: readonly NearCandidate[]) => V): Promise<V | { duplicateOf: undefined; already: true }> {
    if (this.nearSignatures.has(claim.personaId)) return { duplicateOf: undefined, already: true };
    const byBand = new Set(claim.bandKeys.flatMap((k) => this.bands.get(k) ?? []));
    const nearest = [...this.vectors].filter(([id]) => !byBand.has(id))
      .map(([id, v]) => ({ id, score: dot(normalize([...claim.embedding]), normalize(v)) }))
      .sort((a, b) => b.score - a.score).slice(0, claim.neighbours);
    const candidates: NearCandidate[] = [
      ...[...byBand].map((id) => ({ id, signature: this.nearSignatures.get(id), embedding: this.vectors.get(id) ?? [], via: 'band' as const })),
      ...nearest.map(({ id }) => ({ id, signature: this.nearSignatures.get(id), embedding: this.vectors.get(id) ?? [], via: 'neighbour' as const })),
    ];
    const decision = decide(candidates);
    if (decision.duplicateOf === undefined) {
      this.nearSignatures.set(claim.personaId, claim.signature);
      this.vectors.set(claim.personaId, [...claim.embedding]);
      for (const k of claim.bandKeys) this.bands.set(k, [...(this.bands.get(k) ?? []), claim.personaId]);
    }
    return decision;
  }
  reserveExpansion(): Promise<number> {
    return refused('reserveExpansion');
  }
  async expansionGrants(): Promise<Map<string, number>> {
    return new Map();
  }
  addRelation(): Promise<void> {
    return refused('addRelation');
  }
  async neighbours(): Promise<(LatticeEdge & { hops: number })[]> {
    return [];
  }
  latticeTables(): Promise<LatticeTables> {
    return refused('latticeTables');
  }
  async search(): Promise<SearchHit[]> {
    return [];
  }
  async nearest(vector: number[], excludeId: string): Promise<{ id: string; score: number } | undefined> {
    let best: { id: string; score: number } | undefined;
    for (const [id, v] of this.vectors) {
      if (id === excludeId) continue;
      const score = dot(normalize(vector), normalize(v));
      if (!best || score > best.score) best = { id, score };
    }
    return best;
  }
  /** Validated preview personas join the in-memory view, so a later one in the same preview can be its near-duplicate. */
  remember(p: Persona): void {
    if (p.enrichment) this.vectors.set(p.id, p.enrichment.embedding);
  }
  async countPersonas(): Promise<number> {
    return this.vectors.size;
  }
  async embeddings(): Promise<{ id: string; embedding: number[] }[]> {
    return [];
  }
  setClusters(): Promise<void> {
    return refused('setClusters');
  }
  async getPersona(): Promise<undefined> {
    return undefined;
  }
  deletePersona(): Promise<boolean> {
    return refused('deletePersona');
  }
  async readPersona(): Promise<undefined> {
    return undefined;
  }
  async readPersonasAfter(): Promise<Persona[]> {
    return [];
  }
  async close(): Promise<void> {}
}

function refused(what: string): Promise<never> {
  return Promise.reject(new ApiError(500, 'PH_API_PREVIEW_WRITE', `a preview never writes, but a stage called ${what}`));
}

export interface PreviewResult {
  validated: { id: string; name: string; age: number; occupation: string; locale: string; description: string; mode: string; model: string; repaired: string[] }[];
  rejected: { id: string; reasons: { code: string; message: string }[] }[];
  refused: IngestRejection[];
}

/**
 * Data Designer's preview: the seeds go through the draft, enrich and validate processors in this
 * process, with the pipeline's own configuration, model client and embedder, and nothing is sent to
 * Kafka or written to the store. What a big run would make of such seeds, seen before starting it.
 */
export async function preview(shared: Omit<SharedContext, 'store'>, texts: readonly string[]): Promise<PreviewResult> {
  const parsed = parseSeedLines(texts, { source: 'preview', format: 'text', maxChars: shared.config.maxSeedChars, now: shared.now() });
  if (parsed.seeds.length === 0) throw new ApiError(400, 'PH_API_NO_SEEDS', `no usable seed text in the request: ${parsed.rejected.map((r) => `line ${r.line}: ${r.reason}`).join('; ')}`);
  const store = new PreviewStore();
  const ctx = (delivery: string) => ({ ...shared, store, delivery: `preview:${delivery}` });
  const result: PreviewResult = { validated: [], rejected: [], refused: parsed.rejected };
  for (const seed of parsed.seeds) {
    for (const draft of await processors.draft.process(seed, ctx(seed.id))) {
      for (const enriched of await processors.enrich.process(draft.value, ctx(draft.key))) {
        for (const out of await processors.validate.process(enriched.value, ctx(enriched.key))) {
          if (out.event === 'validated') {
            const p = out.value;
            store.remember(p);
            result.validated.push({
              id: p.id, name: p.name, age: p.age, occupation: p.occupation, locale: p.locale, description: p.description,
              mode: p.provenance.mode, model: p.provenance.model, repaired: p.validation?.repaired ?? [],
            });
          } else {
            const r: Rejected = out.value;
            result.rejected.push({ id: r.id, reasons: r.reasons });
          }
        }
      }
    }
  }
  return result;
}
