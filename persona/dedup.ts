import { dot, normalize } from '../core/vector.ts';
import { estimateJaccard } from './minhash.ts';

/**
 * The near-duplicate decision, pure: given the persona's MinHash signature and embedding and its
 * candidates (those sharing an LSH band with it, and its nearest indexed neighbours), is it a
 * duplicate, and of whom? PersonaHub's two passes: MinHash finds candidates by shared words (at
 * corpus scale, without comparing all pairs), the embedding confirms them: a candidate at or above
 * the cosine threshold is a duplicate, whether it came by its words (a small edit, a reordering, another
 * name) or by its meaning alone (a paraphrase, found as a nearest neighbour).
 */
export interface DedupThresholds {
  jaccard: number;
  cosine: number;
}

export interface DedupCandidate {
  id: string;
  /** Absent for a neighbour found by the vector index alone. */
  signature: Uint32Array | undefined;
  embedding: readonly number[];
}

export interface DedupVerdict {
  duplicateOf: string | undefined;
  jaccard: number | undefined;
  cosine: number | undefined;
  /** Why, in words for the rejection record. */
  reason: string | undefined;
}

export function nearDuplicate(signature: Uint32Array, embedding: readonly number[], candidates: readonly DedupCandidate[], t: DedupThresholds): DedupVerdict {
  const unit = normalize(embedding);
  let best: DedupVerdict = { duplicateOf: undefined, jaccard: undefined, cosine: undefined, reason: undefined };
  let bestScore = -Infinity;
  for (const c of candidates) {
    const cosine = dot(unit, normalize(c.embedding));
    if (cosine < t.cosine) continue;
    const jaccard = c.signature ? estimateJaccard(signature, c.signature) : undefined;
    // The strongest match is the one named: the same words first, then the closest meaning.
    const score = (jaccard ?? 0) * 2 + cosine;
    if (score <= bestScore) continue;
    bestScore = score;
    best = {
      duplicateOf: c.id, jaccard, cosine,
      reason: `cosine ${cosine.toFixed(3)} ≥ ${t.cosine} to persona ${c.id}${jaccard === undefined ? ' (nearest neighbour)' : `, estimated Jaccard ${jaccard.toFixed(3)}${jaccard >= t.jaccard ? ` ≥ ${t.jaccard}` : ''}`}`,
    };
  }
  return best;
}
