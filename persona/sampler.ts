import { PersonaHubError } from '../core/errors.ts';
import type { Demographics, SeedRelation } from '../schemas/types.generated.ts';
import { sampleName, type SampledAttributes } from './attributes.ts';
import { clauseHolds, FILTER_ATTRIBUTES, formatWhere, parseWhere, sameValue, type WhereClause } from './filter.ts';
import { ageRange, loadProfile, SEED_RELATION_SYMBOLS, type CategoricalNode, type Profile, type SetNode } from './profile.ts';
import { pick, rng } from './text.ts';

/**
 * Sampling from a profile, optionally conditioned on a filter BY CONSTRUCTION: each categorical node
 * is drawn from its table restricted to values consistent with the filter and reweighted by the
 * probability that every later node can still satisfy it (backward messages computed once per filter
 * over the few earlier values later nodes depend on), so every draw matches and the draws follow the
 * profile's distribution conditioned on the filter exactly. No draw is ever rejected and retried.
 */
export class UnsatisfiableFilterError extends PersonaHubError {
  constructor(message: string) {
    super('PH_FILTER_UNSATISFIABLE', message);
  }
}

export interface ProfileDraw {
  /** Every categorical node's value, by node name. */
  values: Record<string, string>;
  age: number;
  /** Every set node's items, by node name. */
  sets: Record<string, string[]>;
  /** Every derived attribute's values (one for a scalar), by name. */
  derived: Record<string, string[]>;
}

const SEP = '\u0000';

interface Plan {
  nodes: readonly CategoricalNode[];
  /** For each position i, the earlier nodes (indices) whose values some node at i or later is drawn given. */
  frontier: readonly (readonly number[])[];
  parentIndex: readonly (readonly number[])[];
}

function plan(profile: Profile): Plan {
  const nodes = profile.nodes.filter((n): n is CategoricalNode => n.kind === 'categorical');
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const parentIndex = nodes.map((n) => n.given.map((g) => index.get(g) as number));
  const frontier = nodes.map((_, i) => [...new Set(parentIndex.slice(i).flat().filter((p) => p < i))].sort((a, b) => a - b));
  return { nodes, frontier, parentIndex };
}

/** Clauses on one attribute, grouped so each node checks only its own. */
function clausesFor(clauses: readonly WhereClause[], attribute: string): WhereClause[] {
  return clauses.filter((c) => c.attribute === attribute);
}

/**
 * The probability, for each value of a node, that the node's own attributes satisfy the filter: 0 or 1
 * for a category (and the attributes derived from it), the share of whole ages in the band that pass
 * for the age node (ages are uniform within their band).
 */
function localLikelihood(profile: Profile, node: CategoricalNode, clauses: readonly WhereClause[]): Map<string, number> {
  const own = clausesFor(clauses, node.name);
  const derived = profile.derived.filter((d) => d.from === node.name).map((d) => ({ d, cs: clausesFor(clauses, d.name) })).filter((x) => x.cs.length > 0);
  const ageClauses = node.name === profile.ageNode ? clausesFor(clauses, 'age') : [];
  const out = new Map<string, number>();
  for (const value of node.values) {
    let p = own.every((c) => clauseHolds(c, value)) ? 1 : 0;
    for (const { d, cs } of derived) {
      const got = d.map.get(value) ?? [];
      if (!cs.every((c) => clauseHolds(c, d.list ? got : got[0]))) p = 0;
    }
    if (p > 0 && ageClauses.length > 0) {
      const [lo, hi] = ageRange(value);
      let pass = 0;
      for (let age = lo; age <= hi; age += 1) if (ageClauses.every((c) => clauseHolds(c, age))) pass += 1;
      p = pass / (hi - lo + 1);
    }
    out.set(value, p);
  }
  return out;
}

function rowKey(node: CategoricalNode, parents: readonly number[], state: readonly (string | undefined)[]): string {
  return parents.map((p) => state[p]).join(SEP);
}

function rowOf(node: CategoricalNode, key: string): ReadonlyMap<string, number> {
  return node.rows.get(node.given.length === 0 ? '' : key) ?? new Map();
}

