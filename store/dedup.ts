import type { SqlClient } from './index.ts';

const toVector = (v: readonly number[]): string => `[${v.join(',')}]`;

/** The near-duplicate state: each passed persona's MinHash signature and embedding, and its LSH band keys. */
export const DEDUP_DDL = (dimensions: number): readonly string[] => [
  `CREATE TABLE IF NOT EXISTS lsh_signatures (persona_id text PRIMARY KEY, signature bytea NOT NULL, embedding vector(${dimensions}) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
  // One row per band key of each passed persona; looked up by key, so the key leads the primary key.
  'CREATE TABLE IF NOT EXISTS lsh_bands (band_key bigint NOT NULL, persona_id text NOT NULL, PRIMARY KEY (band_key, persona_id))',
  // Nearest passed personas by meaning: passed ones, not only indexed ones, so a paraphrase of a persona
  // validated a moment ago but not yet indexed is still found.
  'CREATE INDEX IF NOT EXISTS lsh_signatures_embedding_hnsw ON lsh_signatures USING hnsw (embedding vector_cosine_ops)',
];

/** A persona passed earlier that may be a near twin of the one being decided. */
export interface NearCandidate {
  id: string;
  /** Absent for a neighbour found by the vector index alone (indexed, but passed before signatures were kept). */
  signature: Buffer | undefined;
  embedding: number[];
  /** How it was found. */
  via: 'band' | 'neighbour';
}

export interface NearClaim {
  personaId: string;
  signature: Buffer;
  /** Sorted or not: they are locked in ascending order. */
  bandKeys: readonly bigint[];
  embedding: readonly number[];
  /** Nearest passed personas by embedding to look at besides the band candidates. */
  neighbours: number;
}

/**
 * Decides a persona against the near-duplicate state and, when it passes, records it there, in one
 * transaction that first takes the advisory locks of its band keys (ascending, so two deciders never
 * wait on each other in a cycle). Two instances deciding near twins at the same moment share a band
 * key (that is what makes them candidates), so the second waits for the first to commit and then sees
 * it: the two never both pass. `decide` is the pure decision (persona/dedup.ts), given the candidates
 * found under the locks; it returns the id of the persona duplicated, or undefined to pass.
 *
 * A persona already recorded (a redelivery, a redo after a crash) passes again without a decision.
 * Neighbours by meaning alone (a paraphrase sharing no band) are read under no common lock, so two
 * paraphrases decided in the same instant can both pass; the exact and band-sharing cases cannot.
 */
export function claimNearDuplicate<V extends { duplicateOf: string | undefined }>(
  sql: SqlClient, claim: NearClaim, decide: (candidates: readonly NearCandidate[]) => V,
): Promise<V | { duplicateOf: undefined; already: true }> {
  const keys = [...new Set(claim.bandKeys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
  return sql.transaction(async (query) => {
    await query('SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS t(k)', [keys]);
    const [own] = await query<{ persona_id: string }>('SELECT persona_id FROM lsh_signatures WHERE persona_id = $1', [claim.personaId]);
    if (own) return { duplicateOf: undefined, already: true as const };
    const byBand = await query<{ persona_id: string; signature: Buffer | Uint8Array; embedding: string }>(
      `SELECT s.persona_id, s.signature, s.embedding::text AS embedding
         FROM lsh_signatures s WHERE s.persona_id IN (SELECT DISTINCT persona_id FROM lsh_bands WHERE band_key = ANY($1::bigint[]))`,
      [keys],
    );
    const candidates: NearCandidate[] = byBand.map((r) => ({ id: r.persona_id, signature: Buffer.from(r.signature), embedding: JSON.parse(r.embedding) as number[], via: 'band' }));
    if (claim.neighbours > 0) {
      const near = await query<{ persona_id: string; signature: Buffer | Uint8Array; embedding: string }>(
        `SELECT persona_id, signature, embedding::text AS embedding FROM lsh_signatures ORDER BY embedding <=> $1::vector LIMIT $2`,
        [toVector(claim.embedding), claim.neighbours],
      );
      const seen = new Set(candidates.map((c) => c.id));
      for (const r of near) {
        if (!seen.has(r.persona_id)) candidates.push({ id: r.persona_id, signature: Buffer.from(r.signature), embedding: JSON.parse(r.embedding) as number[], via: 'neighbour' });
      }
    }
    const verdict = decide(candidates);
    if (verdict.duplicateOf !== undefined) return verdict;
    await query('INSERT INTO lsh_signatures (persona_id, signature, embedding) VALUES ($1, $2, $3::vector)', [claim.personaId, claim.signature, toVector(claim.embedding)]);
    await query('INSERT INTO lsh_bands (band_key, persona_id) SELECT k, $2 FROM unnest($1::bigint[]) AS t(k) ON CONFLICT DO NOTHING', [keys, claim.personaId]);
    return verdict;
  });
}
