import { normalizeText } from './text.ts';

/**
 * MinHash and LSH banding, written from the definitions (Broder 1997; Leskovec, Rajaraman and Ullman,
 * "Mining of Massive Datasets" ch. 3), for corpus-scale near-duplicate detection as PersonaHub did it
 * (word 1-grams, 128 permutations, Jaccard 0.9; arXiv 2406.20094 §2.3).
 *
 * Each of the k hash functions is the murmur3 finaliser of the token's 32-bit hash mixed with a
 * per-function seed drawn from a seeded PRNG: independent-looking functions, all in 32-bit integer
 * arithmetic (Math.imul), so a signature is reproducible across processes and machines and cheap.
 * The estimate of Jaccard(A, B) is the share of the k minima that agree; its standard error is
 * sqrt(J(1-J)/k) (0.044 at J = 0.5 for k = 128).
 */

export interface MinHashOptions {
  /** Number of hash functions (signature length). */
  permutations: number;
  /** Word n-gram size of the shingles. */
  shingleSize: number;
  /** Seed of the hash family: signatures are comparable only under the same seed. */
  seed: number;
}

export const DEFAULT_MINHASH: MinHashOptions = { permutations: 128, shingleSize: 1, seed: 1 };

/** murmur3's 32-bit finaliser: a bijection on 32-bit integers with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, finalised: a token's 32-bit hash. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

const seedCache = new Map<string, Uint32Array>();

/** The k per-function seeds, from splitmix32 over the family seed. */
function functionSeeds(permutations: number, seed: number): Uint32Array {
  const key = `${permutations}:${seed}`;
  let seeds = seedCache.get(key);
  if (!seeds) {
    seeds = new Uint32Array(permutations);
    let state = seed >>> 0;
    for (let i = 0; i < permutations; i += 1) {
      state = (state + 0x9e3779b9) >>> 0;
      seeds[i] = fmix32(state);
    }
    seedCache.set(key, seeds);
  }
  return seeds;
}

/** The set of word n-grams of the normalised text (lower case, punctuation stripped). */
export function shingles(text: string, size = 1): Set<string> {
  const words = normalizeText(text).match(/[\p{L}\p{N}']+/gu) ?? [];
  const out = new Set<string>();
  if (words.length < size) {
    if (words.length > 0) out.add(words.join(' '));
    return out;
  }
  for (let i = 0; i + size <= words.length; i += 1) out.add(words.slice(i, i + size).join(' '));
  return out;
}

/** The MinHash signature of a set of shingles. An empty set gets all-ones (it matches only itself). */
export function minhash(tokens: Iterable<string>, o: Pick<MinHashOptions, 'permutations' | 'seed'> = DEFAULT_MINHASH): Uint32Array {
  const seeds = functionSeeds(o.permutations, o.seed);
  const signature = new Uint32Array(o.permutations).fill(0xffffffff);
  for (const token of tokens) {
    const h = hash32(token);
    for (let i = 0; i < signature.length; i += 1) {
      const v = fmix32((h ^ (seeds[i] as number)) >>> 0);
      if (v < (signature[i] as number)) signature[i] = v;
    }
  }
  return signature;
}

export function signatureOf(text: string, o: MinHashOptions = DEFAULT_MINHASH): Uint32Array {
  return minhash(shingles(text, o.shingleSize), o);
}

/** The share of agreeing minima: an unbiased estimate of the Jaccard similarity of the two sets. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) throw new Error(`signatures of different lengths (${a.length}, ${b.length})`);
  let same = 0;
  for (let i = 0; i < a.length; i += 1) if (a[i] === b[i]) same += 1;
  return a.length === 0 ? 0 : same / a.length;
}

export function exactJaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter += 1;
  const union = a.size + b.size - inter;
  return union === 0 ? 1 : inter / union;
}

export interface LshParams {
  bands: number;
  rows: number;
}

/** Probability that two sets of Jaccard s share at least one band: 1 - (1 - s^r)^b. */
export function candidateProbability(s: number, p: LshParams): number {
  return 1 - (1 - s ** p.rows) ** p.bands;
}

function integrate(f: (x: number) => number, a: number, b: number, steps = 200): number {
  const h = (b - a) / steps;
  let sum = 0;
  for (let i = 0; i < steps; i += 1) sum += f(a + (i + 0.5) * h);
  return sum * h;
}

/**
 * Bands × rows for a Jaccard threshold. A missed duplicate is lost for good, while a false candidate
 * only costs one comparison (every candidate is confirmed on the full signature and the embedding), so
 * the split is the one with the least false-candidate area among those that find a pair at the
 * threshold with probability `minRecall` or more. (datasketch weighs both errors equally, which at
 * 0.9 and 128 permutations finds only 31% of the pairs at exactly 0.9.)
 */
export function lshParams(threshold: number, permutations: number, minRecall = 0.99): LshParams {
  const key = `${threshold}:${permutations}:${minRecall}`;
  const known = chosen.get(key);
  if (known) return known;
  const p = searchLshParams(threshold, permutations, minRecall);
  chosen.set(key, p);
  return p;
}

/** lshParams by its arguments: the search costs about a millisecond, and the validate stage asks per persona. */
const chosen = new Map<string, LshParams>();

function searchLshParams(threshold: number, permutations: number, minRecall: number): LshParams {
  let best: LshParams | undefined;
  let bestArea = Infinity;
  let fallback: LshParams = { bands: permutations, rows: 1 };
  let fallbackRecall = -1;
  for (let bands = 1; bands <= permutations; bands += 1) {
    const maxRows = Math.floor(permutations / bands);
    for (let rows = 1; rows <= maxRows; rows += 1) {
      const p = { bands, rows };
      const recall = candidateProbability(threshold, p);
      if (recall > fallbackRecall) {
        fallbackRecall = recall;
        fallback = p;
      }
      if (recall < minRecall) continue;
      const area = integrate((s) => candidateProbability(s, p), 0, threshold);
      if (area < bestArea) {
        bestArea = area;
        best = p;
      }
    }
  }
  return best ?? fallback;
}

/**
 * One key per band: the band's index in the high 32 bits and the hash of its rows in the low 32, so
 * equal rows in two bands are two keys, and the store can claim a key under a unique constraint or
 * take it as a PostgreSQL advisory lock (a bigint) with no further hashing.
 */
export function bandKeys(signature: Uint32Array, p: LshParams): bigint[] {
  const keys: bigint[] = [];
  for (let band = 0; band < p.bands; band += 1) {
    let h = 0x811c9dc5 ^ band;
    for (let row = 0; row < p.rows; row += 1) {
      h ^= signature[band * p.rows + row] as number;
      h = fmix32(Math.imul(h, 0x01000193) >>> 0);
    }
    keys.push((BigInt(band) << 32n) | BigInt(h >>> 0));
  }
  return keys;
}

/** A signature as bytes for storage (little-endian uint32 whatever the machine), and back. */
export function signatureToBuffer(signature: Uint32Array): Buffer {
  const out = Buffer.alloc(signature.length * 4);
  signature.forEach((v, i) => out.writeUInt32LE(v, i * 4));
  return out;
}

export function signatureFromBuffer(bytes: Buffer): Uint32Array {
  const out = new Uint32Array(Math.floor(bytes.length / 4));
  for (let i = 0; i < out.length; i += 1) out[i] = bytes.readUInt32LE(i * 4);
  return out;
}
