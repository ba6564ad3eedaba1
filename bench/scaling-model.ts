/**
 * The arithmetic of bench/scaling.ts, kept apart from the measuring so it can be checked on its own: sizes
 * measured at a few thousand personas become bytes per persona, per million and per billion, and samples
 * become the mean, median and 95th percentile docs/SCALING.md quotes.
 */

export interface Spread {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

/** Nearest-rank percentile of sorted values (q in 0..1). */
function nearestRank(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { n: 0, mean: Number.NaN, p50: Number.NaN, p95: Number.NaN, max: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { n: sorted.length, mean: round(mean, 1), p50: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95), max: sorted[sorted.length - 1] as number };
}

export interface Scaled {
  /** What was measured, over `per` items. */
  bytes: number;
  per: number;
  bytesPerItem: number;
  /** Linear extrapolations: what a million and a billion items take at the measured rate. */
  gibPerMillion: number;
  tibPerBillion: number;
}

/**
 * Linear extrapolation of a size measured over `per` items. Linear is right for heap rows and B-tree
 * entries (fixed work per row); for HNSW it slightly understates (the graph's upper layers grow with
 * log n), which the docs say beside the figure.
 */
export function scaled(bytes: number, per: number): Scaled {
  const bytesPerItem = per > 0 ? bytes / per : Number.NaN;
  return {
    bytes, per, bytesPerItem: round(bytesPerItem, 1),
    gibPerMillion: round((bytesPerItem * 1e6) / 2 ** 30, 3),
    tibPerBillion: round((bytesPerItem * 1e9) / 2 ** 40, 3),
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
