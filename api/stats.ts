import { marginalShares, fidelity } from '../analytics/fidelity.ts';
import { parseWhere } from '../persona/filter.ts';
import { listProfiles, loadProfile } from '../persona/profile.ts';
import type { CorpusStore } from '../store/query.ts';
import { ApiError } from './errors.ts';
import { toStoreFilter } from './filters.ts';
import type { PipelineProgress } from './jobs.ts';
import type { FidelityT, ValidationSeriesT } from './schemas.ts';

/**
 * The population page's two figures that /stats does not give: the stored personas against their sampler
 * profile's target (analytics/fidelity.ts, as `personahub report`), and validation outcomes over time.
 */

export async function fidelityStats(corpus: CorpusStore, q: { profile: string; where: string; values: number; limit: number }): Promise<FidelityT> {
  if (!listProfiles().includes(q.profile)) throw new ApiError(404, 'PH_API_PROFILE_NOT_FOUND', `no sampler profile ${q.profile}; there are ${listProfiles().join(', ')}`);
  const profile = loadProfile(q.profile);
  const clauses = parseWhere(q.where);
  const { rows, truncated } = await corpus.fidelityRows(profile.name, toStoreFilter({ where: q.where }), q.limit);
  // Personas stored before demographics existed have nothing to compare; fidelityByProfile leaves them out too.
  const personas = rows.filter((r) => r.demographics !== null);
  const report = fidelity(profile, personas, clauses, q.where);
  const shares = new Map(marginalShares(profile, personas, clauses, q.values).map((m) => [m.attribute, m.values]));
  return {
    ...report,
    truncated,
    marginals: report.marginals.map((m) => ({ ...m, values: shares.get(m.attribute) ?? [] })),
    // An observed value the target rules out makes chi-square infinite, which JSON cannot carry.
    pairs: report.pairs.map((p) => ({ ...p, chiSquare: Number.isFinite(p.chiSquare) ? p.chiSquare : null })),
  };
}

/** Bucket widths the API picks from when none is asked for, in seconds: the narrowest that gives at most AUTO_BUCKETS. */
const LADDER = [1, 10, 60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];
const AUTO_BUCKETS = 60;
/** More buckets than this is a request for a wider bucket. */
export const MAX_BUCKETS = 1000;

/**
 * Validation outcomes over time from the API's pipeline observer: each validated persona (passed as written, or
 * repaired) at its validatedAt, each rejected one at its rejectedAt under its first reason (so a stack's height
 * is the personas validated in the bucket, not the reasons). Buckets are aligned to the epoch and the empty ones
 * between the first and the last are kept, so time runs evenly along the chart.
 */
export function validationSeries(progress: PipelineProgress, bucketSeconds: number | undefined): ValidationSeriesT {
  type Outcome = { at: number; outcome: 'passed' | 'repaired' } | { at: number; outcome: 'rejected'; reason: string };
  const events: Outcome[] = [
    ...[...progress.seen.validated.values()].flatMap((p): Outcome[] => (p.validation ? [{ at: p.validation.validatedAt, outcome: p.validation.repaired.length > 0 ? 'repaired' : 'passed' }] : [])),
    ...[...progress.seen.rejected.values()].map((r): Outcome => ({ at: r.rejectedAt, outcome: 'rejected', reason: r.reasons[0]?.code ?? 'UNKNOWN' })),
  ];
  const times = events.map((e) => e.at);
  // A reduce, not Math.min(...times): a long-running API has seen more events than a call's arguments may hold.
  const first = times.reduce((a, b) => Math.min(a, b), times[0] ?? 0);
  const last = times.reduce((a, b) => Math.max(a, b), times[0] ?? 0);
  const span = last - first;
  const width = bucketSeconds ?? LADDER.find((s) => span / (s * 1000) < AUTO_BUCKETS) ?? (LADDER.at(-1) ?? 1);
  const ms = width * 1000;
  const start = Math.floor(first / ms) * ms;
  const count = times.length > 0 ? Math.floor(last / ms) - Math.floor(first / ms) + 1 : 0;
  if (count > MAX_BUCKETS) throw new ApiError(400, 'PH_API_TOO_MANY_BUCKETS', `${width} s buckets over these ${Math.ceil(span / 1000)} s make ${count} buckets, more than ${MAX_BUCKETS}; ask for a wider bucket`);
  const buckets = Array.from({ length: count }, (_, i): ValidationSeriesT['buckets'][number] => ({ start: start + i * ms, passed: 0, repaired: 0, rejected: {} }));
  const reasons = new Map<string, number>();
  for (const e of events) {
    const b = buckets[Math.floor((e.at - start) / ms)];
    if (!b) continue;
    if (e.outcome === 'rejected') {
      b.rejected[e.reason] = (b.rejected[e.reason] ?? 0) + 1;
      reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1);
    } else {
      b[e.outcome] += 1;
    }
  }
  return {
    since: progress.since,
    bucketSeconds: width,
    reasons: [...reasons].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([reason]) => reason),
    buckets,
    totals: {
      passed: buckets.reduce((s, b) => s + b.passed, 0),
      repaired: buckets.reduce((s, b) => s + b.repaired, 0),
      rejected: Object.fromEntries(reasons),
    },
  };
}
