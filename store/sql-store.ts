import type { Persona } from '../schemas/types.generated.ts';
import { GroupCommit } from '../core/group-commit.ts';
import { readPersona, readPersonasAfter } from './corpus.ts';
import { claimNearDuplicates, DEDUP_DDL, type NearCandidate, type NearClaim, type NearDecision, type NearOutcome } from './dedup.ts';
import { addRelation, expansionGrants, LATTICE_DDL, latticeTables, neighbours, reserveExpansion, type LatticeEdge } from './lattice.ts';
import { StoreError, type InputClaim, type SearchHit, type SqlClient, type Store, type UpsertOutcome } from './index.ts';
import { CORPUS_STATEMENTS, corpusStore, deletePersona, type CorpusStore } from './query.ts';

const toVector = (v: number[]): string => `[${v.join(',')}]`;

/** The advisory lock every instance takes to migrate a database (the key spells "PHmigrat"); per database, so stores on other databases do not wait. */
const MIGRATION_LOCK = 0x50_48_6d_69_67_72_61_74n;

/**
 * Whether an upsert changes the stored row: a newer version, or the same version with other text or
 * models (the same seed re-run in another mode). In ON CONFLICT DO UPDATE, `personas` is the row as it
 * was before this statement and EXCLUDED the one proposed.
 */
const CHANGES_ROW = `(personas.version < EXCLUDED.version
  OR (personas.version = EXCLUDED.version AND (personas.description, personas.model, personas.embedding_model)
      IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.model, EXCLUDED.embedding_model)))`;

/** Parameters per row of the personas upsert (see upsertRow). */
const UPSERT_COLUMNS = 17;

/** A persona to upsert, with its enrichment (checked present) and the delivery writing it. */
interface Upsert { p: Persona; e: NonNullable<Persona['enrichment']>; delivery: string }

/** One persona's row of the personas upsert, in its column order. */
function upsertRow({ p, e, delivery }: Upsert): unknown[] {
  // The enrichment time stays among the modalities and the lattice lineage beside the generation
  // facts, so a persona read back (show, export) is the one indexed.
  const { embedding, embeddingModel, ...modalities } = e;
  return [
    p.id, p.version, p.seedId, p.name, p.age, p.occupation, p.locale, p.description,
    // Demographics flattened into the attributes document, under the filter language's names (lists plural),
    // so filters read them there; the sampler profile beside the other generation facts.
    // The written facets there too, under their own key: text that describes the persona, not a modality of it.
    JSON.stringify({ traits: p.traits, seedRelation: p.seedRelation, validation: p.validation, facets: p.facets, ...p.demographics }),
    JSON.stringify(modalities), p.provenance.mode, p.provenance.model, toVector(embedding), embeddingModel,
    JSON.stringify({ seedId: p.seedId, generationIndex: p.generationIndex, promptVersion: p.provenance.promptVersion, lineage: p.lineage,
      samplerProfile: p.provenance.samplerProfile, samplerProfileVersion: p.provenance.samplerProfileVersion }),
    p.provenance.createdAt, delivery,
  ];
}

/** Both stores share these statements; only the connection differs. */
export class SqlStore implements Store {
  /** What the HTTP API reads and keeps (store/query.ts), over the same connection. */
  readonly corpus: CorpusStore;
  /** The embedding space last found to match the store's (see checkEmbeddingSpace). */
  private spaceChecked: string | undefined;

  constructor(readonly kind: 'postgres' | 'pglite', private readonly sql: SqlClient, private readonly dimensions: number) {
    this.corpus = corpusStore(sql);
  }

