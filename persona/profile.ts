import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PersonaHubError } from '../core/errors.ts';
import type { SeedRelation } from '../schemas/types.generated.ts';
import { FILTER_ATTRIBUTES, type FilterAttribute } from './filter.ts';

/**
 * A sampler profile: the population personas are drawn from, as a small Bayesian network of
 * categorical attributes (each drawn given earlier ones), sets drawn without contradictions (traits,
 * hobbies), and attributes derived from a drawn one (a city's region, an occupation's industry).
 * Profiles live in config/profiles/<name>.yaml and cite their sources; this module checks them.
 */
export const PROFILES_DIR = resolve(import.meta.dirname, '..', 'config', 'profiles');

/** Probabilities of one distribution may be off one by this much (published shares are rounded); they are renormalised. */
export const SUM_TOLERANCE = 0.002;

export interface CategoricalNode {
  kind: 'categorical';
  name: string;
  /** Earlier nodes this one is drawn given; empty for a marginal. */
  given: readonly string[];
  /** One distribution per combination of parent values, renormalised; a marginal has the single key ''. */
  rows: ReadonlyMap<string, ReadonlyMap<string, number>>;
  values: readonly string[];
  source: string;
}

export interface SetNode {
  kind: 'set';
  name: string;
  /** Items drawn without replacement, in proportion to their weights. */
  pool: ReadonlyMap<string, number>;
  count: number;
  /** Pairs never drawn together ("patient" with "impatient"). */
  exclusive: readonly (readonly [string, string])[];
  source: string;
}

export type ProfileNode = CategoricalNode | SetNode;

export interface DerivedAttribute {
  name: string;
  from: string;
  list: boolean;
  map: ReadonlyMap<string, readonly string[]>;
}

export interface Profile {
  name: string;
  version: string;
  description: string;
  sources: ReadonlyMap<string, string>;
  nodes: readonly ProfileNode[];
  derived: readonly DerivedAttribute[];
  /** The node whose values are age bands "lo-hi"; the age is uniform within the band drawn. */
  ageNode: string;
  /** Given names by sex and surnames for each cultural background, so a name fits the person it names. */
  names: ReadonlyMap<string, NamePool>;
}

export interface NamePool {
  female: readonly string[];
  male: readonly string[];
  surname: readonly string[];
}

