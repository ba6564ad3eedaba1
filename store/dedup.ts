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

/** One persona to decide: its claim, and the pure decision over the candidates found for it. */
export interface NearDecision<V extends { duplicateOf: string | undefined } = { duplicateOf: string | undefined }> {
  claim: NearClaim;
  decide: (candidates: readonly NearCandidate[]) => V;
}

export type NearOutcome<V> = V | { duplicateOf: undefined; already: true };

interface CandidateRow { persona_id: string; signature: Buffer | Uint8Array; embedding: string }

const candidate = (r: CandidateRow, via: NearCandidate['via']): NearCandidate =>
  ({ id: r.persona_id, signature: Buffer.from(r.signature), embedding: JSON.parse(r.embedding) as number[], via });

const ascending = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Decides personas against the near-duplicate state and records those that pass, in one transaction
 * that first takes the advisory locks of all their band keys (ascending, so two deciders never wait on
 * each other in a cycle). Two instances deciding near twins at the same moment share a band key (that
 * is what makes them candidates), so the second waits for the first to commit and then sees it: the two
 * never both pass. Within the batch the personas are decided in order, each against the state plus the
 * batch's personas passed before it, so two twins in one batch do not both pass either. `decide` is the
 * pure decision (persona/dedup.ts), given the candidates found under the locks; it returns the id of the
 * persona duplicated, or undefined to pass.
 *
 * A persona already recorded (a redelivery, a redo after a crash) passes again without a decision.
 * Neighbours by meaning alone (a paraphrase sharing no band) are read under no common lock, so two
 * paraphrases decided in the same instant by two instances can both pass; the exact and band-sharing
 * cases cannot.
 *
 * Five round trips whatever the batch's size (lock, band keys, their signatures, neighbours, writes,
 * within BEGIN and COMMIT): per persona it was eight.
 */
export function claimNearDuplicates<V extends { duplicateOf: string | undefined }>(
  sql: SqlClient, batch: readonly NearDecision<V>[],
): Promise<NearOutcome<V>[]> {
  const keysOf = batch.map((b) => [...new Set(b.claim.bandKeys)].map(String));
  const keys = [...new Set(batch.flatMap((b) => b.claim.bandKeys))].sort(ascending).map(String);
  return sql.transaction(async (query) => {
    await query('SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS t(k)', [keys]);
    const ids = batch.map((b) => b.claim.personaId);
    const bands = await query<{ band_key: string | null; persona_id: string }>(
      `SELECT band_key::text AS band_key, persona_id FROM lsh_bands WHERE band_key = ANY($1::bigint[])
       UNION ALL SELECT NULL, persona_id FROM lsh_signatures WHERE persona_id = ANY($2::text[])`,
      [keys, ids],
    );
    // A NULL key marks a persona of this batch recorded already.
    const recorded = new Set(bands.filter((r) => r.band_key === null).map((r) => r.persona_id));
    const byKey = new Map<string, string[]>();
    for (const r of bands) {
      if (r.band_key === null) continue;
      const ids = byKey.get(r.band_key);
      if (ids) ids.push(r.persona_id);
      else byKey.set(r.band_key, [r.persona_id]);
    }
    const bandIds = [...new Set([...byKey.values()].flat())];
    const stored = new Map<string, CandidateRow>();
    if (bandIds.length > 0) {
      for (const r of await query<CandidateRow>('SELECT persona_id, signature, embedding::text AS embedding FROM lsh_signatures WHERE persona_id = ANY($1::text[])', [bandIds])) stored.set(r.persona_id, r);
    }
    const near = new Map<number, CandidateRow[]>();
    const wanting = batch.map((b, i) => ({ b, i })).filter(({ b }) => b.claim.neighbours > 0 && !recorded.has(b.claim.personaId));
    if (wanting.length > 0) {
      // The index's nearest per persona, one scan each, in one statement.
      const rows = await query<CandidateRow & { ord: string }>(
        `SELECT c.ord::text AS ord, n.persona_id, n.signature, n.embedding::text AS embedding
           FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS c(v, k, ord)
           CROSS JOIN LATERAL (SELECT persona_id, signature, embedding FROM lsh_signatures ORDER BY embedding <=> c.v::vector LIMIT c.k) n`,
        [wanting.map(({ b }) => toVector(b.claim.embedding)), wanting.map(({ b }) => b.claim.neighbours)],
      );
      for (const r of rows) {
        const at = wanting[Number(r.ord) - 1]?.i ?? -1;
        const rowsAt = near.get(at);
        if (rowsAt) rowsAt.push(r);
        else near.set(at, [r]);
      }
    }

    const outcomes: NearOutcome<V>[] = [];
    const passed: { claim: NearClaim; keys: Set<string> }[] = [];
    for (const [i, { claim, decide }] of batch.entries()) {
      if (recorded.has(claim.personaId) || passed.some((p) => p.claim.personaId === claim.personaId)) {
        outcomes.push({ duplicateOf: undefined, already: true });
        continue;
      }
      const candidates = new Map<string, NearCandidate>();
      for (const key of keysOf[i] ?? []) {
        for (const id of byKey.get(key) ?? []) {
          const row = stored.get(id);
          if (row && !candidates.has(id)) candidates.set(id, candidate(row, 'band'));
        }
      }
      for (const row of near.get(i) ?? []) if (!candidates.has(row.persona_id)) candidates.set(row.persona_id, candidate(row, 'neighbour'));
      // The batch's own passed personas, every one: a superset of what deciding them one after the other would show.
      for (const p of passed) {
        const shares = (keysOf[i] ?? []).some((k) => p.keys.has(k));
        candidates.set(p.claim.personaId, { id: p.claim.personaId, signature: p.claim.signature, embedding: [...p.claim.embedding], via: shares ? 'band' : 'neighbour' });
      }
      const verdict = decide([...candidates.values()]);
      outcomes.push(verdict);
      if (verdict.duplicateOf === undefined) passed.push({ claim, keys: new Set(keysOf[i]) });
    }

    if (passed.length > 0) {
      await query(
        `WITH s AS (INSERT INTO lsh_signatures (persona_id, signature, embedding)
                    SELECT id, decode(sig, 'hex'), e::vector FROM unnest($1::text[], $2::text[], $3::text[]) AS t(id, sig, e))
         INSERT INTO lsh_bands (band_key, persona_id) SELECT k::bigint, id FROM unnest($4::text[], $5::text[]) AS t(k, id) ON CONFLICT DO NOTHING`,
        [
          passed.map((p) => p.claim.personaId), passed.map((p) => p.claim.signature.toString('hex')), passed.map((p) => toVector(p.claim.embedding)),
          passed.flatMap((p) => [...p.keys]), passed.flatMap((p) => [...p.keys].map(() => p.claim.personaId)),
        ],
      );
    }
    return outcomes;
  });
}
