import { randomBytes } from 'node:crypto';
import { fidelityRows, type FidelityRow } from './fidelity.ts';
import { StoreError, type SqlClient } from './index.ts';

/**
 * What the HTTP API reads and keeps beyond the pipeline's own tables: persona records with filters and
 * keyset pages, vector search with the filters inside the index scan, clusters, population figures, API
 * keys and generation jobs. Functions over a SqlClient, so both stores run them; SqlStore has thin methods.
 */

/** The API's tables; run by SqlStore.migrate under the migration lock with the pipeline's. */
export const CORPUS_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS api_keys (id text PRIMARY KEY, key_hash text NOT NULL UNIQUE, scope text NOT NULL CHECK (scope IN ('read', 'write')),
    label text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS api_jobs (id text PRIMARY KEY, seed_ids jsonb NOT NULL, sent int NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('sending', 'sent', 'cancelled', 'failed')), error text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
  // Modifications submitted through the API, so each gets its own version number even while an earlier
  // one is still on its way through the pipeline (or was rejected by validation: its number is skipped).
  `CREATE TABLE IF NOT EXISTS persona_edits (id text NOT NULL, version int NOT NULL, changes jsonb NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, version))`,
  // Every version a newer one replaced, kept by a trigger, so the history holds whatever path the newer
  // version came by (the API, a re-run) and the indexer's upsert stays one statement.
  `CREATE TABLE IF NOT EXISTS persona_versions (id text NOT NULL, version int NOT NULL, name text NOT NULL, age int NOT NULL,
    occupation text NOT NULL, locale text NOT NULL, description text NOT NULL, attributes jsonb NOT NULL, modalities jsonb NOT NULL,
    mode text NOT NULL, model text NOT NULL, lineage jsonb NOT NULL, created_at timestamptz NOT NULL, indexed_at timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, version))`,
  `CREATE OR REPLACE FUNCTION personas_keep_version() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NEW.version > OLD.version THEN
       INSERT INTO persona_versions (id, version, name, age, occupation, locale, description, attributes, modalities, mode, model, lineage, created_at, indexed_at)
       VALUES (OLD.id, OLD.version, OLD.name, OLD.age, OLD.occupation, OLD.locale, OLD.description, OLD.attributes, OLD.modalities, OLD.mode, OLD.model,
               OLD.lineage, OLD.created_at, OLD.indexed_at)
       ON CONFLICT (id, version) DO NOTHING;
     END IF;
     RETURN NEW;
   END $$`,
  'CREATE OR REPLACE TRIGGER personas_keep_version BEFORE UPDATE ON personas FOR EACH ROW EXECUTE FUNCTION personas_keep_version()',
];

/**
 * One clause of the filter language as the store needs it: the attribute, its kind (which says how to
 * compare), the operator and the value. The API turns persona/filter.ts's clauses into these; the store
 * does not import persona/ (the layers point down), so the kind travels with the clause.
 */
export interface AttributeClause {
  attribute: string;
  kind: 'number' | 'string' | 'list';
  op: '=' | '!=' | '>=' | '<=' | '>' | '<';
  value: string | number;
}

export interface PersonaFilter {
  where?: readonly AttributeClause[];
  cluster?: number;
  mode?: string;
  model?: string;
  depth?: number;
  createdAfter?: number;
  createdBefore?: number;
}

export interface PersonaSummary {
  id: string;
  version: number;
  name: string;
  age: number;
  occupation: string;
  locale: string;
  description: string;
  mode: string;
  model: string;
  cluster: number | null;
  createdAt: number;
}

export interface PersonaRecord extends PersonaSummary {
  seedId: string;
  attributes: Record<string, unknown>;
  modalities: Record<string, unknown>;
  lineage: Record<string, unknown>;
  embeddingModel: string;
  indexedAt: number;
}

export interface ScoredPersona extends PersonaSummary {
  score: number;
}

export interface ClusterSummary {
  cluster: number;
  size: number;
  /** The cluster's most common occupations, most common first: a label a reader can take in. */
  label: string;
  members: { id: string; name: string; occupation: string }[];
}

export interface PopulationStats {
  personas: number;
  byMode: Record<string, number>;
  byModel: Record<string, number>;
  byDepth: Record<string, number>;
  age: { min: number | null; max: number | null; mean: number | null; histogram: { from: number; to: number; count: number }[] };
  topOccupations: { value: string; count: number }[];
  topLocales: { value: string; count: number }[];
  clusters: number;
  clustered: number;
}