/** Which attributes a profile produces (so a clause on anything else can never hold). */
export function producedAttributes(profile: Profile): Set<string> {
  return new Set([...profile.nodes.map((n) => n.name), ...profile.derived.map((d) => d.name), 'age']);
}

function pickFrom(random: () => number, weights: readonly (readonly [string, number])[], total: number): string {
  let r = random() * total;
  for (const [value, w] of weights) {
    r -= w;
    if (r < 0 && w > 0) return value;
  }
  const last = [...weights].reverse().find(([, w]) => w > 0);
  return last ? last[0] : '';
}

interface SetPlan {
  node: SetNode;
  required: string[];
  forbidden: Set<string>;
}

function setPlan(node: SetNode, clauses: readonly WhereClause[]): SetPlan {
  const cs = clausesFor(clauses, node.name);
  const find = (v: string | number) => [...node.pool.keys()].find((item) => sameValue(item, String(v)));
  const required: string[] = [];
  const forbidden = new Set<string>();
  for (const c of cs) {
    const item = find(c.value);
    if (c.op === '=') {
      if (item === undefined) throw new UnsatisfiableFilterError(`${c.attribute}=${c.value}: not in the profile's ${node.name} pool (${[...node.pool.keys()].join(', ')})`);
      if (!required.includes(item)) required.push(item);
    } else if (item !== undefined) {
      forbidden.add(item);
    }
  }
  for (const item of required) {
    if (forbidden.has(item)) throw new UnsatisfiableFilterError(`${node.name} "${item}" is both required and excluded`);
    for (const [a, b] of node.exclusive) {
      const other = a === item ? b : b === item ? a : undefined;
      if (other !== undefined && required.includes(other)) throw new UnsatisfiableFilterError(`${node.name} "${item}" and "${other}" never go together in this profile`);
    }
  }
  if (required.length > node.count) throw new UnsatisfiableFilterError(`${required.length} ${node.name} values required, but a persona has ${node.count}`);
  const available = [...node.pool.keys()].filter((i) => !forbidden.has(i) && !required.includes(i) && !node.exclusive.some(([a, b]) => (a === i && required.includes(b)) || (b === i && required.includes(a))));
  if (required.length + available.length < node.count) throw new UnsatisfiableFilterError(`too few ${node.name} values left after the filter to draw ${node.count}`);
  return { node, required, forbidden };
}

/**
 * A set's items: the required ones, then draws without replacement by weight; each drawn item takes
 * the items it excludes out of the pool, so no contradictory pair can come out.
 */
function drawSet(random: () => number, sp: SetPlan): string[] {
  const { node } = sp;
  const out = [...sp.required];
  const excludedBy = (item: string) => node.exclusive.flatMap(([a, b]) => (a === item ? [b] : b === item ? [a] : []));
  const blocked = new Set([...sp.forbidden, ...out, ...out.flatMap(excludedBy)]);
  while (out.length < node.count) {
    const pool = [...node.pool].filter(([item]) => !blocked.has(item));
    if (pool.length === 0) break;
    const item = pickFrom(random, pool, pool.reduce((s, [, w]) => s + w, 0));
    out.push(item);
    blocked.add(item);
    for (const x of excludedBy(item)) blocked.add(x);
  }
  return out;
}

export interface Sampler {
  readonly profile: Profile;
  readonly clauses: readonly WhereClause[];
  draw(random: () => number): ProfileDraw;
}

