import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../api/errors.ts';
import type { PipelineProgress } from '../../../api/jobs.ts';
import { validationSeries } from '../../../api/stats.ts';
import type { EventTypes } from '../../../topology/index.ts';

type Validated = EventTypes['validated'];
type Rejected = EventTypes['rejected'];

/** What the observer has seen, as plain maps: the series is a function of them alone. */
function seen(validated: { at: number; repaired?: string[] }[], rejected: { at: number; codes: string[] }[], since = 0): PipelineProgress {
  const v = new Map(validated.map((x, i) => [`v${i}`, { id: `v${i}`, validation: { validatedAt: x.at, repaired: x.repaired ?? [] } } as unknown as Validated]));
  const r = new Map(rejected.map((x, i) => [`r${i}`, { id: `r${i}`, rejectedAt: x.at, reasons: x.codes.map((code) => ({ code, message: code })) } as unknown as Rejected]));
  const empty = new Map();
  return { since, accounting: () => [], latticeSettled: async () => true, seen: { seed: empty, draft: empty, enriched: empty, validated: v, indexed: empty, rejected: r, dlq: empty } };
}

const T = 1_700_000_000_000;

describe('validation outcomes over time', () => {
  it('buckets passed, repaired and rejected-by-first-reason on epoch-aligned buckets, empty ones kept between', () => {
    const s = validationSeries(seen(
      [{ at: T + 1_000 }, { at: T + 2_000, repaired: ['age'] }, { at: T + 185_000 }],
      [{ at: T + 61_000, codes: ['NEAR_DUPLICATE', 'INCOHERENT_AGE'] }, { at: T + 62_000, codes: ['INCOHERENT_AGE'] }, { at: T + 63_000, codes: ['INCOHERENT_AGE'] }],
      T - 5_000,
    ), 60);
    const start = Math.floor((T + 1_000) / 60_000) * 60_000;
    expect(s.since).toBe(T - 5_000);
    expect(s.bucketSeconds).toBe(60);
    expect(s.buckets.map((b) => b.start)).toEqual([start, start + 60_000, start + 120_000, start + 180_000].filter((x) => x <= T + 185_000));
    expect(s.reasons).toEqual(['INCOHERENT_AGE', 'NEAR_DUPLICATE']);
    expect(s.totals).toEqual({ passed: 2, repaired: 1, rejected: { INCOHERENT_AGE: 2, NEAR_DUPLICATE: 1 } });
    const sum = s.buckets.reduce((n, b) => n + b.passed + b.repaired + Object.values(b.rejected).reduce((a, c) => a + c, 0), 0);
    expect(sum).toBe(6);
  });

  it('picks the narrowest bucket giving at most 60 when none is asked for, and refuses more than 1000', () => {
    const progress = seen([{ at: T }, { at: T + 3 * 3_600_000 }], []);
    expect(validationSeries(progress, undefined).bucketSeconds).toBe(300);
    expect(validationSeries(progress, undefined).buckets.length).toBeLessThanOrEqual(60);
    expect(() => validationSeries(progress, 1)).toThrow(ApiError);
    expect(validationSeries(seen([], []), undefined)).toMatchObject({ buckets: [], reasons: [], totals: { passed: 0, repaired: 0, rejected: {} } });
  });
});