export interface ApiKeyRecord {
  id: string;
  scope: 'read' | 'write';
  label: string;
}

export interface PersonaVersion {
  version: number;
  name: string;
  age: number;
  occupation: string;
  locale: string;
  description: string;
  model: string;
  indexedAt: number;
  /** When a newer version replaced it; null for the current one. */
  replacedAt: number | null;
}

export type JobStatus = 'sending' | 'sent' | 'cancelled' | 'failed';

export interface JobRecord {
  id: string;
  seedIds: string[];
  sent: number;
  status: JobStatus;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Persona attributes kept in their own columns; every other attribute is read from the attributes document. */
const COLUMNS: Readonly<Record<string, string>> = { age: 'p.age', occupation: 'p.occupation', name: 'p.name', locale: 'p.locale' };
/** List attributes are stored under their plural (a persona has several traits, languages...). */
const LIST_KEYS: Readonly<Record<string, string>> = { trait: 'traits', language: 'languages', hobby: 'hobbies', skill: 'skills' };

const SUMMARY_COLUMNS = `p.id, p.version, p.name, p.age, p.occupation, p.locale, p.description, p.mode, p.model, p.cluster,
  (extract(epoch from p.created_at) * 1000)::float8 AS created_ms`;

/** A summary as the database returns it: the creation time as epoch milliseconds, maybe as text. */
type SummaryRow = Omit<PersonaSummary, 'createdAt'> & { created_ms: number | string };

const summary = (r: SummaryRow): PersonaSummary => ({
  id: r.id, version: r.version, name: r.name, age: r.age, occupation: r.occupation, locale: r.locale, description: r.description,
  mode: r.mode, model: r.model, cluster: r.cluster, createdAt: Math.round(Number(r.created_ms)),
});

/**
 * The filter as SQL conditions over `personas p`, with every value (and every attribute name read from the
 * attributes document) passed as a parameter, numbered from `params.length + 1`. Comparisons of strings are
 * case-insensitive, as persona/filter.ts's `sameValue`; an attribute a persona lacks never matches `=` and
 * always matches `!=`, as `clauseHolds` says.
 */
export function filterSql(filter: PersonaFilter, params: unknown[]): string[] {
  const p = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const conditions: string[] = [];
  for (const c of filter.where ?? []) {
    if (c.kind === 'number') {
      const column = COLUMNS[c.attribute] ?? `(p.attributes->>${p(c.attribute)})::numeric`;
      conditions.push(`${column} ${c.op} ${p(Number(c.value))}`);
    } else if (c.kind === 'string') {
      const expr = COLUMNS[c.attribute] ?? `p.attributes->>${p(c.attribute)}`;
      conditions.push(c.op === '='
        ? `lower(${expr}) = lower(${p(String(c.value))})`
        : `(${expr} IS NULL OR lower(${expr}) <> lower(${p(String(c.value))}))`);
    } else {
      const key = LIST_KEYS[c.attribute] ?? `${c.attribute}s`;
      const has = `EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.attributes->${p(key)}) = 'array' THEN p.attributes->${p(key)} ELSE '[]'::jsonb END) AS v(x)
        WHERE lower(v.x) = lower(${p(String(c.value))}))`;
      conditions.push(c.op === '=' ? has : `NOT ${has}`);
    }
  }
  if (filter.cluster !== undefined) conditions.push(`p.cluster = ${p(filter.cluster)}`);
  if (filter.mode !== undefined) conditions.push(`lower(p.mode) = lower(${p(filter.mode)})`);
  if (filter.model !== undefined) conditions.push(`p.model = ${p(filter.model)}`);
  if (filter.depth !== undefined) conditions.push(`${DEPTH} = ${p(filter.depth)}`);
  if (filter.createdAfter !== undefined) conditions.push(`p.created_at >= to_timestamp(${p(filter.createdAfter)} / 1000.0)`);
  if (filter.createdBefore !== undefined) conditions.push(`p.created_at < to_timestamp(${p(filter.createdBefore)} / 1000.0)`);
  return conditions;
}

/**
 * A persona's lattice depth: the indexer keeps the event's lineage under `lineage` in the lineage column.
 * Personas indexed before lineage existed have none: they were drafted from a source seed, depth 0.
 */
const DEPTH = `COALESCE((p.lineage->'lineage'->>'depth')::int, 0)`;

const whereOf = (conditions: readonly string[]): string => (conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`);

export async function getPersonaRecord(sql: SqlClient, id: string): Promise<PersonaRecord | undefined> {
  const [row] = await sql.query<SummaryRow & { seed_id: string; attributes: Record<string, unknown>; modalities: Record<string, unknown>; lineage: Record<string, unknown>; embedding_model: string; indexed_ms: number | string }>(
    `SELECT ${SUMMARY_COLUMNS}, p.seed_id, p.attributes, p.modalities, p.lineage, p.embedding_model,
       (extract(epoch from p.indexed_at) * 1000)::float8 AS indexed_ms
     FROM personas p WHERE p.id = $1`, [id]);
  if (!row) return undefined;
  return {
    ...summary(row), seedId: row.seed_id, attributes: row.attributes, modalities: row.modalities, lineage: row.lineage,
    embeddingModel: row.embedding_model, indexedAt: Math.round(Number(row.indexed_ms)),
  };
}

/** One keyset page in id order: personas with an id after `after`, and whether more follow. */
export async function listPersonas(sql: SqlClient, filter: PersonaFilter, page: { after?: string; limit: number }): Promise<{ items: PersonaSummary[]; more: boolean }> {
  const params: unknown[] = [];
  const conditions = filterSql(filter, params);
  if (page.after !== undefined) {
    params.push(page.after);
    conditions.push(`p.id > $${params.length}`);
  }
  params.push(page.limit + 1);
  const rows = await sql.query<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM personas p ${whereOf(conditions)} ORDER BY p.id LIMIT $${params.length}`, params);
  return { items: rows.slice(0, page.limit).map(summary), more: rows.length > page.limit };
}

