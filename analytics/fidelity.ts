import type { Demographics } from '../schemas/types.generated.ts';
import { parseWhere, type WhereClause } from '../persona/filter.ts';
import { ageRange, type CategoricalNode, type Profile } from '../persona/profile.ts';
import { targetDistribution } from '../persona/sampler.ts';

/**
 * Population fidelity: how far a set of personas is from the population its sampler profile
 * describes. Each attribute's marginal and each pair's joint distribution is compared with the
 * profile's exact target (computed from its tables, conditioned on the generation filter if any) by
 * total variation distance and Jensen-Shannon divergence. Marginals can be right while joints are
 * wrong (an audit of Nemotron-Personas-Korea found exactly that: women in male-dominated jobs), so
 * every pair is checked and the worst are flagged.
 */
export interface FidelityPersona {
  age: number;
  occupation: string;
  seedRelation: string;
  /** The single-valued demographics: lists are not compared. */
  demographics: Omit<Demographics, 'languages' | 'hobbies' | 'skills'> | null;
}

export interface MarginalFidelity {
  attribute: string;
  tvd: number;
  jsd: number;
  /** Share of the values the target gives any probability that at least one persona has. */
  coverage: number;
  /** Shannon entropy in bits of the personas' values, and of the target. */
  entropy: number;
  targetEntropy: number;
}

export interface PairFidelity {
  pair: [string, string];
  tvd: number;
  jsd: number;
  /** Chi-square statistic against the target joint and its critical value at FLAG_ALPHA. */
  chiSquare: number;
  critical: number;
  /** Significant (chi-square above critical) and large (TVD at least FLAG_TVD). */
  flagged: boolean;
}

export interface FidelityReport {
  profile: string;
  profileVersion: string;
  where: string;
  personas: number;
  marginals: MarginalFidelity[];
  /** Every pair, worst (highest chi-square relative to its critical value) first. */
  pairs: PairFidelity[];
}

/** A pair is flagged when its deviation is both significant at this level and at least FLAG_TVD large. */
export const FLAG_ALPHA = 0.001;
export const FLAG_TVD = 0.05;
const Z_ALPHA = 3.090; // standard normal quantile of 1 - FLAG_ALPHA

/** The attributes compared: the profile's categorical nodes (age by its bands) and its single-valued derived attributes. */
export function fidelityAttributes(profile: Profile): string[] {
  const nodes = profile.nodes.filter((n): n is CategoricalNode => n.kind === 'categorical' && n.values.length > 1).map((n) => n.name);
  return [...nodes, ...profile.derived.filter((d) => !d.list).map((d) => d.name)];
}

/** A persona's value of each compared attribute, as the profile names them (undefined when it lacks one). */
export function valuesOf(profile: Profile, p: FidelityPersona): Record<string, string | undefined> {
  const d = p.demographics;
  const ageNode = profile.nodes.find((n): n is CategoricalNode => n.kind === 'categorical' && n.name === profile.ageNode);
  const band = ageNode?.values.find((b) => {
    const [lo, hi] = ageRange(b);
    return p.age >= lo && p.age <= hi;
  });
  return {
    [profile.ageNode]: band, occupation: p.occupation, seedRelation: p.seedRelation,
    sex: d?.sex, maritalStatus: d?.maritalStatus, household: d?.household, educationLevel: d?.educationLevel, educationField: d?.educationField,
    employmentStatus: d?.employmentStatus, occupationGroup: d?.occupationGroup, industry: d?.industry, city: d?.city, region: d?.region,
    country: d?.country, culturalBackground: d?.culturalBackground, careerGoal: d?.careerGoal,
  };
}

function entropy(dist: Iterable<number>): number {
  let h = 0;
  for (const p of dist) if (p > 0) h -= p * Math.log2(p);
  return h;
}

/** Total variation distance and Jensen-Shannon divergence (bits, so within [0, 1]) of two distributions over string keys. */
export function divergences(p: ReadonlyMap<string, number>, q: ReadonlyMap<string, number>): { tvd: number; jsd: number } {
  let tvd = 0;
  let jsd = 0;
  for (const key of new Set([...p.keys(), ...q.keys()])) {
    const a = p.get(key) ?? 0;
    const b = q.get(key) ?? 0;
    const m = (a + b) / 2;
    tvd += Math.abs(a - b) / 2;
    if (a > 0) jsd += (a / 2) * Math.log2(a / m);
    if (b > 0) jsd += (b / 2) * Math.log2(b / m);
  }
  return { tvd, jsd };
}

