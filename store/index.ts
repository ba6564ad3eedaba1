import { PersonaHubError } from '../core/errors.ts';
import type { Persona } from '../schemas/types.generated.ts';
import type { NearCandidate, NearClaim } from './dedup.ts';
import type { LatticeEdge, LatticeTables } from './lattice.ts';

export type { NearCandidate, NearClaim } from './dedup.ts';
export type { LatticeEdge, LatticeTables } from './lattice.ts';

export class StoreError extends PersonaHubError {
  constructor(code: `PH_STORE_${string}`, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    // A transient store failure is always the database not answering (or refusing for now).
    super(code, message, { ...options, ...(options.transient ? { dependency: 'store' as const } : {}) });
  }
}

/**
 * The SQL both implementations speak: PGlite and a PostgreSQL server run the same statements. A failed
 * statement rejects with a StoreError: PH_STORE_UNAVAILABLE (transient) when the database did not
 * answer or refused for now, PH_STORE_QUERY (permanent) for anything the statement itself got wrong.
 */
export type Query = <T extends object>(sql: string, params?: unknown[]) => Promise<T[]>;

export interface SqlClient {
  query<T extends object>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it
   * rejects (the rejection passes through). Locks taken inside (pg_advisory_xact_lock, FOR UPDATE) are
   * held until it ends.
   */
  transaction<T>(work: (query: Query) => Promise<T>): Promise<T>;
  /**
   * Runs `statements` in order on one connection while holding the advisory lock `lock` of the
   * database, so every process doing the same at the same time takes its turn (concurrent DDL on a
   * new database races in the catalog otherwise). A single-connection client simply runs them.
   */
  exclusive(lock: bigint, statements: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** One input a stage is about to process: what it is (its identity) and which record carried it (its delivery). */
export interface InputClaim {
  identity: string;
  delivery: string;
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
   * For each (stage, identity) the first delivery to claim it owns it, for good. Returns identity →
   * owning delivery for every claim passed (within one call, the earlier claim of an identity wins).
   * The runner processes an input only when its own delivery owns it: a redelivery of the same
   * record (after a crash) is processed again, while a copy at a new offset (a re-ingested seed, a
   * replayed dead letter) whose identity was already processed is skipped. One round trip per call.
   */
  claimInputs(stage: string, claims: readonly InputClaim[]): Promise<Map<string, string>>;
  /**
   * Gives a claim back, only if `delivery` owns it (the input was dead-lettered), so a later replay of
   * that input can claim it and be processed.
   */
  releaseInput(stage: string, identity: string, delivery: string): Promise<void>;
  /**
   * Idempotent: a re-delivered persona changes nothing and says UNCHANGED. A newer version replaces the
   * row; so does the same version with other text or models (the same seed re-run in another mode), so
   * the store never keeps text the topics no longer carry.
   *
   * The row remembers the delivery that last changed it and the outcome it got. The same delivery
   * finding the row unchanged gets that outcome again, not UNCHANGED: its first write was committed in
   * the database but the Kafka transaction announcing it aborted, so the redo must announce it the
   * same way (the indexed topic says INSERTED exactly once). Any other delivery gets UNCHANGED.
   */
  upsertPersona(persona: Persona, delivery: string): Promise<UpsertOutcome>;
  /**
   * Claims a dedup signature for a persona. Returns the persona that owns it: the caller's own id
   * when it is new (or a re-delivery of the same persona), another id when it is a duplicate.
   */
  claimSignature(kind: string, signature: string, personaId: string): Promise<string>;
  /**
   * Near-duplicate removal, atomic across instances: see store/dedup.ts claimNearDuplicate. `decide` is
   * the pure decision over the candidates found under the band keys' locks.
   */
  claimNearDuplicate<V extends { duplicateOf: string | undefined }>(claim: NearClaim, decide: (candidates: readonly NearCandidate[]) => V): Promise<V | { duplicateOf: undefined; already: true }>;
  /** Grants a parent up to `want` expansions out of its root's budget, once (store/lattice.ts reserveExpansion). */
  reserveExpansion(parentId: string, rootSeedId: string, want: number, budget: number): Promise<number>;
  /** The grant recorded for each parent that has one. */
  expansionGrants(parentIds: readonly string[]): Promise<Map<string, number>>;
  /** Records a lattice edge; idempotent. */
  addRelation(edge: Omit<LatticeEdge, 'createdAt'>): Promise<void>;
  /** Edges within `depth` hops of a persona, both directions, nearest first. */
  neighbours(id: string, depth: number): Promise<(LatticeEdge & { hops: number })[]>;
  /** Lattice shape for the report. */
  latticeTables(o: { limitEdges: number }): Promise<LatticeTables>;
  search(vector: number[], limit: number): Promise<SearchHit[]>;
  /** The stored persona closest to `vector` by cosine, other than `excludeId` (near-duplicate check). */
  nearest(vector: number[], excludeId: string): Promise<{ id: string; score: number } | undefined>;
  countPersonas(): Promise<number>;
  /** Up to `limit` persona ids with their vectors, in id order (a stable sample for population analytics). */
  embeddings(limit: number): Promise<{ id: string; embedding: number[] }[]>;
  /** Records cluster ids (from `personahub clusters`); personas not listed keep theirs. */
  setClusters(assignments: readonly { id: string; cluster: number }[]): Promise<void>;
  getPersona(id: string): Promise<{ id: string; description: string; embeddingModel: string; embedding: number[]; mode: string; model: string } | undefined>;
  /** The whole persona as indexed (the `Persona` of the topics, embedding included). */
  readPersona(id: string): Promise<Persona | undefined>;
  /**
   * Removes a persona (a tombstone reached the indexer): it leaves search, listings and the near-duplicate
   * checks. Idempotent; true when there was a row to remove.
   */
  deletePersona(id: string): Promise<boolean>;
  /** Up to `limit` whole personas after `afterId` in id order (from the first when null): keyset pagination. */
  readPersonasAfter(afterId: string | null, limit: number): Promise<Persona[]>;
  close(): Promise<void>;
}
