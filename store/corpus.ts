import { conform, ConformError, nullableOf, recordSchema } from '../schemas/conform.ts';
import type { Persona } from '../schemas/types.generated.ts';
import { StoreError, type SqlClient } from './index.ts';

/**
 * Reading whole personas back out of the store (`personahub show`, `personahub export`): the row's
 * columns and JSON sections put together again as the `Persona` of the topics, embedding included.
 */

interface PersonaRow {
  id: string;
  version: number;
  seed_id: string;
  name: string;
  age: number;
  occupation: string;
  locale: string;
  description: string;
  /** Traits, seed relation, validation record, facets, and the demographics flattened (sql-store's upsert). */
  attributes: Record<string, unknown>;
  /** The enrichment but its embedding and model. */
  modalities: Record<string, unknown>;
  mode: string;
  model: string;
  embedding: string;
  embedding_model: string;
  /** Generation facts: generation index, prompt version, the lattice lineage, the sampler profile. */
  lineage: Record<string, unknown>;
  created_ms: string;
}

// Milliseconds computed in SQL from the exact numeric epoch, so a timestamp read back is the one written.
const COLUMNS = `id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model,
  embedding::text AS embedding, embedding_model, lineage, round(extract(epoch FROM created_at) * 1000)::bigint::text AS created_ms`;

const PERSONA = recordSchema('persona.avsc');
const DEMOGRAPHICS = ((): string[] => {
  const field = PERSONA.fields.find((f) => f.name === 'demographics');
  const record = field && nullableOf(field.type);
  return record && typeof record === 'object' && !Array.isArray(record) && record.type === 'record' ? record.fields.map((f) => f.name) : [];
})();

/**
 * The row put together as the persona of the topics and checked against its schema, which also gives a
 * row indexed before a field existed that field's default. A row that does not fit is a PH_STORE_ROW.
 */
function toPersona(r: PersonaRow): Persona {
  const createdAt = Number(r.created_ms);
  const a = r.attributes;
  const demographics = DEMOGRAPHICS.every((k) => k in a) ? Object.fromEntries(DEMOGRAPHICS.map((k) => [k, a[k]])) : null;
  const raw = {
    id: r.id, version: r.version, seedId: r.seed_id, generationIndex: r.lineage.generationIndex,
    name: r.name, age: r.age, occupation: r.occupation, locale: r.locale, traits: a.traits,
    description: r.description, seedRelation: a.seedRelation,
    provenance: { mode: r.mode, model: r.model, promptVersion: r.lineage.promptVersion, createdAt, samplerProfile: r.lineage.samplerProfile, samplerProfileVersion: r.lineage.samplerProfileVersion },
    // Lineage null is the schema's own "written before lineage existed"; the enrichment time of a row
    // from before the store kept it falls back to the persona's creation.
    lineage: r.lineage.lineage ?? null,
    demographics,
    facets: a.facets ?? null,
    enrichment: { ...r.modalities, embedding: JSON.parse(r.embedding) as number[], embeddingModel: r.embedding_model, enrichedAt: r.modalities.enrichedAt ?? createdAt },
    validation: a.validation ?? null,
  };
  try {
    return conform(raw, PERSONA) as Persona;
  } catch (cause) {
    if (cause instanceof ConformError) throw new StoreError('PH_STORE_ROW', `persona ${r.id} in the store does not read as a persona: ${cause.message}`, { cause });
    throw cause;
  }
}

export async function readPersona(sql: SqlClient, id: string): Promise<Persona | undefined> {
  const [row] = await sql.query<PersonaRow>(`SELECT ${COLUMNS} FROM personas WHERE id = $1`, [id]);
  return row && toPersona(row);
}

/**
 * Keyset pagination: the next `limit` personas after `afterId` in id order (from the start when
 * null). Each page is one indexed range scan, however deep into the table, and memory holds one page.
 */
export async function readPersonasAfter(sql: SqlClient, afterId: string | null, limit: number): Promise<Persona[]> {
  const rows = afterId === null
    ? await sql.query<PersonaRow>(`SELECT ${COLUMNS} FROM personas ORDER BY id LIMIT $1`, [limit])
    : await sql.query<PersonaRow>(`SELECT ${COLUMNS} FROM personas WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
  return rows.map(toPersona);
}
