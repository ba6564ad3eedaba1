import { describe, expect, it } from 'vitest';
import {
  bandKeys, candidateProbability, estimateJaccard, exactJaccard, lshParams, minhash, shingles, signatureFromBuffer, signatureOf, signatureToBuffer,
} from '../../../persona/minhash.ts';
import { rng } from '../../../persona/text.ts';

/**
 * Two token sets with a chosen Jaccard similarity: `shared` tokens in both, `only` tokens in each
 * alone, so J = shared / (shared + 2·only). Token names are unique per pair (a seeded prefix).
 */
function pairWithJaccard(j: number, size: number, tag: string): { a: Set<string>; b: Set<string>; exact: number } {
  // shared + 2·only = union; shared = j·union; a's size = shared + only.
  const union = Math.round(size / ((1 + j) / 2));
  const shared = Math.round(j * union);
  const only = Math.floor((union - shared) / 2);
  const a = new Set<string>();
  const b = new Set<string>();
  for (let i = 0; i < shared; i += 1) {
    a.add(`${tag}s${i}`);
    b.add(`${tag}s${i}`);
  }
  for (let i = 0; i < only; i += 1) {
    a.add(`${tag}a${i}`);
    b.add(`${tag}b${i}`);
  }
  return { a, b, exact: exactJaccard(a, b) };
}

describe('MinHash', () => {
  it('estimates Jaccard within the theoretical error for 128 permutations (random pairs, seeded)', () => {
    const random = rng('minhash-mae');
    const errors: number[] = [];
    let boundSum = 0;
    for (let i = 0; i < 400; i += 1) {
      const { a, b, exact } = pairWithJaccard(random(), 20 + Math.floor(random() * 180), `p${i}-`);
      errors.push(Math.abs(estimateJaccard(minhash(a), minhash(b)) - exact));
      // The estimate is Binomial(k, J)/k: its standard error is sqrt(J(1-J)/k), and E|X-J| is at most that.
      boundSum += Math.sqrt((exact * (1 - exact)) / 128);
    }
    const mae = errors.reduce((s, e) => s + e, 0) / errors.length;
    const bound = boundSum / errors.length;
    console.log(`MinHash k=128 on 400 random pairs: mean absolute error ${mae.toFixed(4)}, theoretical bound (mean standard error) ${bound.toFixed(4)}`);
    expect(mae).toBeLessThanOrEqual(bound);
    // And never a wild estimate: no error beyond five standard errors of the worst case (J = 0.5).
    expect(Math.max(...errors)).toBeLessThan(5 * Math.sqrt(0.25 / 128));
  });

  it('is deterministic for a seed, differs across seeds, and survives storage', () => {
    const text = 'A pediatric nurse in Lagos who reads every update on vaccination schedules.';
    const s1 = signatureOf(text);
    expect(signatureOf(text)).toEqual(s1);
    expect(signatureOf(text, { permutations: 128, shingleSize: 1, seed: 2 })).not.toEqual(s1);
    expect(signatureFromBuffer(signatureToBuffer(s1))).toEqual(s1);
    expect(estimateJaccard(s1, s1)).toBe(1);
  });

  it('shingles normalised words: case, punctuation and spacing do not matter', () => {
    expect(shingles('The  Nurse, the nurse!')).toEqual(new Set(['the', 'nurse']));
    expect(shingles('a b c', 2)).toEqual(new Set(['a b', 'b c']));
    expect(shingles('solo', 3)).toEqual(new Set(['solo']));
  });
});

describe('LSH banding', () => {
  const params = lshParams(0.9, 128);

  it('chooses bands × rows that find pairs at the threshold with probability ≥ 0.99', () => {
    expect(params.bands * params.rows).toBeLessThanOrEqual(128);
    expect(candidateProbability(0.9, params)).toBeGreaterThanOrEqual(0.99);
    expect(candidateProbability(0.5, params)).toBeLessThan(0.02);
  });

  it('recalls pairs at and above the threshold, and rarely makes candidates far below it (synthetic pairs of known Jaccard)', () => {
    const random = rng('lsh-recall');
    const shareBand = (a: Set<string>, b: Set<string>): boolean => {
      const ka = new Set(bandKeys(minhash(a), params));
      return bandKeys(minhash(b), params).some((k) => ka.has(k));
    };
    let above = 0;
    let recalled = 0;
    let below = 0;
    let falseCandidates = 0;
    for (let i = 0; i < 600; i += 1) {
      const hi = pairWithJaccard(0.9 + random() * 0.1, 60 + Math.floor(random() * 140), `h${i}-`);
      if (hi.exact >= 0.9) {
        above += 1;
        if (shareBand(hi.a, hi.b)) recalled += 1;
      }
      const lo = pairWithJaccard(random() * 0.5, 60 + Math.floor(random() * 140), `l${i}-`);
      below += 1;
      if (shareBand(lo.a, lo.b)) falseCandidates += 1;
    }
    const recall = recalled / above;
    const falseRate = falseCandidates / below;
    console.log(`LSH ${params.bands} bands × ${params.rows} rows: recall at J ≥ 0.9 ${recall.toFixed(4)} (${recalled}/${above}), candidates at J < 0.5 ${falseRate.toFixed(4)} (${falseCandidates}/${below})`);
    expect(above).toBeGreaterThan(400);
    expect(recall).toBeGreaterThanOrEqual(0.98);
    expect(falseRate).toBeLessThanOrEqual(0.02);
  });

  it('keys name their band, so equal rows in different bands are different keys', () => {
    const keys = bandKeys(new Uint32Array(128).fill(7), params);
    expect(new Set(keys).size).toBe(params.bands);
    expect(keys.map((k) => Number(k >> 32n))).toEqual(Array.from({ length: params.bands }, (_, band) => band));
  });
});
