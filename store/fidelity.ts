import type { Demographics } from '../schemas/types.generated.ts';
import type { SqlClient } from './index.ts';
import { filterSql, type PersonaFilter } from './query.ts';

/**
 * What population fidelity (analytics/fidelity.ts) reads of each stored persona drawn from a sampler
 * profile: the compared attributes only, so the API's fidelity answer reads neither embeddings nor modalities.
 */

/** The demographics fidelity compares: every single-valued one (lists are not compared). */
export type SingleDemographics = Omit<Demographics, 'languages' | 'hobbies' | 'skills'>;

export interface FidelityRow {
  age: number;
  occupation: string;
  seedRelation: string;
  /** Null for a persona written before demographics existed (sql-store's upsert flattens them into attributes). */
  demographics: SingleDemographics | null;
}

const FIELDS = ['sex', 'maritalStatus', 'household', 'educationLevel', 'educationField', 'employmentStatus', 'occupationGroup',
  'industry', 'city', 'region', 'country', 'culturalBackground', 'careerGoal'] as const satisfies readonly (keyof SingleDemographics)[];

type Row = { age: number; occupation: string; seed_relation: string | null } & { [F in (typeof FIELDS)[number]]: string | null };

function demographicsOf(r: Row): SingleDemographics | null {
  const { sex, maritalStatus, household, educationLevel, educationField, employmentStatus, occupationGroup, industry, city, region, country, culturalBackground, careerGoal } = r;
  if (sex === null || maritalStatus === null || household === null || educationLevel === null || educationField === null || employmentStatus === null
    || occupationGroup === null || industry === null || city === null || region === null || country === null || culturalBackground === null || careerGoal === null) return null;
  return { sex, maritalStatus, household, educationLevel, educationField, employmentStatus, occupationGroup, industry, city, region, country, culturalBackground, careerGoal };
}

/**
 * The personas drawn from `profile` that match `filter`, at most `limit` (in id order, so a truncated answer is
 * the same one each time), and whether more matched.
 */
export async function fidelityRows(sql: SqlClient, profile: string, filter: PersonaFilter, limit: number): Promise<{ rows: FidelityRow[]; truncated: boolean }> {
  const params: unknown[] = [profile];
  const where = ["p.lineage->>'samplerProfile' = $1", ...filterSql(filter, params)];
  params.push(limit + 1);
  const rows = await sql.query<Row>(
    `SELECT p.age, p.occupation, p.attributes->>'seedRelation' AS seed_relation, ${FIELDS.map((f) => `p.attributes->>'${f}' AS "${f}"`).join(', ')}
       FROM personas p WHERE ${where.join(' AND ')} ORDER BY p.id LIMIT $${params.length}`, params);
  return {
    rows: rows.slice(0, limit).map((r) => ({ age: r.age, occupation: r.occupation, seedRelation: r.seed_relation ?? '', demographics: demographicsOf(r) })),
    truncated: rows.length > limit,
  };
}