  async migrate(): Promise<void> {
    const d = this.dimensions;
    const statements = [
      'CREATE EXTENSION IF NOT EXISTS vector',
      'CREATE TABLE IF NOT EXISTS store_meta (key text PRIMARY KEY, value text NOT NULL)',
      `CREATE TABLE IF NOT EXISTS personas (
        id text PRIMARY KEY, version int NOT NULL, seed_id text NOT NULL,
        name text NOT NULL, age int NOT NULL, occupation text NOT NULL, locale text NOT NULL,
        description text NOT NULL, attributes jsonb NOT NULL, modalities jsonb NOT NULL,
        mode text NOT NULL, model text NOT NULL,
        embedding vector(${d}) NOT NULL, embedding_model text NOT NULL,
        lineage jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL, indexed_at timestamptz NOT NULL DEFAULT now())`,
      'CREATE INDEX IF NOT EXISTS personas_embedding_hnsw ON personas USING hnsw (embedding vector_cosine_ops)',
      'CREATE INDEX IF NOT EXISTS personas_seed ON personas (seed_id)',
      // Added after the table first shipped, so existing databases gain them too. One ALTER: it takes
      // the table's exclusive lock once. last_delivery/last_outcome: see upsertPersona.
      `ALTER TABLE personas ADD COLUMN IF NOT EXISTS cluster int, ADD COLUMN IF NOT EXISTS last_delivery text,
        ADD COLUMN IF NOT EXISTS last_outcome text CHECK (last_outcome IN ('INSERTED', 'UPDATED'))`,
      `CREATE TABLE IF NOT EXISTS relations (from_id text NOT NULL, to_id text NOT NULL, kind text NOT NULL, depth int NOT NULL,
        PRIMARY KEY (from_id, to_id, kind))`,
      `CREATE TABLE IF NOT EXISTS dedup_signatures (kind text NOT NULL, signature text NOT NULL, persona_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, signature))`,
      `CREATE TABLE IF NOT EXISTS input_claims (stage text NOT NULL, identity text NOT NULL, delivery text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stage, identity))`,
      ...CORPUS_STATEMENTS,
      ...LATTICE_DDL,
      ...DEDUP_DDL(d),
    ];
    try {
      // CREATE ... IF NOT EXISTS is not safe against itself: two sessions creating the same table at
      // once both pass the check and one fails on pg_type's unique index. Under the lock, instances
      // started together migrate one after the other and the later ones find everything there.
      await this.sql.exclusive(MIGRATION_LOCK, statements);
    } catch (cause) {
      // The database not answering stays transient (the caller may wait for it); a statement the
      // database refuses will be refused again, so that is permanent.
      if (cause instanceof StoreError && cause.transient) throw cause;
      throw new StoreError('PH_STORE_MIGRATE', `store migration failed: ${(cause as Error).message}`, { cause });
    }
  }

