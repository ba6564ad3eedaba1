import { describe, expect, it } from 'vitest';
import { scaled, spread } from '../../../bench/scaling-model.ts';

describe('bench/scaling-model: the arithmetic docs/SCALING.md extrapolates with', () => {
  it('scales a size measured over n items to bytes per item, GiB per million and TiB per billion', () => {
    // 2,048,000 bytes over 1,000 personas: 2,048 bytes each; a million of them 2,048e6 / 2^30 GiB.
    const s = scaled(2_048_000, 1_000);
    expect(s.bytesPerItem).toBe(2048);
    expect(s.gibPerMillion).toBe(1.907);
    expect(s.tibPerBillion).toBe(1.863);
  });

  it('gives NaN per item, not Infinity, when nothing was measured', () => {
    expect(scaled(8192, 0).bytesPerItem).toBeNaN();
  });

  it('takes nearest-rank percentiles, whatever the order of the samples', () => {
    const values = Array.from({ length: 20 }, (_, i) => 20 - i);
    expect(spread(values)).toEqual({ n: 20, mean: 10.5, p50: 10, p95: 19, max: 20 });
    expect(spread([7])).toEqual({ n: 1, mean: 7, p50: 7, p95: 7, max: 7 });
  });

  it('describes no samples as NaN rather than throwing', () => {
    const s = spread([]);
    expect(s.n).toBe(0);
    expect(s.mean).toBeNaN();
  });
});