/** A sampler for a profile conditioned on a filter; throws UnsatisfiableFilterError when no persona can match. */
export function createSampler(profile: Profile, clauses: readonly WhereClause[] = []): Sampler {
  const produced = producedAttributes(profile);
  for (const c of clauses) {
    if (!produced.has(c.attribute) && c.op !== '!=') throw new UnsatisfiableFilterError(`profile "${profile.name}" does not produce ${c.attribute} (it produces ${[...produced].filter((a) => a in FILTER_ATTRIBUTES).join(', ')})`);
  }
  const { nodes, frontier, parentIndex } = plan(profile);
  const likelihood = nodes.map((n) => localLikelihood(profile, n, clauses));
  const sets = profile.nodes.filter((n): n is SetNode => n.kind === 'set').map((n) => setPlan(n, clauses));
  const conditioned = clauses.length > 0;
  const memo = new Map<string, number>();

  /** P(nodes i.. satisfy the filter | the frontier's values in state): the backward message. */
  const future = (i: number, state: (string | undefined)[]): number => {
    if (!conditioned || i >= nodes.length) return 1;
    const key = `${i}|${(frontier[i] ?? []).map((f) => state[f]).join(SEP)}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const node = nodes[i] as CategoricalNode;
    const row = rowOf(node, rowKey(node, parentIndex[i] ?? [], state));
    let total = 0;
    for (const [value, p] of row) {
      const l = (likelihood[i] as Map<string, number>).get(value) ?? 0;
      if (p === 0 || l === 0) continue;
      state[i] = value;
      total += p * l * future(i + 1, state);
    }
    state[i] = undefined;
    memo.set(key, total);
    return total;
  };

  if (conditioned && future(0, new Array<string | undefined>(nodes.length)) === 0) {
    throw new UnsatisfiableFilterError(`no persona of profile "${profile.name}" matches ${formatWhere(clauses)}`);
  }

  return {
    profile,
    clauses,
    draw(random) {
      const state = new Array<string | undefined>(nodes.length);
      nodes.forEach((node, i) => {
        const row = rowOf(node, rowKey(node, parentIndex[i] ?? [], state));
        const weights: [string, number][] = [];
        let total = 0;
        for (const [value, p] of row) {
          let w = p;
          if (conditioned && w > 0) {
            w *= (likelihood[i] as Map<string, number>).get(value) ?? 0;
            if (w > 0) {
              state[i] = value;
              w *= future(i + 1, state);
            }
          }
          weights.push([value, w]);
          total += w;
        }
        state[i] = pickFrom(random, weights, total);
      });
      const values = Object.fromEntries(nodes.map((n, i) => [n.name, state[i] as string]));
      const [lo, hi] = ageRange(values[profile.ageNode] ?? '0-0');
      const ageClauses = clausesFor(clauses, 'age');
      const ages: number[] = [];
      for (let a = lo; a <= hi; a += 1) if (ageClauses.every((c) => clauseHolds(c, a))) ages.push(a);
      const age = ages[Math.floor(random() * ages.length)] ?? lo;
      const derived = Object.fromEntries(profile.derived.map((d) => [d.name, [...(d.map.get(values[d.from] ?? '') ?? [])]]));
      return { values, age, sets: Object.fromEntries(sets.map((sp) => [sp.node.name, drawSet(random, sp)])), derived };
    },
  };
}

/**
 * The exact distribution, under the profile conditioned on the filter, of the joint values of some
 * categorical nodes or derived attributes (keys joined by NUL, in the order asked): a forward pass
 * over the network keeping only the earlier values later nodes need. The targets the fidelity report
 * and the tests compare draws against.
 */
export function targetDistribution(profile: Profile, tracked: readonly string[], clauses: readonly WhereClause[] = []): Map<string, number> {
  const { nodes, frontier, parentIndex } = plan(profile);
  const likelihood = nodes.map((n) => localLikelihood(profile, n, clauses));
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const trackedAt = tracked.map((t) => {
    const d = profile.derived.find((x) => x.name === t);
    const i = index.get(d ? d.from : t);
    if (i === undefined) throw new PersonaHubError('PH_PROFILE_ATTRIBUTE', `profile "${profile.name}" has no categorical attribute ${t}`);
    return { i, map: d ? (v: string) => (d.map.get(v) ?? []).join(', ') : (v: string) => v };
  });
  // State: frontier values for the next node, then the tracked values so far.
  let states = new Map<string, { vals: (string | undefined)[]; out: (string | undefined)[]; p: number }>([['', { vals: new Array<string | undefined>(nodes.length).fill(undefined), out: new Array<string | undefined>(tracked.length).fill(undefined), p: 1 }]]);
  nodes.forEach((node, i) => {
    const next = new Map<string, { vals: (string | undefined)[]; out: (string | undefined)[]; p: number }>();
    const keep = new Set(frontier[i + 1] ?? []);
    for (const s of states.values()) {
      const row = rowOf(node, rowKey(node, parentIndex[i] ?? [], s.vals));
      for (const [value, q] of row) {
        const p = s.p * q * ((likelihood[i] as Map<string, number>).get(value) ?? 0);
        if (p === 0) continue;
        const vals = s.vals.map((v, j) => (keep.has(j) ? v : undefined));
        if (keep.has(i)) vals[i] = value;
        const out = s.out.map((o, k) => (trackedAt[k]?.i === i ? trackedAt[k].map(value) : o));
        const key = `${vals.join(SEP)}|${out.join(SEP)}`;
        const prev = next.get(key);
        if (prev) prev.p += p;
        else next.set(key, { vals, out, p });
      }
    }
    states = next;
  });
  const result = new Map<string, number>();
  let total = 0;
  for (const s of states.values()) {
    const key = s.out.join(SEP);
    result.set(key, (result.get(key) ?? 0) + s.p);
    total += s.p;
  }
  if (total === 0) throw new UnsatisfiableFilterError(`no persona of profile "${profile.name}" matches ${formatWhere(clauses)}`);
  for (const [k, p] of result) result.set(k, p / total);
  return result;
}

/** A drawn persona: the attributes the draft is grounded on and the demographics it carries. */
export interface SampledPersona {
  attributes: SampledAttributes;
  demographics: Demographics;
}

function isSeedRelation(v: string): v is SeedRelation {
  return (SEED_RELATION_SYMBOLS as readonly string[]).includes(v);
}

/** Turns a draw into the persona's fields (the profile's check guarantees every attribute is there). */
export function personaOf(profile: Profile, draw: ProfileDraw, random: () => number): SampledPersona {
  const v = (name: string): string => draw.values[name] ?? draw.derived[name]?.[0] ?? '';
  const relation = v('seedRelation');
  const pool = profile.names.get(v('culturalBackground'));
  const sex = v('sex');
  const given = pool ? (sex === 'female' ? pool.female : sex === 'male' ? pool.male : [...pool.female, ...pool.male]) : [];
  return {
    attributes: {
      name: pool ? `${pick(random, given)} ${pick(random, pool.surname)}` : sampleName(random),
      age: draw.age,
      occupation: v('occupation'),
      locale: `${v('city')}, ${v('country')}`,
      traits: draw.sets.trait ?? [],
      seedRelation: isSeedRelation(relation) ? relation : 'READER',
    },
    demographics: {
      sex: v('sex'), maritalStatus: v('maritalStatus'), household: v('household'), educationLevel: v('educationLevel'), educationField: v('educationField'),
      employmentStatus: v('employmentStatus'), occupationGroup: v('occupationGroup'), industry: v('industry'),
      city: v('city'), region: v('region'), country: v('country'), culturalBackground: v('culturalBackground'),
      languages: draw.derived.language ?? [], hobbies: draw.sets.hobby ?? [], skills: draw.derived.skill ?? [], careerGoal: v('careerGoal'),
    },
  };
}

/** One persona for (seed id, generation index): deterministic, so re-runs and re-deliveries draw the same person. */
export function samplePersona(sampler: Sampler, seedId: string, generationIndex: number): SampledPersona {
  const random = rng(`${seedId}:${generationIndex}`);
  return personaOf(sampler.profile, sampler.draw(random), random);
}

const samplers = new Map<string, Sampler>();
/** Filters kept per process: the API may see many distinct ones, and each holds its backward messages. */
const MAX_SAMPLERS = 64;

/**
 * The sampler of a profile (config/profiles/<name>.yaml) conditioned on a filter expression, built once
 * per process: loading checks the profile, and the backward messages are computed once per filter.
 */
export function samplerFor(profileName: string, where = ''): Sampler {
  const key = `${profileName}\u0000${where}`;
  let sampler = samplers.get(key);
  if (!sampler) {
    sampler = createSampler(loadProfile(profileName), parseWhere(where));
    if (samplers.size >= MAX_SAMPLERS) samplers.delete(samplers.keys().next().value ?? key);
    samplers.set(key, sampler);
  }
  return sampler;
}
