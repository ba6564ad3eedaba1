import type { Persona } from '../schemas/types.generated.ts';
import { StoreError, type SearchHit, type SqlClient, type Store, type UpsertOutcome } from './index.ts';

const toVector = (v: number[]): string => `[${v.join(',')}]`;

/** Both stores share these statements; only the connection differs. */
export class SqlStore implements Store {
  constructor(readonly kind: 'postgres' | 'pglite', private readonly sql: SqlClient, private readonly dimensions: number) {}

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
      'ALTER TABLE personas ADD COLUMN IF NOT EXISTS cluster int',
      `CREATE TABLE IF NOT EXISTS relations (from_id text NOT NULL, to_id text NOT NULL, kind text NOT NULL, depth int NOT NULL,
        PRIMARY KEY (from_id, to_id, kind))`,
      `CREATE TABLE IF NOT EXISTS dedup_signatures (kind text NOT NULL, signature text NOT NULL, persona_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, signature))`,
    ];
    try {
      for (const s of statements) await this.sql.query(s);
    } catch (cause) {
      // Two instances migrating at once can race on CREATE ... IF NOT EXISTS; the loser retries.
      throw new StoreError('PH_STORE_MIGRATE', `store migration failed: ${(cause as Error).message}`, { cause, transient: true });
    }
  }

  async checkEmbeddingSpace(model: string, dimensions: number): Promise<void> {
    if (dimensions !== this.dimensions) {
      throw new StoreError('PH_STORE_EMBEDDING_MISMATCH', `embedder ${model} makes ${dimensions}-dim vectors but the store is configured for ${this.dimensions} (PERSONAHUB_EMBEDDING_DIMENSIONS)`);
    }
    await this.sql.query(`INSERT INTO store_meta (key, value) VALUES ('embedding_space', $1) ON CONFLICT (key) DO NOTHING`, [`${model}:${dimensions}`]);
    const [row] = await this.sql.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'embedding_space'`);
    if (row && row.value !== `${model}:${dimensions}`) {
      throw new StoreError('PH_STORE_EMBEDDING_MISMATCH', `the store holds vectors of ${row.value} but the embedder is ${model}:${dimensions}; mixing embedding spaces breaks search. Use the same PERSONAHUB_EMBEDDING_MODEL, or a new database`);
    }
  }

  async upsertPersona(p: Persona): Promise<UpsertOutcome> {
    const e = p.enrichment;
    if (!e) throw new StoreError('PH_STORE_NOT_ENRICHED', `persona ${p.id} has no enrichment; only validated personas are indexed`);
    const { embedding, embeddingModel, enrichedAt: _enrichedAt, ...modalities } = e;
    const rows = await this.sql.query<{ inserted: boolean }>(
      `INSERT INTO personas (id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model,
         embedding, embedding_model, lineage, created_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10::jsonb,$11,$12,$13::vector,$14,$15::jsonb,to_timestamp($16 / 1000.0))
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, age = EXCLUDED.age,
         occupation = EXCLUDED.occupation, locale = EXCLUDED.locale, description = EXCLUDED.description,
         attributes = EXCLUDED.attributes, modalities = EXCLUDED.modalities, mode = EXCLUDED.mode, model = EXCLUDED.model,
         embedding = EXCLUDED.embedding, embedding_model = EXCLUDED.embedding_model, indexed_at = now()
       WHERE personas.version < EXCLUDED.version
          OR (personas.version = EXCLUDED.version AND (personas.description, personas.model, personas.embedding_model)
              IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.model, EXCLUDED.embedding_model))
       RETURNING (xmax = 0) AS inserted`,
      [
        p.id, p.version, p.seedId, p.name, p.age, p.occupation, p.locale, p.description,
        JSON.stringify({ traits: p.traits, seedRelation: p.seedRelation, validation: p.validation }),
        JSON.stringify(modalities), p.provenance.mode, p.provenance.model, toVector(embedding), embeddingModel,
        JSON.stringify({ seedId: p.seedId, generationIndex: p.generationIndex, promptVersion: p.provenance.promptVersion }),
        p.provenance.createdAt,
      ],
    );
    const [row] = rows;
    if (!row) return 'UNCHANGED';
    return row.inserted ? 'INSERTED' : 'UPDATED';
  }

  async claimSignature(kind: string, signature: string, personaId: string): Promise<string> {
    await this.sql.query('INSERT INTO dedup_signatures (kind, signature, persona_id) VALUES ($1,$2,$3) ON CONFLICT (kind, signature) DO NOTHING', [kind, signature, personaId]);
    const [row] = await this.sql.query<{ persona_id: string }>('SELECT persona_id FROM dedup_signatures WHERE kind = $1 AND signature = $2', [kind, signature]);
    if (!row) throw new StoreError('PH_STORE_SIGNATURE', `signature ${kind}:${signature} vanished after insert`, { transient: true });
    return row.persona_id;
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

  close(): Promise<void> {
    return this.sql.close();
  }
}