/**
 * Candidates the HNSW scan keeps per step (pgvector's default is 40). The search benchmark measured
 * recall@10 at 100k personas with a filter at 0.948 with the default, under the 0.95 target; a wider
 * list costs a little time per query for it (docs/BENCHMARKS.md, search).
 */
const SEARCH_EF = 100;

/**
 * The `limit` personas closest to `vector` by cosine that pass the filter. The filter runs inside the HNSW
 * scan: with pgvector's iterative scan (0.8+) the index keeps producing candidates until `limit` of them pass,
 * where a plain HNSW scan stops after ef_search candidates and a selective filter would leave fewer than
 * asked for (or none). `relaxed_order` may return the candidates slightly out of order, so the outer query
 * sorts them again. set_config(..., true) holds for this statement's transaction only, and the LATERAL makes
 * the scan start after it ran.
 */
export async function searchPersonas(sql: SqlClient, vector: readonly number[], filter: PersonaFilter, limit: number, excludeId?: string): Promise<ScoredPersona[]> {
  const params: unknown[] = [`[${vector.join(',')}]`];
  const conditions = filterSql(filter, params);
  if (excludeId !== undefined) {
    params.push(excludeId);
    conditions.push(`p.id <> $${params.length}`);
  }
  params.push(limit);
  const rows = await sql.query<SummaryRow & { distance: number | string }>(
    `SELECT hits.* FROM (SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) AS mode,
                               set_config('hnsw.ef_search', '${SEARCH_EF}', true) AS ef) AS s,
       LATERAL (SELECT ${SUMMARY_COLUMNS}, p.embedding <=> $1::vector AS distance FROM personas p
                ${whereOf([...conditions, 's.mode IS NOT NULL', 's.ef IS NOT NULL'])} ORDER BY p.embedding <=> $1::vector LIMIT $${params.length}) AS hits
     ORDER BY hits.distance, hits.id`, params);
  return rows.map((r) => ({ ...summary(r), score: 1 - Number(r.distance) }));
}

