import type { LatticeTables } from '../store/index.ts';

/** Lattice shape for the report: how deep it grew, by which relations, how connected, and whether it ran dry. */
export interface LatticeReport {
  personasByDepth: { depth: number; personas: number }[];
  edgesByKind: { kind: string; edges: number }[];
  edges: number;
  /** Degree (edges touching a persona, both directions) → personas with that degree, over personas with at least one edge. */
  degrees: { degree: number; personas: number }[];
  /** Sizes of the connected components of the edge graph, largest first. */
  components: number[];
  /**
   * Per depth ≥ 1, derived personas of this run and the share rejected as duplicates: the saturation
   * signal (when most of depth N are duplicates, expansion has run dry).
   */
  duplicatesByDepth: { depth: number; derived: number; duplicates: number; share: number }[];
}

/** Degree distribution and connected components (union-find) of an undirected edge list. */
export function graphShape(edges: readonly { from: string; to: string }[]): Pick<LatticeReport, 'degrees' | 'components'> {
  const degree = new Map<string, number>();
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root) ?? root;
    // Path compression keeps later finds short on a long chain.
    for (let node = x; node !== root;) {
      const next = parent.get(node) ?? root;
      parent.set(node, root);
      node = next;
    }
    return root;
  };
  for (const { from, to } of edges) {
    for (const node of [from, to]) {
      degree.set(node, (degree.get(node) ?? 0) + 1);
      if (!parent.has(node)) parent.set(node, node);
    }
    const [a, b] = [find(from), find(to)];
    if (a !== b) parent.set(a, b);
  }
  const byDegree = new Map<number, number>();
  for (const d of degree.values()) byDegree.set(d, (byDegree.get(d) ?? 0) + 1);
  const sizes = new Map<string, number>();
  for (const node of parent.keys()) sizes.set(find(node), (sizes.get(find(node)) ?? 0) + 1);
  return {
    degrees: [...byDegree].sort((a, b) => a[0] - b[0]).map(([d, personas]) => ({ degree: d, personas })),
    components: [...sizes.values()].sort((a, b) => b - a),
  };
}

/**
 * The report's lattice section: the store's lattice (every run's) for its shape, this run's derived
 * personas (validated and rejected, with their depth) for saturation.
 */
export function latticeReport(tables: LatticeTables, derived: readonly { depth: number; duplicate: boolean }[]): LatticeReport {
  const byDepth = new Map<number, { derived: number; duplicates: number }>();
  for (const d of derived) {
    if (d.depth < 1) continue;
    const row = byDepth.get(d.depth) ?? { derived: 0, duplicates: 0 };
    row.derived += 1;
    if (d.duplicate) row.duplicates += 1;
    byDepth.set(d.depth, row);
  }
  return {
    personasByDepth: tables.personasByDepth,
    edgesByKind: tables.edgesByKind,
    edges: tables.edgesByKind.reduce((n, k) => n + k.edges, 0),
    ...graphShape(tables.edges),
    duplicatesByDepth: [...byDepth].sort((a, b) => a[0] - b[0]).map(([depth, r]) => ({ depth, ...r, share: Math.round((r.duplicates / r.derived) * 1000) / 1000 })),
  };
}

export function renderLattice(l: LatticeReport): string[] {
  const lines = ['## Persona lattice', ''];
  if (l.edges === 0 && l.personasByDepth.every((d) => d.depth === 0)) {
    lines.push('No derived personas (Persona-to-Persona expansion is off: PERSONAHUB_LATTICE_DEPTH=0).');
    return lines;
  }
  lines.push(`Personas by depth (store): ${l.personasByDepth.map((d) => `depth ${d.depth}: ${d.personas}`).join(', ')}.`);
  lines.push(`Edges: ${l.edges} (${l.edgesByKind.map((k) => `${k.kind} ${k.edges}`).join(', ') || 'none'}).`);
  lines.push(`Degrees: ${l.degrees.map((d) => `${d.degree}→${d.personas}`).join(', ') || '-'}; connected components: ${l.components.length} (largest ${l.components.slice(0, 5).join(', ') || '-'}).`);
  lines.push(`Derived personas of this run rejected as duplicates, by depth: ${l.duplicatesByDepth.map((d) => `depth ${d.depth}: ${d.duplicates}/${d.derived} (${(d.share * 100).toFixed(1)}%)`).join(', ') || '-'}.`);
  lines.push('', 'A persona\'s neighbourhood: `./personahub lattice <persona-id> --depth 2`.');
  return lines;
}
