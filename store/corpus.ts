import type { BigFive, Demographics, Lineage, LifeStage, Persona, SeedRelation, Validation } from '../schemas/types.generated.ts';
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
  /** The demographics are flattened in here (sql-store's upsert); absent in rows from before profiles. */
  attributes: { traits?: string[]; seedRelation?: SeedRelation; validation?: Validation | null } & Partial<Demographics>;
  modalities: {
    lifeStage: LifeStage; bigFive: BigFive; habits: string[]; goals: string[]; mediaDiet: string[];
    appearance: string; imagePrompt: string; settings: string[]; enrichedAt?: number;
  };
  mode: 'LLM' | 'SAMPLER';
  model: string;
  embedding: string;
  embedding_model: string;
  lineage: { generationIndex?: number; promptVersion?: string; lineage?: Lineage | null; samplerProfile?: string | null; samplerProfileVersion?: string | null };
  created_ms: string;
}

// Milliseconds computed in SQL from the exact numeric epoch, so a timestamp read back is the one written.
const COLUMNS = `id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model,
  embedding::text AS embedding, embedding_model, lineage, round(extract(epoch FROM created_at) * 1000)::bigint::text AS created_ms`;

function demographicsOf(a: PersonaRow['attributes']): Demographics | null {
  if (a.sex === undefined || a.maritalStatus === undefined || a.household === undefined || a.educationLevel === undefined || a.educationField === undefined
    || a.employmentStatus === undefined || a.occupationGroup === undefined || a.industry === undefined || a.city === undefined || a.region === undefined
    || a.country === undefined || a.culturalBackground === undefined || a.languages === undefined || a.hobbies === undefined || a.skills === undefined
    || a.careerGoal === undefined) return null;
  return {
    sex: a.sex, maritalStatus: a.maritalStatus, household: a.household, educationLevel: a.educationLevel, educationField: a.educationField,
    employmentStatus: a.employmentStatus, occupationGroup: a.occupationGroup, industry: a.industry, city: a.city, region: a.region, country: a.country,
    culturalBackground: a.culturalBackground, languages: a.languages, hobbies: a.hobbies, skills: a.skills, careerGoal: a.careerGoal,
  };
}

function toPersona(r: PersonaRow): Persona {
  const createdAt = Number(r.created_ms);
  const { enrichedAt, ...modalities } = r.modalities;
  if (r.attributes.traits === undefined || r.attributes.seedRelation === undefined || r.lineage.generationIndex === undefined || r.lineage.promptVersion === undefined) {
    throw new StoreError('PH_STORE_ROW', `persona ${r.id} lacks fields every indexed row has (traits, seed relation, generation index, prompt version)`);
  }
  return {
    id: r.id, version: r.version, seedId: r.seed_id, generationIndex: r.lineage.generationIndex,
    name: r.name, age: r.age, occupation: r.occupation, locale: r.locale, traits: r.attributes.traits,
    description: r.description, seedRelation: r.attributes.seedRelation,
    provenance: {
      mode: r.mode, model: r.model, promptVersion: r.lineage.promptVersion, createdAt,
      samplerProfile: r.lineage.samplerProfile ?? null, samplerProfileVersion: r.lineage.samplerProfileVersion ?? null,
    },
    // Rows indexed before the store kept these: lineage null is the schema's own "written before lineage
    // existed", and the enrichment time falls back to the persona's creation.
    lineage: r.lineage.lineage ?? null,
    demographics: demographicsOf(r.attributes),
    enrichment: { ...modalities, embedding: JSON.parse(r.embedding) as number[], embeddingModel: r.embedding_model, enrichedAt: enrichedAt ?? createdAt },
    validation: r.attributes.validation ?? null,
  };
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