/** Every version of a persona the store has seen indexed, oldest first, the current one last. */
export async function personaVersions(sql: SqlClient, id: string): Promise<PersonaVersion[]> {
  const rows = await sql.query<{ version: number; name: string; age: number; occupation: string; locale: string; description: string; model: string; indexed_ms: number | string; replaced_ms: number | string | null }>(
    `SELECT version, name, age, occupation, locale, description, model, (extract(epoch from indexed_at) * 1000)::float8 AS indexed_ms,
            (extract(epoch from replaced_at) * 1000)::float8 AS replaced_ms FROM persona_versions WHERE id = $1
     UNION ALL
     SELECT version, name, age, occupation, locale, description, model, (extract(epoch from indexed_at) * 1000)::float8, NULL FROM personas WHERE id = $1
     ORDER BY version`, [id]);
  return rows.map((r) => ({
    version: r.version, name: r.name, age: r.age, occupation: r.occupation, locale: r.locale, description: r.description, model: r.model,
    indexedAt: Math.round(Number(r.indexed_ms)), replacedAt: r.replaced_ms === null ? null : Math.round(Number(r.replaced_ms)),
  }));
}

/**
 * Records a modification and gives it the next version number: one above both the stored version and
 * every modification submitted before. Undefined when another modification took that number at the same
 * moment (the caller answers 409; a retry gets the next one).
 */
export async function submitEdit(sql: SqlClient, id: string, storedVersion: number, changes: Record<string, unknown>): Promise<number | undefined> {
  const [row] = await sql.query<{ version: number }>(
    `INSERT INTO persona_edits (id, version, changes)
     SELECT $1, GREATEST($2::int, COALESCE((SELECT max(version) FROM persona_edits WHERE id = $1), 0)) + 1, $3::jsonb
     ON CONFLICT (id, version) DO NOTHING RETURNING version`, [id, storedVersion, JSON.stringify(changes)]);
  return row?.version;
}

/** See Store.deletePersona. The versions it replaced stay in persona_versions. */
export async function deletePersona(sql: SqlClient, id: string): Promise<boolean> {
  const rows = await sql.query<{ id: string }>('DELETE FROM personas WHERE id = $1 RETURNING id', [id]);
  return rows.length > 0;
}

/** Summaries of the given personas, in id order; ids with no persona are left out. */
export async function personaSummaries(sql: SqlClient, ids: readonly string[]): Promise<PersonaSummary[]> {
  const rows = await sql.query<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM personas p WHERE p.id = ANY($1::text[]) ORDER BY p.id`, [ids]);
  return rows.map(summary);
}

/** The stored vector of one persona (for "similar to"), or undefined when there is no such persona. */
export async function personaVector(sql: SqlClient, id: string): Promise<number[] | undefined> {
  const [row] = await sql.query<{ embedding: string }>('SELECT embedding::text AS embedding FROM personas WHERE id = $1', [id]);
  return row ? (JSON.parse(row.embedding) as number[]) : undefined;
}

export async function clusterSummaries(sql: SqlClient, membersPerCluster: number): Promise<ClusterSummary[]> {
  const sizes = await sql.query<{ cluster: number; size: number | string }>('SELECT cluster, count(*) AS size FROM personas WHERE cluster IS NOT NULL GROUP BY cluster ORDER BY cluster');
  const occupations = await sql.query<{ cluster: number; occupation: string }>(
    `SELECT cluster, occupation FROM (SELECT cluster, occupation, row_number() OVER (PARTITION BY cluster ORDER BY count(*) DESC, occupation) AS rank
       FROM personas WHERE cluster IS NOT NULL GROUP BY cluster, occupation) AS o WHERE rank <= 3 ORDER BY cluster, rank`);
  const members = await sql.query<{ cluster: number; id: string; name: string; occupation: string }>(
    `SELECT cluster, id, name, occupation FROM (SELECT cluster, id, name, occupation, row_number() OVER (PARTITION BY cluster ORDER BY id) AS rank
       FROM personas WHERE cluster IS NOT NULL) AS m WHERE rank <= $1 ORDER BY cluster, id`, [membersPerCluster]);
  return sizes.map((s) => ({
    cluster: s.cluster,
    size: Number(s.size),
    label: occupations.filter((o) => o.cluster === s.cluster).map((o) => o.occupation).join(', '),
    members: members.filter((m) => m.cluster === s.cluster).map(({ id, name, occupation }) => ({ id, name, occupation })),
  }));
}

const counts = (rows: { value: string; count: number | string }[]): Record<string, number> => Object.fromEntries(rows.map((r) => [r.value, Number(r.count)]));

/** Population figures over the whole store; ages in ten-year bins. */
export async function populationStats(sql: SqlClient): Promise<PopulationStats> {
  const [totals] = await sql.query<{ n: number | string; min: number | null; max: number | null; mean: number | string | null; clusters: number | string; clustered: number | string }>(
    'SELECT count(*) AS n, min(age) AS min, max(age) AS max, avg(age)::float8 AS mean, count(DISTINCT cluster) AS clusters, count(cluster) AS clustered FROM personas');
  const group = (expr: string, limit = 1000) => sql.query<{ value: string; count: number | string }>(
    `SELECT ${expr} AS value, count(*) AS count FROM personas p GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ${limit}`);
  const bins = await sql.query<{ bin: number; count: number | string }>('SELECT (age / 10) * 10 AS bin, count(*) AS count FROM personas GROUP BY 1 ORDER BY 1');
  const top = async (expr: string) => (await group(expr, 10)).map((r) => ({ value: r.value, count: Number(r.count) }));
  return {
    personas: Number(totals?.n ?? 0),
    byMode: counts(await group('mode')),
    byModel: counts(await group('model')),
    byDepth: counts(await group(`${DEPTH}::text`)),
    age: {
      min: totals?.min ?? null, max: totals?.max ?? null, mean: totals?.mean === null || totals?.mean === undefined ? null : Number(totals.mean),
      histogram: bins.map((b) => ({ from: b.bin, to: b.bin + 9, count: Number(b.count) })),
    },
    topOccupations: await top('occupation'),
    topLocales: await top('locale'),
    clusters: Number(totals?.clusters ?? 0),
    clustered: Number(totals?.clustered ?? 0),
  };
}

/**
 * The secret the API signs its page cursors with: made once per database and kept there, so every API
 * instance on the store accepts the others' cursors, and a restart does not invalidate a client's paging.
 */
export async function cursorSecret(sql: SqlClient): Promise<string> {
  await sql.query(`INSERT INTO store_meta (key, value) VALUES ('api_cursor_secret', $1) ON CONFLICT (key) DO NOTHING`, [randomBytes(32).toString('hex')]);
  const [row] = await sql.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'api_cursor_secret'`);
  if (!row) throw new StoreError('PH_STORE_META', 'the API cursor secret vanished after insert', { transient: true });
  return row.value;
}

