import type { SqlClient } from './index.ts';

/** One typed edge of the persona lattice: `to` is a person related to `from` as `kind`; `depth` is `to`'s depth. */
export interface LatticeEdge {
  from: string;
  to: string;
  kind: string;
  depth: number;
  createdAt: number;
}

/** The lattice tables, created with the rest of the schema (store/sql-store.ts migrate). */
export const LATTICE_DDL: readonly string[] = [
  `ALTER TABLE relations ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now()`,
  'CREATE INDEX IF NOT EXISTS relations_to ON relations (to_id)',
  // What each root seed's lattice has spent of its budget, and what each parent was granted: a parent
  // asking again (a redelivery, a replay, a redo after a crash) gets its first grant back, never a second.
  'CREATE TABLE IF NOT EXISTS lattice_budgets (root_seed_id text PRIMARY KEY, spent int NOT NULL)',
  `CREATE TABLE IF NOT EXISTS lattice_expansions (parent_id text PRIMARY KEY, root_seed_id text NOT NULL, granted int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
];

/**
 * Grants `parentId` up to `want` expansions out of its root's `budget`, once: the root's row is locked
 * (FOR UPDATE) for the decision, so instances expanding personas of one root at the same moment take
 * turns and together never exceed the budget; a parent asked again gets the same number back.
 */
export function reserveExpansion(sql: SqlClient, parentId: string, rootSeedId: string, want: number, budget: number): Promise<number> {
  return sql.transaction(async (query) => {
    await query('INSERT INTO lattice_budgets (root_seed_id, spent) VALUES ($1, 0) ON CONFLICT (root_seed_id) DO NOTHING', [rootSeedId]);
    const [root] = await query<{ spent: number }>('SELECT spent FROM lattice_budgets WHERE root_seed_id = $1 FOR UPDATE', [rootSeedId]);
    // Read under the root's lock: an earlier grant to this parent is final.
    const [earlier] = await query<{ granted: number }>('SELECT granted FROM lattice_expansions WHERE parent_id = $1', [parentId]);
    if (earlier) return earlier.granted;
    const granted = Math.max(0, Math.min(want, budget - (root?.spent ?? 0)));
    await query('INSERT INTO lattice_expansions (parent_id, root_seed_id, granted) VALUES ($1, $2, $3)', [parentId, rootSeedId, granted]);
    if (granted > 0) await query('UPDATE lattice_budgets SET spent = spent + $2 WHERE root_seed_id = $1', [rootSeedId, granted]);
    return granted;
  });
}

/** Records an edge; the same edge again changes nothing. */
export async function addRelation(sql: SqlClient, edge: Omit<LatticeEdge, 'createdAt'>): Promise<void> {
  await sql.query('INSERT INTO relations (from_id, to_id, kind, depth) VALUES ($1, $2, $3, $4) ON CONFLICT (from_id, to_id, kind) DO NOTHING',
    [edge.from, edge.to, edge.kind, edge.depth]);
}

/**
 * The edges within `depth` hops of `id`, following edges both ways (a persona's parent is as much its
 * neighbour as its children), each edge once, nearest first. Bounded by depth, so a dense lattice
 * costs what its neighbourhood holds, not the whole graph.
 */
export async function neighbours(sql: SqlClient, id: string, depth: number): Promise<(LatticeEdge & { hops: number })[]> {
  const rows = await sql.query<{ from_id: string; to_id: string; kind: string; depth: number; created_at: Date | string; hops: number }>(
    `WITH RECURSIVE reach(node, hops) AS (
       SELECT $1::text, 0
       UNION
       SELECT CASE WHEN r.from_id = reach.node THEN r.to_id ELSE r.from_id END, reach.hops + 1
         FROM reach JOIN relations r ON r.from_id = reach.node OR r.to_id = reach.node
        WHERE reach.hops < $2
     ), nearest AS (SELECT node, min(hops) AS hops FROM reach GROUP BY node)
     SELECT r.from_id, r.to_id, r.kind, r.depth, r.created_at, least(a.hops, b.hops) + 1 AS hops
       FROM relations r JOIN nearest a ON a.node = r.from_id JOIN nearest b ON b.node = r.to_id
      WHERE least(a.hops, b.hops) < $2
      ORDER BY hops, r.depth, r.from_id, r.to_id, r.kind`,
    [id, depth],
  );
  return rows.map((r) => ({ from: r.from_id, to: r.to_id, kind: r.kind, depth: r.depth, createdAt: new Date(r.created_at).getTime(), hops: Number(r.hops) }));
}

/** Lattice shape for the report: personas per depth, edges by kind, and every edge (for degrees and components). */
export interface LatticeTables {
  personasByDepth: { depth: number; personas: number }[];
  edgesByKind: { kind: string; edges: number }[];
  edges: { from: string; to: string }[];
}

export async function latticeTables(sql: SqlClient, o: { limitEdges: number }): Promise<LatticeTables> {
  const byDepth = await sql.query<{ depth: number | string; n: number | string }>(
    `SELECT coalesce((lineage->'lineage'->>'depth')::int, 0) AS depth, count(*) AS n FROM personas GROUP BY 1 ORDER BY 1`);
  const byKind = await sql.query<{ kind: string; n: number | string }>('SELECT kind, count(*) AS n FROM relations GROUP BY kind ORDER BY count(*) DESC, kind');
  const edges = await sql.query<{ from_id: string; to_id: string }>('SELECT from_id, to_id FROM relations ORDER BY from_id, to_id LIMIT $1', [o.limitEdges]);
  return {
    personasByDepth: byDepth.map((r) => ({ depth: Number(r.depth), personas: Number(r.n) })),
    edgesByKind: byKind.map((r) => ({ kind: r.kind, edges: Number(r.n) })),
    edges: edges.map((r) => ({ from: r.from_id, to: r.to_id })),
  };
}

/** The grant recorded for each of `parentIds` that has one (see reserveExpansion). */
export async function expansionGrants(sql: SqlClient, parentIds: readonly string[]): Promise<Map<string, number>> {
  const rows = await sql.query<{ parent_id: string; granted: number }>('SELECT parent_id, granted FROM lattice_expansions WHERE parent_id = ANY($1::text[])', [parentIds]);
  return new Map(rows.map((r) => [r.parent_id, r.granted]));
}