/** A profile file that cannot be used; the message names the file and the path inside it. */
export class ProfileError extends PersonaHubError {
  constructor(code: 'PH_PROFILE_INVALID' | 'PH_PROFILE_NOT_FOUND', message: string) {
    super(code, message);
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Checker {
  constructor(readonly file: string) {}

  fail(path: string, message: string): never {
    throw new ProfileError('PH_PROFILE_INVALID', `${this.file}: ${path}: ${message}`);
  }

  object(v: unknown, path: string, allowed: readonly string[], required: readonly string[]): Json {
    if (!isObject(v)) this.fail(path, 'expected a mapping');
    for (const key of Object.keys(v)) if (!allowed.includes(key)) this.fail(`${path}.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
    for (const key of required) if (!(key in v)) this.fail(`${path}.${key}`, 'missing');
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(path, 'expected a non-empty string');
    return v;
  }

  strings(v: unknown, path: string): string[] {
    if (!Array.isArray(v)) this.fail(path, 'expected a list of strings');
    return v.map((s, i) => this.string(s, `${path}[${i}]`));
  }

  /** A distribution: probabilities in [0, 1] summing to one within SUM_TOLERANCE, returned renormalised. */
  distribution(v: unknown, path: string, values?: readonly string[]): Map<string, number> {
    if (!isObject(v) || Object.keys(v).length === 0) this.fail(path, 'expected a mapping of value: probability');
    const out = new Map<string, number>();
    let sum = 0;
    for (const [value, p] of Object.entries(v)) {
      if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1) this.fail(`${path}.${value}`, `probability must be a number in [0, 1], got ${JSON.stringify(p)}`);
      if (values && !values.includes(value)) this.fail(`${path}.${value}`, `not one of this attribute's values (${values.join(', ')})`);
      out.set(value, p);
      sum += p;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) this.fail(path, `probabilities sum to ${sum.toFixed(4)}, not 1 (tolerance ${SUM_TOLERANCE})`);
    for (const [value, p] of out) out.set(value, p / sum);
    return out;
  }

  weights(v: unknown, path: string): Map<string, number> {
    if (!isObject(v) || Object.keys(v).length === 0) this.fail(path, 'expected a mapping of item: weight');
    const out = new Map<string, number>();
    for (const [item, w] of Object.entries(v)) {
      if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0) this.fail(`${path}.${item}`, `weight must be a positive number, got ${JSON.stringify(w)}`);
      out.set(item, w);
    }
    return out;
  }
}

/** Parent-value keys of a conditional table: "a, b" lists several values sharing one distribution. */
function keyValues(key: string): string[] {
  return key.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Reads a conditional table nested one level per parent, each level's keys covering every value of
 * that parent exactly once, into one row per combination (values joined by NUL).
 */
function readTable(c: Checker, table: unknown, path: string, parents: readonly CategoricalNode[], values: readonly string[] | undefined, prefix: readonly string[], rows: Map<string, Map<string, number>>): void {
  const [parent, ...rest] = parents;
  if (!parent) {
    rows.set(prefix.join('\u0000'), c.distribution(table, path, values));
    return;
  }
  if (!isObject(table)) c.fail(path, `expected a mapping keyed by ${parent.name}`);
  const covered = new Set<string>();
  for (const [key, sub] of Object.entries(table)) {
    const group = keyValues(key);
    for (const value of group) {
      if (!parent.values.includes(value)) c.fail(`${path}["${key}"]`, `"${value}" is not a value of ${parent.name} (${parent.values.join(', ')})`);
      if (covered.has(value)) c.fail(`${path}["${key}"]`, `${parent.name}=${value} is covered twice`);
      covered.add(value);
      readTable(c, sub, `${path}["${key}"]`, rest, values, [...prefix, value], rows);
    }
  }
  const missing = parent.values.filter((v) => !covered.has(v));
  if (missing.length > 0) c.fail(path, `does not cover ${parent.name} = ${missing.join(', ')}`);
}

const AGE_BAND = /^(\d+)-(\d+)$/;

export function ageRange(band: string): [number, number] {
  const m = AGE_BAND.exec(band);
  return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)];
}

