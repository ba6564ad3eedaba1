import { PersonaHubError } from '../core/errors.ts';
import type { Persona } from '../schemas/types.generated.ts';

export class StoreError extends PersonaHubError {
  constructor(code: `PH_STORE_${string}`, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    // A transient store failure is always the database not answering (or refusing for now).
    super(code, message, { ...options, ...(options.transient ? { dependency: 'store' as const } : {}) });
  }
}

/** The SQL both implementations speak: PGlite and a PostgreSQL server run the same statements. */
export interface SqlClient {
  query<T extends object>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export type UpsertOutcome = 'INSERTED' | 'UPDATED' | 'UNCHANGED';

export interface SearchHit {
  id: string;
  name: string;
  occupation: string;
  description: string;
  mode: string;
  cluster: number | null;
  score: number;
}

export interface Store {
  readonly kind: 'postgres' | 'pglite';
  /** Creates tables and indexes; idempotent, safe to run from every instance at start. */
  migrate(): Promise<void>;
  /**
   * Records which embedding model and size the vectors are in, the first time; afterwards refuses a
   * different one, because mixing two embedding spaces silently breaks search and near-dup checks.
   */
  checkEmbeddingSpace(model: string, dimensions: number): Promise<void>;
  /**
   * Idempotent: a re-delivered persona changes nothing and says UNCHANGED. A newer version replaces the
   * row; so does the same version with other text or models (the same seed re-run in another mode), so
   * the store never keeps text the topics no longer carry.
   */
  upsertPersona(persona: Persona): Promise<UpsertOutcome>;
  /**
   * Claims a dedup signature for a persona. Returns the persona that owns it: the caller's own id
   * when it is new (or a re-delivery of the same persona), another id when it is a duplicate.
   */
  claimSignature(kind: string, signature: string, personaId: string): Promise<string>;
  search(vector: number[], limit: number): Promise<SearchHit[]>;
  /** The stored persona closest to `vector` by cosine, other than `excludeId` (near-duplicate check). */
  nearest(vector: number[], excludeId: string): Promise<{ id: string; score: number } | undefined>;
  countPersonas(): Promise<number>;
  /** Up to `limit` persona ids with their vectors, in id order (a stable sample for population analytics). */
  embeddings(limit: number): Promise<{ id: string; embedding: number[] }[]>;
  /** Records cluster ids (from `personahub clusters`); personas not listed keep theirs. */
  setClusters(assignments: readonly { id: string; cluster: number }[]): Promise<void>;
  getPersona(id: string): Promise<{ id: string; description: string; embeddingModel: string; embedding: number[]; mode: string; model: string } | undefined>;
  close(): Promise<void>;
}
