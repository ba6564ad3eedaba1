import { dot, normalize } from '../core/vector.ts';
import { estimateJaccard } from './minhash.ts';
import { normalizeText } from './text.ts';

/**
 * The near-duplicate decision, pure: given the persona's MinHash signature and embedding and its
 * candidates (those sharing an LSH band with it, and its nearest indexed neighbours), is it a
 * duplicate, and of whom? PersonaHub's two passes: MinHash finds candidates by shared words (at
 * corpus scale, without comparing all pairs), and a candidate is a duplicate when its estimated
 * Jaccard reaches the threshold (a small edit, a reordering, another name) or when its embedding's
 * cosine does, whether it came by its words or by its meaning alone (a paraphrase, found as a nearest
 * neighbour). The planted-duplicates test (test/integration/dedup-planted.test.ts) measures both.
 */
/**
 * The words a persona is compared by: its description without the words of its name. The name is
 * not what makes two personas the same person (the same description under another name is a
 * duplicate), nor what makes them different; left in, it is a tenth of a short description's words.
 */
export function dedupText(description: string, name: string): string {
  const words = new Set(normalizeText(name).match(/[\p{L}\p{N}']+/gu) ?? []);
  return (normalizeText(description).match(/[\p{L}\p{N}']+/gu) ?? []).filter((w) => !words.has(w.replace(/'s$/, ''))).join(' ');
}

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
    const jaccard = c.signature ? estimateJaccard(signature, c.signature) : undefined;
    // Words alone suffice at the Jaccard threshold, as PersonaHub's MinHash pass removed on its own:
    // the signatures leave the name out, so the same persona under another name shares all its words,
    // while the embedding sees mostly the name (all-MiniLM-L6-v2 puts such a rename at cosine 0.60 from its original, median, and as low as 0.31).
    const byWords = jaccard !== undefined && jaccard >= t.jaccard;
    if (!byWords && cosine < t.cosine) continue;
    // The strongest match is the one named: the same words first, then the closest meaning.
    const score = (jaccard ?? 0) * 2 + cosine;
    if (score <= bestScore) continue;
    bestScore = score;
    const words = jaccard === undefined ? ' (nearest neighbour)' : `, estimated Jaccard ${jaccard.toFixed(3)}${byWords ? ` ≥ ${t.jaccard}` : ''}`;
    best = { duplicateOf: c.id, jaccard, cosine, reason: `cosine ${cosine.toFixed(3)}${cosine >= t.cosine ? ` ≥ ${t.cosine}` : ''} to persona ${c.id}${words}` };
  }
  return best;
}