/** Checks a parsed profile document; `file` is what error messages name. */
export function checkProfile(doc: unknown, file: string): Profile {
  const c: Checker = new Checker(file);
  const top = c.object(doc, '$', ['name', 'version', 'description', 'sources', 'ageNode', 'nodes', 'derived', 'names'], ['name', 'version', 'description', 'sources', 'ageNode', 'nodes', 'names']);
  const sourcesDoc = c.object(top.sources, '$.sources', Object.keys(isObject(top.sources) ? top.sources : {}), []);
  const sources = new Map(Object.entries(sourcesDoc).map(([id, text]) => [id, c.string(text, `$.sources.${id}`)]));
  if (!Array.isArray(top.nodes)) c.fail('$.nodes', 'expected a list');
  const nodes: ProfileNode[] = [];
  const byName = new Map<string, ProfileNode>();
  top.nodes.forEach((raw: unknown, i: number) => {
    const path = `$.nodes[${i}]`;
    const kind = isObject(raw) && 'pool' in raw ? 'set' : 'categorical';
    const n = kind === 'set'
      ? c.object(raw, path, ['name', 'source', 'pool', 'count', 'exclusive', 'note'], ['name', 'source', 'pool', 'count'])
      : c.object(raw, path, ['name', 'source', 'given', 'distribution', 'table', 'note'], ['name', 'source']);
    const name = c.string(n.name, `${path}.name`);
    if (byName.has(name)) c.fail(`${path}.name`, `"${name}" is defined twice`);
    const source = c.string(n.source, `${path}.source`);
    for (const id of source.split(',').map((s) => s.trim())) if (!sources.has(id)) c.fail(`${path}.source`, `"${id}" is not in $.sources`);
    let node: ProfileNode;
    if (kind === 'set') {
      const pool = c.weights(n.pool, `${path}.pool`);
      const count = n.count;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > pool.size) c.fail(`${path}.count`, `expected a whole number from 1 to the pool's size (${pool.size})`);
      const exclusive = (Array.isArray(n.exclusive) ? n.exclusive : n.exclusive === undefined ? [] : c.fail(`${path}.exclusive`, 'expected a list of pairs')).map((pair: unknown, j: number) => {
        const items = c.strings(pair, `${path}.exclusive[${j}]`);
        if (items.length !== 2) c.fail(`${path}.exclusive[${j}]`, 'expected a pair');
        for (const item of items) if (!pool.has(item)) c.fail(`${path}.exclusive[${j}]`, `"${item}" is not in the pool`);
        return [items[0], items[1]] as [string, string];
      });
      node = { kind, name, pool, count, exclusive, source };
    } else {
      const given = n.given === undefined ? [] : c.strings(n.given, `${path}.given`);
      const parents = given.map((g, j) => {
        const p = byName.get(g);
        if (!p) c.fail(`${path}.given[${j}]`, `"${g}" is not an earlier node`);
        if (p.kind !== 'categorical') c.fail(`${path}.given[${j}]`, `"${g}" is a set and cannot be conditioned on`);
        return p;
      });
      const rows = new Map<string, Map<string, number>>();
      if (given.length === 0) {
        if (n.table !== undefined || n.distribution === undefined) c.fail(path, 'a node without "given" has a "distribution" (and no "table")');
        rows.set('', c.distribution(n.distribution, `${path}.distribution`));
      } else {
        if (n.distribution !== undefined || n.table === undefined) c.fail(path, 'a node with "given" has a "table" (and no "distribution")');
        readTable(c, n.table, `${path}.table`, parents, undefined, [], rows);
      }
      const values = [...new Set([...rows.values()].flatMap((r) => [...r.keys()]))];
      node = { kind, name, given, rows, values, source };
    }
    nodes.push(node);
    byName.set(name, node);
  });
  const ageNode = c.string(top.ageNode, '$.ageNode');
  const age = byName.get(ageNode);
  if (age?.kind !== 'categorical' || age.given.length > 0) c.fail('$.ageNode', `"${ageNode}" is not a node drawn without parents`);
  for (const band of age.values) {
    const [lo, hi] = ageRange(band);
    if (!AGE_BAND.test(band) || lo > hi || lo < 0) c.fail(`$.nodes[${nodes.indexOf(age)}]`, `age band "${band}" is not "lo-hi"`);
  }
  const derivedDoc = top.derived === undefined ? {} : c.object(top.derived, '$.derived', Object.keys(isObject(top.derived) ? top.derived : {}), []);
  const derived: DerivedAttribute[] = Object.entries(derivedDoc).map(([name, raw]) => {
    const path = `$.derived.${name}`;
    const d = c.object(raw, path, ['from', 'list', 'map', 'source'], ['from', 'map']);
    if (byName.has(name)) c.fail(path, `"${name}" is already a node`);
    const from = c.string(d.from, `${path}.from`);
    const fromNode = byName.get(from);
    if (fromNode?.kind !== 'categorical') c.fail(`${path}.from`, `"${from}" is not a categorical node`);
    const list = d.list === true;
    const mapDoc = c.object(d.map, `${path}.map`, fromNode.values, fromNode.values);
    const map = new Map(Object.entries(mapDoc).map(([value, to]) => [value, list ? c.strings(to, `${path}.map["${value}"]`) : [c.string(to, `${path}.map["${value}"]`)]]));
    return { name, from, list, map };
  });
  for (const node of nodes) if (node.name !== ageNode && !isKnownAttribute(node.name) && !INTERNAL_NODES.includes(node.name)) c.fail(`$.nodes[${nodes.indexOf(node)}].name`, `"${node.name}" is neither a filterable attribute (${Object.keys(FILTER_ATTRIBUTES).join(', ')}) nor one of ${INTERNAL_NODES.join(', ')}`);
  for (const d of derived) if (!isKnownAttribute(d.name)) c.fail(`$.derived.${d.name}`, 'not a filterable attribute');
  const missing = REQUIRED_ATTRIBUTES.filter((a) => !byName.has(a) && !derived.some((d) => d.name === a));
  if (missing.length > 0) c.fail('$.nodes', `a persona needs ${missing.join(', ')}`);
  const relation = byName.get('seedRelation');
  const badRelation = relation?.kind === 'categorical' ? relation.values.find((v) => !(SEED_RELATION_SYMBOLS as readonly string[]).includes(v)) : undefined;
  if (badRelation !== undefined) c.fail(`$.nodes[${nodes.indexOf(relation as ProfileNode)}]`, `seedRelation "${badRelation}" is not one of ${SEED_RELATION_SYMBOLS.join(', ')}`);
  const namesDoc = c.object(top.names, '$.names', ['source', 'note', 'byBackground'], ['source', 'byBackground']);
  if (!sources.has(c.string(namesDoc.source, '$.names.source'))) c.fail('$.names.source', `"${String(namesDoc.source)}" is not in $.sources`);
  const backgrounds = byName.get('culturalBackground');
  const byBackground = c.object(namesDoc.byBackground, '$.names.byBackground', Object.keys(isObject(namesDoc.byBackground) ? namesDoc.byBackground : {}), []);
  const names = new Map<string, NamePool>();
  for (const [key, raw] of Object.entries(byBackground)) {
    const path = `$.names.byBackground["${key}"]`;
    const pool = c.object(raw, path, ['female', 'male', 'surname'], ['female', 'male', 'surname']);
    const entry = { female: c.strings(pool.female, `${path}.female`), male: c.strings(pool.male, `${path}.male`), surname: c.strings(pool.surname, `${path}.surname`) };
    for (const list of ['female', 'male', 'surname'] as const) if (entry[list].length === 0) c.fail(`${path}.${list}`, 'expected at least one name');
    for (const value of keyValues(key)) {
      if (backgrounds?.kind === 'categorical' && !backgrounds.values.includes(value)) c.fail(path, `"${value}" is not a value of culturalBackground`);
      if (names.has(value)) c.fail(path, `culturalBackground=${value} is covered twice`);
      names.set(value, entry);
    }
  }
  const unnamed = backgrounds?.kind === 'categorical' ? backgrounds.values.filter((v) => !names.has(v)) : [];
  if (unnamed.length > 0) c.fail('$.names.byBackground', `does not cover culturalBackground = ${unnamed.join(', ')}`);
  return {
    name: c.string(top.name, '$.name'),
    version: String(top.version),
    description: c.string(top.description, '$.description'),
    sources, nodes, derived, ageNode, names,
  };
}