/**
 * Chi-square of counts against a target, bins with fewer than 5 expected pooled (observed values the
 * target rules out go into the pool, so they count against the fit), and its critical value at
 * FLAG_ALPHA (Wilson-Hilferty).
 */
function chiSquare(counts: ReadonlyMap<string, number>, n: number, target: ReadonlyMap<string, number>): { stat: number; critical: number } {
  let stat = 0;
  let bins = 0;
  let poolObserved = 0;
  let poolExpected = 0;
  for (const [key, c] of counts) if (!target.has(key)) poolObserved += c;
  for (const [key, q] of target) {
    const expected = n * q;
    const observed = counts.get(key) ?? 0;
    if (expected < 5) {
      poolObserved += observed;
      poolExpected += expected;
    } else {
      stat += (observed - expected) ** 2 / expected;
      bins += 1;
    }
  }
  if (poolExpected > 0) {
    stat += (poolObserved - poolExpected) ** 2 / Math.max(poolExpected, 1);
    bins += 1;
  } else if (poolObserved > 0) {
    stat = Infinity;
  }
  const df = Math.max(1, bins - 1);
  const a = 2 / (9 * df);
  return { stat, critical: df * (1 - a + Z_ALPHA * Math.sqrt(a)) ** 3 };
}

const round = (x: number): number => Math.round(x * 10000) / 10000;

/** Compares personas drawn from `profile` (under `clauses`, the generation filter, if any) with the profile's targets. */
export function fidelity(profile: Profile, personas: readonly FidelityPersona[], clauses: readonly WhereClause[] = [], where = ''): FidelityReport {
  const attributes = fidelityAttributes(profile);
  const rows = personas.map((p) => valuesOf(profile, p));
  const n = rows.length;
  const empirical = (keys: readonly string[]): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const r of rows) {
      const key = keys.map((k) => r[k] ?? '(missing)').join('\u0000');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  };
  const normalise = (counts: ReadonlyMap<string, number>) => new Map([...counts].map(([k, c]) => [k, n > 0 ? c / n : 0]));
  const marginals = attributes.map((attribute): MarginalFidelity => {
    const target = targetDistribution(profile, [attribute], clauses);
    const counts = empirical([attribute]);
    const observed = normalise(counts);
    const support = [...target].filter(([, q]) => q > 0).map(([k]) => k);
    return {
      attribute, ...mapRound(divergences(observed, target)),
      coverage: round(support.length > 0 ? support.filter((k) => counts.has(k)).length / support.length : 1),
      entropy: round(entropy(observed.values())), targetEntropy: round(entropy(target.values())),
    };
  });
  const pairs: PairFidelity[] = [];
  for (let i = 0; i < attributes.length; i += 1) {
    for (let j = i + 1; j < attributes.length; j += 1) {
      const pair: [string, string] = [attributes[i] as string, attributes[j] as string];
      const target = targetDistribution(profile, pair, clauses);
      const counts = empirical(pair);
      const { tvd, jsd } = divergences(normalise(counts), target);
      const { stat, critical } = chiSquare(counts, n, target);
      pairs.push({ pair, tvd: round(tvd), jsd: round(jsd), chiSquare: Math.round(stat * 10) / 10, critical: Math.round(critical * 10) / 10, flagged: stat > critical && tvd >= FLAG_TVD });
    }
  }
  // Ranked by chi-square over its critical value, not by TVD: a pair of many-valued attributes has a large TVD from sampling noise alone.
  pairs.sort((a, b) => b.chiSquare / b.critical - a.chiSquare / a.critical);
  return { profile: profile.name, profileVersion: profile.version, where, personas: n, marginals, pairs };
}

/** One value of an attribute: the share of personas that have it and the share the profile's target gives it. */
export interface ValueShare {
  value: string;
  observed: number;
  target: number;
}

/** The pooled rest of an attribute's values past the `top` listed. */
export const OTHER_VALUES = '(other)';

