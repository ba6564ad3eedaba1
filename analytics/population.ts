import { dot, normalize } from '../core/vector.ts';
import { rng } from '../persona/text.ts';

/**
 * Population analytics over persona embeddings (DESIGN §6): clusters and dispersion. Pure functions
 * over number[][] so the same code runs on a demo's 48 personas and on a store's sample.
 */


export interface Clustering {
  k: number;
  /** Cluster index of each input vector, in input order. */
  assignments: number[];
  sizes: number[];
  /** Mean cosine of members to their centroid: how tight the clusters are (1 = identical members). */
  cohesion: number;
  iterations: number;
}

/**
 * Spherical k-means (cosine) with k-means++ seeding from a seeded PRNG: the same vectors and seed give
 * the same clusters, so reports are reproducible.
 */
export function kmeans(vectors: readonly (readonly number[])[], k: number, opts: { seed?: string; maxIterations?: number } = {}): Clustering {
  const points = vectors.map(normalize);
  const n = points.length;
  if (n === 0) return { k: 0, assignments: [], sizes: [], cohesion: 0, iterations: 0 };
  const kk = Math.max(1, Math.min(k, n));
  const random = rng(opts.seed ?? 'kmeans');
  const centroids: number[][] = [points[Math.floor(random() * n)] as number[]];
  while (centroids.length < kk) {
    // k-means++: the next centroid is drawn with probability proportional to its squared distance.
    const d2 = points.map((p) => Math.min(...centroids.map((c) => 2 - 2 * dot(p, c))));
    const total = d2.reduce((s, x) => s + x, 0);
    let r = random() * total;
    let chosen = d2.findIndex((x) => (r -= x) <= 0);
    if (chosen < 0 || total === 0) chosen = centroids.length % n;
    centroids.push(points[chosen] as number[]);
  }
  let assignments = new Array<number>(n).fill(-1);
  let iterations = 0;
  for (; iterations < (opts.maxIterations ?? 50); iterations += 1) {
    const next = points.map((p) => {
      let best = 0;
      let bestScore = -Infinity;
      centroids.forEach((c, j) => {
        const s = dot(p, c);
        if (s > bestScore) [best, bestScore] = [j, s];
      });
      return best;
    });
    const changed = next.some((a, i) => a !== assignments[i]);
    assignments = next;
    if (!changed) break;
    for (let j = 0; j < kk; j += 1) {
      const members = points.filter((_, i) => assignments[i] === j);
      if (members.length === 0) continue; // an empty cluster keeps its centroid
      const sum = new Array<number>(points[0]?.length ?? 0).fill(0);
      for (const m of members) m.forEach((x, d) => { sum[d] = (sum[d] ?? 0) + x; });
      centroids[j] = normalize(sum);
    }
  }
  const sizes = new Array<number>(kk).fill(0);
  for (const a of assignments) sizes[a] = (sizes[a] ?? 0) + 1;
  const cohesion = points.reduce((s, p, i) => s + dot(p, centroids[assignments[i] ?? 0] ?? p), 0) / n;
  return { k: kk, assignments, sizes, cohesion, iterations };
}

/** A rule-of-thumb k for n points (sqrt(n/2)), bounded so small runs still split and large ones stay readable. */
export function defaultK(n: number): number {
  return Math.max(1, Math.min(24, Math.round(Math.sqrt(n / 2))));
}

/** Mean pairwise cosine distance (1 - cosine): 0 when every persona says the same, higher is more diverse. */
export function dispersion(vectors: readonly (readonly number[])[]): number {
  const points = vectors.map(normalize);
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < points.length; i += 1) {
    for (let j = i + 1; j < points.length; j += 1) {
      sum += 1 - dot(points[i] as number[], points[j] as number[]);
      pairs += 1;
    }
  }
  return pairs === 0 ? 0 : sum / pairs;
}

/** Distinct word n-grams over all n-grams across the texts: low values mean templated, repetitive prose. */
export function distinctNgramRatio(texts: readonly string[], n = 2): number {
  const all: string[] = [];
  for (const t of texts) {
    const words = t.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    for (let i = 0; i + n <= words.length; i += 1) all.push(words.slice(i, i + n).join(' '));
  }
  return all.length === 0 ? 0 : new Set(all).size / all.length;
}