  async checkEmbeddingSpace(model: string, dimensions: number): Promise<void> {
    if (dimensions !== this.dimensions) {
      throw new StoreError('PH_STORE_EMBEDDING_MISMATCH', `embedder ${model} makes ${dimensions}-dim vectors but the store is configured for ${this.dimensions} (PERSONAHUB_EMBEDDING_DIMENSIONS)`);
    }
    // The space is written once and never changes, so a space found to match stays matched: the index
    // stage checks every persona's, and after the first that costs no round trip.
    if (this.spaceChecked === `${model}:${dimensions}`) return;
    await this.sql.query(`INSERT INTO store_meta (key, value) VALUES ('embedding_space', $1) ON CONFLICT (key) DO NOTHING`, [`${model}:${dimensions}`]);
    const [row] = await this.sql.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'embedding_space'`);
    if (row && row.value !== `${model}:${dimensions}`) {
      throw new StoreError('PH_STORE_EMBEDDING_MISMATCH', `the store holds vectors of ${row.value} but the embedder is ${model}:${dimensions}; mixing embedding spaces breaks search. Use the same PERSONAHUB_EMBEDDING_MODEL, or a new database`);
    }
    this.spaceChecked = `${model}:${dimensions}`;
  }

  async claimInputs(stage: string, claims: readonly InputClaim[]): Promise<Map<string, string>> {
    const owners = new Map<string, string>();
    if (claims.length === 0) return owners;
    // One statement, so one round trip per chunk. DISTINCT ON keeps the first claim of an identity in
    // the call (ON CONFLICT DO UPDATE may not touch a row twice) and orders the rows by identity, so
    // two calls claiming overlapping sets lock them in the same order. The no-op DO UPDATE is what
    // makes RETURNING give the existing owner of an identity claimed before, even by a transaction
    // that committed while this one waited on it (DO NOTHING would return nothing for those rows, and
    // a following SELECT in the same statement would not see them).
    const rows = await this.sql.query<{ identity: string; delivery: string }>(
      `INSERT INTO input_claims (stage, identity, delivery)
       SELECT DISTINCT ON (c.identity) $1, c.identity, c.delivery
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS c(identity, delivery, ord)
        ORDER BY c.identity, c.ord
       ON CONFLICT (stage, identity) DO UPDATE SET delivery = input_claims.delivery
       RETURNING identity, delivery`,
      [stage, claims.map((c) => c.identity), claims.map((c) => c.delivery)],
    );
    for (const r of rows) owners.set(r.identity, r.delivery);
    const missing = claims.find((c) => !owners.has(c.identity));
    if (missing) throw new StoreError('PH_STORE_CLAIM', `input claim ${stage}:${missing.identity} has no owner after claiming`, { transient: true });
    return owners;
  }

  async releaseInput(stage: string, identity: string, delivery: string): Promise<void> {
    await this.sql.query('DELETE FROM input_claims WHERE stage = $1 AND identity = $2 AND delivery = $3', [stage, identity, delivery]);
  }

  /** Concurrent upserts (a chunk's personas, PERSONAHUB_MAX_IN_FLIGHT at a time) go as one statement. */
  private readonly upserts = new GroupCommit((batch: Upsert[]) => this.upsertMany(batch));

  async upsertPersona(p: Persona, delivery: string): Promise<UpsertOutcome> {
    const e = p.enrichment;
    if (!e) throw new StoreError('PH_STORE_NOT_ENRICHED', `persona ${p.id} has no enrichment; only validated personas are indexed`);
    return this.upserts.call({ p, e, delivery });
  }

  /**
   * One statement per round. Each row records the delivery that last changed it and the outcome it got.
   * The update runs when the row changes, or when the delivery that last changed it writes it again (a
   * redo after its Kafka transaction aborted: same record, same content, so the values it sets are the
   * ones already there); RETURNING then says INSERTED, UPDATED, or the redone write's original outcome.
   * Any other delivery finding the row unchanged updates nothing: no row comes back, which is UNCHANGED.
   * ON CONFLICT DO UPDATE may not touch a row twice in one statement, so a persona twice in the batch
   * (two copies delivered together) goes in the next round, after its first copy.
   */
  private async upsertMany(batch: Upsert[]): Promise<UpsertOutcome[]> {
    const outcomes: UpsertOutcome[] = new Array<UpsertOutcome>(batch.length).fill('UNCHANGED');
    let rest = batch.map((b, i) => ({ ...b, i }));
    while (rest.length > 0) {
      const ids = new Set<string>();
      const round: typeof rest = [];
      const later: typeof rest = [];
      for (const r of rest) {
        (ids.has(r.p.id) ? later : round).push(r);
        ids.add(r.p.id);
      }
      const values = round.map((_, k) => {
        const $ = (n: number) => `$${k * UPSERT_COLUMNS + n}`;
        return `(${$(1)},${$(2)},${$(3)},${$(4)},${$(5)},${$(6)},${$(7)},${$(8)},${$(9)}::jsonb,${$(10)}::jsonb,${$(11)},${$(12)},${$(13)}::vector,${$(14)},${$(15)}::jsonb,to_timestamp(${$(16)} / 1000.0),${$(17)},'INSERTED')`;
      });
      const rows = await this.sql.query<{ id: string; last_outcome: 'INSERTED' | 'UPDATED' }>(
        `INSERT INTO personas (id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model,
           embedding, embedding_model, lineage, created_at, last_delivery, last_outcome)
         VALUES ${values.join(',\n')}
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, age = EXCLUDED.age,
           occupation = EXCLUDED.occupation, locale = EXCLUDED.locale, description = EXCLUDED.description,
           attributes = EXCLUDED.attributes, modalities = EXCLUDED.modalities, mode = EXCLUDED.mode, model = EXCLUDED.model,
           embedding = EXCLUDED.embedding, embedding_model = EXCLUDED.embedding_model,
           indexed_at = CASE WHEN ${CHANGES_ROW} THEN now() ELSE personas.indexed_at END,
           last_delivery = EXCLUDED.last_delivery,
           last_outcome = CASE WHEN ${CHANGES_ROW} THEN 'UPDATED' ELSE personas.last_outcome END
         WHERE ${CHANGES_ROW} OR personas.last_delivery = EXCLUDED.last_delivery
         RETURNING id, last_outcome`,
        round.flatMap(upsertRow),
      );
      const outcome = new Map(rows.map((r) => [r.id, r.last_outcome]));
      for (const r of round) outcomes[r.i] = outcome.get(r.p.id) ?? 'UNCHANGED';
      rest = later;
    }
    return outcomes;
  }

  /** Concurrent claims (a chunk's personas) go as one pair of statements. */
  private readonly signatureClaims = new GroupCommit((batch: { kind: string; signature: string; personaId: string }[]) => this.claimSignatures(batch));

  claimSignature(kind: string, signature: string, personaId: string): Promise<string> {
    return this.signatureClaims.call({ kind, signature, personaId });
  }

  /** The first claim of a signature wins, an earlier call's or the batch's own first (DO NOTHING keeps it). */
  private async claimSignatures(batch: { kind: string; signature: string; personaId: string }[]): Promise<string[]> {
    const kinds = batch.map((b) => b.kind);
    const signatures = batch.map((b) => b.signature);
    await this.sql.query(
      `INSERT INTO dedup_signatures (kind, signature, persona_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
       ON CONFLICT (kind, signature) DO NOTHING`, [kinds, signatures, batch.map((b) => b.personaId)]);
    const rows = await this.sql.query<{ kind: string; signature: string; persona_id: string }>(
      'SELECT d.kind, d.signature, d.persona_id FROM dedup_signatures d JOIN unnest($1::text[], $2::text[]) AS c(kind, signature) USING (kind, signature)',
      [kinds, signatures]);
    const owner = new Map(rows.map((r) => [`${r.kind}\u0000${r.signature}`, r.persona_id]));
    return batch.map((b) => {
      const id = owner.get(`${b.kind}\u0000${b.signature}`);
      if (id === undefined) throw new StoreError('PH_STORE_SIGNATURE', `signature ${b.kind}:${b.signature} vanished after insert`, { transient: true });
      return id;
    });
  }

  /** Concurrent decisions (a chunk's personas) go as one transaction: see claimNearDuplicates. */
  private readonly nearClaims = new GroupCommit((batch: NearDecision[]) => claimNearDuplicates(this.sql, batch));

  async claimNearDuplicate<V extends { duplicateOf: string | undefined }>(claim: NearClaim, decide: (candidates: readonly NearCandidate[]) => V): Promise<NearOutcome<V>> {
    // The batch's decisions are typed alike; this call's own verdict is kept here, as its own type.
    let verdict: V | undefined;
    const outcome = await this.nearClaims.call({ claim, decide: (candidates) => (verdict = decide(candidates)) });
    if ('already' in outcome || verdict === undefined) return { duplicateOf: undefined, already: true };
    return verdict;
  }

  reserveExpansion(parentId: string, rootSeedId: string, want: number, budget: number): Promise<number> {
    return reserveExpansion(this.sql, parentId, rootSeedId, want, budget);
  }

  addRelation(edge: Omit<LatticeEdge, 'createdAt'>): Promise<void> {
    return addRelation(this.sql, edge);
  }

  expansionGrants(parentIds: readonly string[]): Promise<Map<string, number>> {
    return expansionGrants(this.sql, parentIds);
  }

  neighbours(id: string, depth: number) {
    return neighbours(this.sql, id, depth);
  }

  latticeTables(o: { limitEdges: number }) {
    return latticeTables(this.sql, o);
  }

  async search(vector: number[], limit: number): Promise<SearchHit[]> {
    const rows = await this.sql.query<SearchHit & { score: number | string }>(
      `SELECT id, name, occupation, description, mode, cluster, 1 - (embedding <=> $1::vector) AS score
       FROM personas ORDER BY embedding <=> $1::vector LIMIT $2`,
      [toVector(vector), limit],
    );
    return rows.map((r) => ({ ...r, score: Number(r.score) }));
  }

  async nearest(vector: number[], excludeId: string): Promise<{ id: string; score: number } | undefined> {
    const [row] = await this.sql.query<{ id: string; score: number | string }>(
      `SELECT id, 1 - (embedding <=> $1::vector) AS score FROM personas WHERE id <> $2 ORDER BY embedding <=> $1::vector LIMIT 1`,
      [toVector(vector), excludeId],
    );
    return row ? { id: row.id, score: Number(row.score) } : undefined;
  }

  async embeddings(limit: number): Promise<{ id: string; embedding: number[] }[]> {
    const rows = await this.sql.query<{ id: string; embedding: string }>('SELECT id, embedding::text AS embedding FROM personas ORDER BY id LIMIT $1', [limit]);
    return rows.map((r) => ({ id: r.id, embedding: JSON.parse(r.embedding) as number[] }));
  }

  async setClusters(assignments: readonly { id: string; cluster: number }[]): Promise<void> {
    // One statement for the whole set: unnest pairs the two arrays row by row.
    await this.sql.query('UPDATE personas p SET cluster = a.cluster FROM unnest($1::text[], $2::int[]) AS a(id, cluster) WHERE p.id = a.id',
      [assignments.map((a) => a.id), assignments.map((a) => a.cluster)]);
  }

  async countPersonas(): Promise<number> {
    const [row] = await this.sql.query<{ n: number | string }>('SELECT count(*) AS n FROM personas');
    return Number(row?.n ?? 0);
  }

  async getPersona(id: string) {
    const [row] = await this.sql.query<{ id: string; description: string; embedding_model: string; embedding: string; mode: string; model: string }>(
      'SELECT id, description, embedding_model, embedding::text AS embedding, mode, model FROM personas WHERE id = $1', [id]);
    if (!row) return undefined;
    return { id: row.id, description: row.description, embeddingModel: row.embedding_model, embedding: JSON.parse(row.embedding) as number[], mode: row.mode, model: row.model };
  }

  deletePersona(id: string): Promise<boolean> {
    return deletePersona(this.sql, id);
  }

  readPersona(id: string): Promise<Persona | undefined> {
    return readPersona(this.sql, id);
  }

  readPersonasAfter(afterId: string | null, limit: number): Promise<Persona[]> {
    return readPersonasAfter(this.sql, afterId, limit);
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}