/** What every profile must produce, since a persona carries each of them. */
export const REQUIRED_ATTRIBUTES: readonly string[] = ['sex', 'maritalStatus', 'household', 'educationLevel', 'educationField', 'employmentStatus', 'occupationGroup', 'occupation', 'industry',
  'city', 'region', 'country', 'culturalBackground', 'language', 'hobby', 'skill', 'trait', 'careerGoal', 'seedRelation'];

export const SEED_RELATION_SYMBOLS = ['READER', 'WRITER', 'ENTHUSIAST', 'CRITIC', 'SUBJECT'] as const satisfies readonly SeedRelation[];

/** Nodes that shape the draw without being filterable themselves. */
export const INTERNAL_NODES: readonly string[] = ['employmentStatus', 'occupationGroup', 'careerGoal'];

function isKnownAttribute(name: string): name is FilterAttribute {
  return Object.hasOwn(FILTER_ATTRIBUTES, name);
}

export function parseProfile(text: string, file: string): Profile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new ProfileError('PH_PROFILE_INVALID', `${file}: not valid YAML: ${(error as Error).message}`);
  }
  return checkProfile(doc, file);
}

/** Names of the profiles present (config/profiles/*.yaml). */
export function listProfiles(dir = PROFILES_DIR): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort();
}

const loaded = new Map<string, Profile>();

/** Loads and checks config/profiles/<name>.yaml once per process. */
export function loadProfile(name: string, dir = PROFILES_DIR): Profile {
  const key = join(dir, `${name}.yaml`);
  const cached = loaded.get(key);
  if (cached) return cached;
  if (!listProfiles(dir).includes(name)) throw new ProfileError('PH_PROFILE_NOT_FOUND', `no profile "${name}" in ${dir} (present: ${listProfiles(dir).join(', ')})`);
  const profile = parseProfile(readFileSync(key, 'utf8'), key);
  loaded.set(key, profile);
  return profile;
}