/**
 * Each compared attribute's observed and target shares value by value, for a chart of the one beside the
 * other: the `top` values with the largest share on either side, largest first, the rest pooled as
 * OTHER_VALUES (a city attribute has hundreds of values, which no chart reads).
 */
export function marginalShares(profile: Profile, personas: readonly FidelityPersona[], clauses: readonly WhereClause[] = [], top = 12): { attribute: string; values: ValueShare[] }[] {
  const rows = personas.map((p) => valuesOf(profile, p));
  return fidelityAttributes(profile).map((attribute) => {
    const target = targetDistribution(profile, [attribute], clauses);
    const counts = new Map<string, number>();
    for (const r of rows) {
      const value = r[attribute] ?? '(missing)';
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    const all = [...new Set([...target.keys(), ...counts.keys()])].map((value) => ({
      value, observed: rows.length > 0 ? (counts.get(value) ?? 0) / rows.length : 0, target: target.get(value) ?? 0,
    })).sort((a, b) => Math.max(b.target, b.observed) - Math.max(a.target, a.observed) || a.value.localeCompare(b.value));
    const shown = all.slice(0, top);
    const rest = all.slice(top);
    if (rest.length > 0) shown.push({ value: OTHER_VALUES, observed: rest.reduce((s, v) => s + v.observed, 0), target: rest.reduce((s, v) => s + v.target, 0) });
    return { attribute, values: shown.map((v) => ({ value: v.value, observed: round(v.observed), target: round(v.target) })) };
  });
}

function mapRound(d: { tvd: number; jsd: number }): { tvd: number; jsd: number } {
  return { tvd: round(d.tvd), jsd: round(d.jsd) };
}

/** The report's Markdown section: marginals, then the worst pairs with the flagged ones marked. */
export function renderFidelity(f: FidelityReport, worst = 8): string {
  const lines = [`### Population fidelity: profile \`${f.profile}\` ${f.profileVersion}${f.where ? ` where \`${f.where}\`` : ''}, ${f.personas} personas`, ''];
  if (f.personas === 0) return [...lines, 'No persona drawn from this profile.'].join('\n');
  lines.push('| attribute | TVD | JSD (bits) | coverage | entropy (bits) | target entropy |', '|---|---|---|---|---|---|');
  for (const m of f.marginals) lines.push(`| ${m.attribute} | ${m.tvd} | ${m.jsd} | ${m.coverage} | ${m.entropy} | ${m.targetEntropy} |`);
  const flagged = f.pairs.filter((p) => p.flagged);
  lines.push('', `Joint distributions: ${f.pairs.length} pairs, ${flagged.length} flagged (chi-square significant at ${FLAG_ALPHA} and TVD ≥ ${FLAG_TVD}). Worst pairs:`, '');
  lines.push('| pair | TVD | JSD (bits) | chi-square | critical | flagged |', '|---|---|---|---|---|---|');
  for (const p of f.pairs.slice(0, worst)) lines.push(`| ${p.pair.join(' × ')} | ${p.tvd} | ${p.jsd} | ${p.chiSquare} | ${p.critical} | ${p.flagged ? '**yes**' : 'no'} |`);
  return lines.join('\n');
}

/** A persona with what it was drawn from: its profile (null before profiles) and its generation filter. */
export interface SourcedPersona extends FidelityPersona {
  samplerProfile: string | null;
  where: string;
}

/**
 * One report per (profile, filter) among the personas: those drawn from no profile (related personas,
 * records from before profiles) are left out, and so are those of a profile no longer present.
 */
export function fidelityByProfile(personas: readonly SourcedPersona[], load: (name: string) => Profile | undefined): FidelityReport[] {
  const groups = new Map<string, SourcedPersona[]>();
  for (const p of personas) {
    if (p.samplerProfile === null || p.demographics === null) continue;
    const key = `${p.samplerProfile}\u0000${p.where}`;
    const group = groups.get(key);
    if (group) group.push(p);
    else groups.set(key, [p]);
  }
  const reports: FidelityReport[] = [];
  for (const [key, group] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
    const [name = '', where = ''] = key.split('\u0000');
    const profile = load(name);
    if (profile) reports.push(fidelity(profile, group, parseWhere(where), where));
  }
  return reports;
}