export async function insertApiKey(sql: SqlClient, key: ApiKeyRecord & { keyHash: string }): Promise<void> {
  await sql.query('INSERT INTO api_keys (id, key_hash, scope, label) VALUES ($1, $2, $3, $4)', [key.id, key.keyHash, key.scope, key.label]);
}

export async function findApiKey(sql: SqlClient, keyHash: string): Promise<ApiKeyRecord | undefined> {
  const [row] = await sql.query<ApiKeyRecord>('SELECT id, scope, label FROM api_keys WHERE key_hash = $1', [keyHash]);
  return row;
}

interface JobRow {
  id: string;
  seed_ids: string[];
  sent: number;
  status: JobStatus;
  error: string | null;
  created_ms: number | string;
  updated_ms: number | string;
}

const JOB_COLUMNS = `id, seed_ids, sent, status, error, (extract(epoch from created_at) * 1000)::float8 AS created_ms, (extract(epoch from updated_at) * 1000)::float8 AS updated_ms`;

const job = (r: JobRow): JobRecord => ({
  id: r.id, seedIds: r.seed_ids, sent: r.sent, status: r.status, error: r.error,
  createdAt: Math.round(Number(r.created_ms)), updatedAt: Math.round(Number(r.updated_ms)),
});

export async function insertJob(sql: SqlClient, id: string, seedIds: readonly string[]): Promise<JobRecord> {
  const [row] = await sql.query<JobRow>(`INSERT INTO api_jobs (id, seed_ids, status) VALUES ($1, $2::jsonb, 'sending') RETURNING ${JOB_COLUMNS}`, [id, JSON.stringify(seedIds)]);
  if (!row) throw new StoreError('PH_STORE_QUERY', `job ${id} was not recorded`);
  return job(row);
}

