import { describe, expect, it } from 'vitest';
import { defaultK, dispersion, distinctNgramRatio, kmeans } from '../../../analytics/population.ts';
import { rng } from '../../../persona/text.ts';

/** Three well-separated groups of noisy vectors around orthogonal directions. */
function groups(perGroup: number): { vectors: number[][]; truth: number[] } {
  const random = rng('groups');
  const vectors: number[][] = [];
  const truth: number[] = [];
  for (let g = 0; g < 3; g += 1) {
    for (let i = 0; i < perGroup; i += 1) {
      const v = Array.from({ length: 8 }, () => (random() - 0.5) * 0.2);
      v[g] = (v[g] ?? 0) + 1;
      vectors.push(v);
      truth.push(g);
    }
  }
  return { vectors, truth };
}

describe('population analytics', () => {
  it('k-means recovers well-separated groups, deterministically', () => {
    const { vectors, truth } = groups(10);
    const c = kmeans(vectors, 3, { seed: 's' });
    expect(c.sizes.sort()).toEqual([10, 10, 10]);
    // Same group ⇔ same cluster.
    for (let i = 0; i < vectors.length; i += 1) for (let j = 0; j < vectors.length; j += 1) expect(c.assignments[i] === c.assignments[j]).toBe(truth[i] === truth[j]);
    expect(c.cohesion).toBeGreaterThan(0.9);
    expect(kmeans(vectors, 3, { seed: 's' }).assignments).toEqual(c.assignments);
  });

  it('handles fewer points than clusters and no points', () => {
    expect(kmeans([[1, 0]], 5).sizes).toEqual([1]);
    expect(kmeans([], 3).k).toBe(0);
    expect(defaultK(2)).toBe(1);
    expect(defaultK(50)).toBe(5);
  });

  it('dispersion is 0 for identical vectors and larger for spread ones', () => {
    expect(dispersion([[1, 0], [2, 0], [3, 0]])).toBeCloseTo(0, 10);
    expect(dispersion([[1, 0], [0, 1]])).toBeCloseTo(1, 10);
    const { vectors } = groups(5);
    expect(dispersion(vectors)).toBeGreaterThan(dispersion(vectors.slice(0, 5)));
  });

  it('distinct n-gram ratio falls for templated text', () => {
    const varied = ['a nurse who coaches chess', 'a farmer worried about rain', 'a pilot learning to paint'];
    const templated = ['she is a kind person who works hard', 'she is a kind person who works hard', 'she is a kind person who works late'];
    expect(distinctNgramRatio(varied)).toBe(1);
    expect(distinctNgramRatio(templated)).toBeLessThan(0.5);
  });
});