export async function getJob(sql: SqlClient, id: string): Promise<JobRecord | undefined> {
  const [row] = await sql.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM api_jobs WHERE id = $1`, [id]);
  return row ? job(row) : undefined;
}

/**
 * Records progress or an end state. A cancelled job stays cancelled: a send finishing after the cancel
 * updates its count but not its status.
 */
export async function updateJob(sql: SqlClient, id: string, change: { sent?: number; status?: JobStatus; error?: string }): Promise<JobRecord | undefined> {
  const [row] = await sql.query<JobRow>(
    `UPDATE api_jobs SET sent = COALESCE($2, sent),
       status = CASE WHEN status = 'cancelled' THEN status ELSE COALESCE($3, status) END,
       error = COALESCE($4, error), updated_at = now()
     WHERE id = $1 RETURNING ${JOB_COLUMNS}`, [id, change.sent ?? null, change.status ?? null, change.error ?? null]);
  return row ? job(row) : undefined;
}

/** Creation time of the oldest job still sending or sent within `windowMs`: how far back the API's observer must read. */
export async function oldestRecentJob(sql: SqlClient, windowMs: number): Promise<number | undefined> {
  const [row] = await sql.query<{ ms: number | string | null }>(
    `SELECT (extract(epoch from min(created_at)) * 1000)::float8 AS ms FROM api_jobs WHERE created_at > now() - ($1 / 1000.0) * interval '1 second'`, [windowMs]);
  return row?.ms === null || row?.ms === undefined ? undefined : Math.round(Number(row.ms));
}

/** The API's view of a store: the functions above bound to one connection. */
export interface CorpusStore {
  persona(id: string): Promise<PersonaRecord | undefined>;
  list(filter: PersonaFilter, page: { after?: string; limit: number }): Promise<{ items: PersonaSummary[]; more: boolean }>;
  search(vector: readonly number[], filter: PersonaFilter, limit: number, excludeId?: string): Promise<ScoredPersona[]>;
  vector(id: string): Promise<number[] | undefined>;
  summaries(ids: readonly string[]): Promise<PersonaSummary[]>;
  versions(id: string): Promise<PersonaVersion[]>;
  submitEdit(id: string, storedVersion: number, changes: Record<string, unknown>): Promise<number | undefined>;
  clusters(membersPerCluster: number): Promise<ClusterSummary[]>;
  stats(): Promise<PopulationStats>;
  /** The compared attributes of the personas drawn from a sampler profile (store/fidelity.ts). */
  fidelityRows(profile: string, filter: PersonaFilter, limit: number): Promise<{ rows: FidelityRow[]; truncated: boolean }>;
  cursorSecret(): Promise<string>;
  insertApiKey(key: ApiKeyRecord & { keyHash: string }): Promise<void>;
  findApiKey(keyHash: string): Promise<ApiKeyRecord | undefined>;
  insertJob(id: string, seedIds: readonly string[]): Promise<JobRecord>;
  job(id: string): Promise<JobRecord | undefined>;
  updateJob(id: string, change: { sent?: number; status?: JobStatus; error?: string }): Promise<JobRecord | undefined>;
  oldestRecentJob(windowMs: number): Promise<number | undefined>;
  /** One round trip: whether the database answers (the API's readiness). */
  ping(): Promise<void>;
}

export function corpusStore(sql: SqlClient): CorpusStore {
  return {
    persona: (id) => getPersonaRecord(sql, id),
    list: (filter, page) => listPersonas(sql, filter, page),
    search: (vector, filter, limit, excludeId) => searchPersonas(sql, vector, filter, limit, excludeId),
    vector: (id) => personaVector(sql, id),
    summaries: (ids) => personaSummaries(sql, ids),
    versions: (id) => personaVersions(sql, id),
    submitEdit: (id, storedVersion, changes) => submitEdit(sql, id, storedVersion, changes),
    clusters: (n) => clusterSummaries(sql, n),
    stats: () => populationStats(sql),
    fidelityRows: (profile, filter, limit) => fidelityRows(sql, profile, filter, limit),
    cursorSecret: () => cursorSecret(sql),
    insertApiKey: (key) => insertApiKey(sql, key),
    findApiKey: (hash) => findApiKey(sql, hash),
    insertJob: (id, seedIds) => insertJob(sql, id, seedIds),
    job: (id) => getJob(sql, id),
    updateJob: (id, change) => updateJob(sql, id, change),
    oldestRecentJob: (windowMs) => oldestRecentJob(sql, windowMs),
    async ping() {
      await sql.query('SELECT 1');
    },
  };
}
