import { describe, expect, it } from 'vitest';
import { matches, parseWhere } from '../../../persona/filter.ts';
import { checkProfile, listProfiles, loadProfile, parseProfile, ProfileError, type CategoricalNode, type Profile } from '../../../persona/profile.ts';
import { createSampler, samplePersona, samplerFor, targetDistribution, UnsatisfiableFilterError, type ProfileDraw } from '../../../persona/sampler.ts';
import { personaFilterAttributes } from '../../../persona/persona-filter.ts';
import { rng } from '../../../persona/text.ts';

/**
 * The sampler against its own targets. Each comparison is a chi-square goodness-of-fit test at
 * significance 0.001 on 100k draws (50k under a filter), bins with fewer than 5 expected draws pooled.
 * The draws come from a fixed seed, so a pass or a fail is reproducible, and the last test shows the
 * same test refusing draws that do not follow the target.
 */
const DRAWS = 100_000;
const ALPHA_Z = 3.090; // standard normal quantile of 1 - 0.001

/** Wilson-Hilferty approximation of the chi-square critical value with df degrees of freedom at ALPHA_Z. */
function chiSquareCritical(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + ALPHA_Z * Math.sqrt(a)) ** 3;
}

/** Chi-square statistic and critical value of observed counts against target probabilities. */
function chiSquare(counts: ReadonlyMap<string, number>, target: ReadonlyMap<string, number>): { stat: number; critical: number; unexpected: string[] } {
  const n = [...counts.values()].reduce((s, c) => s + c, 0);
  const unexpected = [...counts.keys()].filter((k) => !(target.get(k) ?? 0));
  let stat = 0;
  let bins = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (const [value, p] of target) {
    const expected = n * p;
    const observed = counts.get(value) ?? 0;
    if (expected < 5) {
      pooledObserved += observed;
      pooledExpected += expected;
      continue;
    }
    stat += (observed - expected) ** 2 / expected;
    bins += 1;
  }
  if (pooledExpected >= 5) {
    stat += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins += 1;
  }
  return { stat, critical: bins > 1 ? chiSquareCritical(bins - 1) : Infinity, unexpected };
}

function drawMany(profile: Profile, where: string, n: number, seed: string): ProfileDraw[] {
  const sampler = createSampler(profile, parseWhere(where));
  const random = rng(seed);
  return Array.from({ length: n }, () => sampler.draw(random));
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(key(item), (out.get(key(item)) ?? 0) + 1);
  return out;
}

const categorical = (p: Profile) => p.nodes.filter((n): n is CategoricalNode => n.kind === 'categorical');

/** Every declared conditional: for each parent combination drawn at least 2000 times, the child's counts against that row. */
function checkConditionals(profile: Profile, draws: readonly ProfileDraw[], nodes: readonly CategoricalNode[]): number {
  let tested = 0;
  for (const node of nodes.filter((n) => n.given.length > 0)) {
    const groups = new Map<string, ProfileDraw[]>();
    for (const d of draws) {
      const key = node.given.map((g) => d.values[g]).join('\u0000');
      const group = groups.get(key);
      if (group) group.push(d);
      else groups.set(key, [d]);
    }
    for (const [key, group] of groups) {
      if (group.length < 2000) continue;
      const row = node.rows.get(key);
      expect(row, `${profile.name}: ${node.name} has a row for ${key}`).toBeDefined();
      const { stat, critical, unexpected } = chiSquare(countBy(group, (d) => d.values[node.name] ?? ''), row ?? new Map());
      expect(unexpected, `${profile.name}: ${node.name} | ${key} drew values of probability 0`).toEqual([]);
      expect(stat, `${profile.name}: ${node.name} | ${key.replaceAll('\u0000', ', ')}: chi-square ${stat.toFixed(1)} > ${critical.toFixed(1)}`).toBeLessThan(critical);
      tested += 1;
    }
  }
  return tested;
}

describe('sampler profiles', () => {
  it('ship a global profile and at least one country, each loading clean', () => {
    expect(listProfiles()).toEqual(expect.arrayContaining(['global', 'nigeria']));
    for (const name of listProfiles()) expect(loadProfile(name).name).toBe(name);
  });

  it('is reproducible per (seed id, index) and varies across them', () => {
    const sampler = createSampler(loadProfile('global'));
    expect(samplePersona(sampler, 'seed-1', 0)).toEqual(samplePersona(sampler, 'seed-1', 0));
    const many = Array.from({ length: 300 }, (_, i) => samplePersona(sampler, `seed-${i}`, 0));
    expect(new Set(many.map((p) => p.attributes.occupation)).size).toBeGreaterThan(25);
    expect(new Set(many.map((p) => p.demographics.country)).size).toBe(12);
  });

  for (const name of ['global', 'nigeria']) {
    it(`${name}: every categorical marginal fits the profile's exact marginal (chi-square, alpha 0.001, 100k draws)`, () => {
      const profile = loadProfile(name);
      const draws = drawMany(profile, '', DRAWS, `marginals-${name}`);
      for (const node of categorical(profile)) {
        const { stat, critical, unexpected } = chiSquare(countBy(draws, (d) => d.values[node.name] ?? ''), targetDistribution(profile, [node.name]));
        expect(unexpected, `${node.name} drew values of probability 0`).toEqual([]);
        expect(stat, `${name}: ${node.name}: chi-square ${stat.toFixed(1)} > ${critical.toFixed(1)}`).toBeLessThan(critical);
      }
      for (const d of profile.derived.filter((x) => !x.list)) {
        const { stat, critical } = chiSquare(countBy(draws, (x) => (x.derived[d.name] ?? []).join(', ')), targetDistribution(profile, [d.name]));
        expect(stat, `${name}: ${d.name}`).toBeLessThan(critical);
      }
      // Ages are whole years, uniform within the band drawn.
      const outside = draws.filter((draw) => {
        const [lo = 0, hi = 0] = (draw.values[profile.ageNode] ?? '').split('-').map(Number);
        return !Number.isInteger(draw.age) || draw.age < lo || draw.age > hi;
      });
      expect(outside).toEqual([]);
      const rows = checkConditionals(profile, draws, categorical(profile));
      console.log(`${name}: ${categorical(profile).length} marginals and ${rows} conditional rows fit at alpha 0.001 on ${DRAWS} draws`);
      expect(rows).toBeGreaterThan(20);
    });
  }

  it('never draws a contradictory trait pair, and three distinct traits each time', () => {
    const profile = loadProfile('global');
    const trait = profile.nodes.find((n) => n.name === 'trait');
    if (trait?.kind !== 'set') throw new Error('global has no trait set');
    expect(trait.exclusive).toContainEqual(['patient', 'impatient']);
    for (const where of ['', 'trait=patient', 'trait=calm,trait!=warm']) {
      const wrong = drawMany(profile, where, 20_000, `traits-${where}`).map((d) => d.sets.trait ?? [])
        .filter((traits) => new Set(traits).size !== 3 || trait.exclusive.some(([a, b]) => traits.includes(a) && traits.includes(b)));
      expect(wrong, `under "${where}"`).toEqual([]);
    }
  });

  it('a targeted filter yields only matching personas, with the conditional distribution of the rest intact', () => {
    const profile = loadProfile('global');
    const where = 'educationLevel=tertiary,age>=30,country=Nigeria';
    const clauses = parseWhere(where);
    const sampler = createSampler(profile, clauses);
    const random = rng('targeted');
    const draws = Array.from({ length: 50_000 }, () => sampler.draw(random));
    const personas = Array.from({ length: 2000 }, (_, i) => samplePersona(sampler, `job-${i}`, 0));
    expect(personas.filter((p) => !matches(personaFilterAttributes({ ...p.attributes, demographics: p.demographics }), clauses))).toEqual([]);
    expect(draws.filter((d) => d.values.educationLevel !== 'tertiary' || d.values.country !== 'Nigeria' || d.age < 30)).toEqual([]);
    // The constrained attributes shift the others exactly as Bayes says: age bands follow the posterior...
    const posterior = targetDistribution(profile, ['ageBand'], clauses);
    expect(posterior.get('18-24') ?? 0).toBe(0);
    const fit = chiSquare(countBy(draws, (d) => d.values.ageBand ?? ''), posterior);
    expect(fit.stat).toBeLessThan(fit.critical);
    // ...and every table below them is untouched (sex given age, household given marital status and age, the occupation given education...).
    expect(checkConditionals(profile, draws, categorical(profile).filter((n) => !['educationLevel', 'country'].includes(n.name)))).toBeGreaterThan(8);
  });

  it('conditions on a later node by construction: a nurse filter moves education and age the way the tables imply', () => {
    const profile = loadProfile('nigeria');
    const clauses = parseWhere('occupation=nurse');
    const education = targetDistribution(profile, ['educationLevel'], clauses);
    // Nurses are professionals: 40% of employed graduates, 3% of employed secondary leavers, none below.
    expect(education.get('primary') ?? 0).toBe(0);
    expect(education.get('tertiary') ?? 0).toBeGreaterThan(0.8);
    const draws = drawMany(profile, 'occupation=nurse', 20_000, 'nurses');
    const fit = chiSquare(countBy(draws, (d) => d.values.educationLevel ?? ''), education);
    expect(fit.stat).toBeLessThan(fit.critical);
    expect(new Set(draws.map((d) => d.values.occupation))).toEqual(new Set(['nurse']));
  });

  it('refuses a filter no persona can match, before drawing anything', () => {
    const profile = loadProfile('global');
    const refused = (where: string) => () => createSampler(profile, parseWhere(where));
    expect(refused('occupation=nurse,educationLevel=primary')).toThrow(UnsatisfiableFilterError);
    expect(refused('occupation=astronaut')).toThrow('occupation=astronaut');
    expect(refused('age>=95')).toThrow(UnsatisfiableFilterError);
    expect(refused('trait=patient,trait=impatient')).toThrow('never go together');
    expect(refused('hobby=skydiving')).toThrow('not in the profile');
    expect(refused('country=Nigeria,region=Texas')).toThrow(UnsatisfiableFilterError);
    expect(createSampler(profile, parseWhere('region=Texas')).draw(rng('t')).values.city).toBe('Houston');
  });

  it('builds a sampler once per (profile, filter) and keeps at most 64 filters', () => {
    const first = samplerFor('global', 'age>=20');
    expect(samplerFor('global', 'age>=20')).toBe(first);
    for (let i = 0; i < 64; i += 1) samplerFor('global', `age>=${21 + i}`);
    expect(samplerFor('global', 'age>=20')).not.toBe(first);
  });

  it('the chi-square test refuses draws that do not follow the target', () => {
    const profile = loadProfile('global');
    const draws = drawMany(profile, '', 20_000, 'power');
    const sex = categorical(profile).find((n) => n.name === 'sex') as CategoricalNode;
    // The young adults' sex counts against the oldest band's row (41% men instead of 51%).
    const young = draws.filter((d) => d.values.ageBand === '18-24');
    const fit = chiSquare(countBy(young, (d) => d.values.sex ?? ''), sex.rows.get('75-89') ?? new Map());
    expect(fit.stat).toBeGreaterThan(fit.critical);
  });
});

describe('profile checks', () => {
  interface Doc { nodes: Record<string, unknown>[]; [key: string]: unknown }
  const valid: Doc = {
    name: 'tiny', version: '1', description: 'A test profile.', ageNode: 'ageBand', sources: { s: 'a source' }, names: { source: 's', byBackground: {} },
    nodes: [
      { name: 'ageBand', source: 's', distribution: { '18-40': 0.5, '41-80': 0.5 } },
      { name: 'sex', source: 's', given: ['ageBand'], table: { '18-40': { male: 0.5, female: 0.5 }, '41-80': { male: 0.4, female: 0.6 } } },
    ],
  };
  const broken = (edit: (doc: Doc) => void): ProfileError => {
    const doc = structuredClone(valid);
    edit(doc);
    try {
      checkProfile(doc, 'tiny.yaml');
    } catch (error) {
      if (error instanceof ProfileError) return error;
      throw error;
    }
    throw new Error('the profile passed');
  };

  it('names the file and the path of what is wrong', () => {
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], table: { '18-40': { male: 0.5, female: 0.4 }, '41-80': { male: 0.4, female: 0.6 } } }; }).message)
      .toBe('tiny.yaml: $.nodes[1].table["18-40"]: probabilities sum to 0.9000, not 1 (tolerance 0.002)');
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], table: { '18-40': { male: 0.5, female: 0.5 } } }; }).message)
      .toBe('tiny.yaml: $.nodes[1].table: does not cover ageBand = 41-80');
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], table: { '18-40, 41-80': { male: 0.5, female: 0.5 }, '41-80': { male: 1 } } }; }).message)
      .toBe('tiny.yaml: $.nodes[1].table["41-80"]: ageBand=41-80 is covered twice');
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], table: { '18-40': { male: 1 }, '41-80': { male: 1 }, '81-99': { male: 1 } } }; }).message)
      .toContain('$.nodes[1].table["81-99"]: "81-99" is not a value of ageBand');
    expect(broken((d) => { d.colour = 'red'; }).message).toContain('tiny.yaml: $.colour: unknown key');
    expect(broken((d) => { d.nodes[0] = { ...d.nodes[0], weight: 2 }; }).message).toContain('$.nodes[0].weight: unknown key');
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], given: ['mood'] }; }).message).toContain('$.nodes[1].given[0]: "mood" is not an earlier node');
    expect(broken((d) => { d.nodes[1] = { ...d.nodes[1], source: 'census' }; }).message).toContain('$.nodes[1].source: "census" is not in $.sources');
    expect(broken((d) => { d.nodes[0] = { ...d.nodes[0], distribution: { '18-40': 1.5, '41-80': -0.5 } }; }).message).toContain('$.nodes[0].distribution.18-40: probability must be a number in [0, 1]');
    // Complete but for what every persona needs.
    expect(broken(() => undefined).message).toContain('tiny.yaml: $.nodes: a persona needs maritalStatus');
  });

  it('reports a YAML syntax error and an unknown profile with their own codes', () => {
    expect(() => parseProfile('name: [unclosed', 'bad.yaml')).toThrow(/^bad\.yaml: not valid YAML/);
    try {
      loadProfile('atlantis');
      throw new Error('loaded');
    } catch (error) {
      expect(error).toBeInstanceOf(ProfileError);
      expect((error as ProfileError).code).toBe('PH_PROFILE_NOT_FOUND');
      expect((error as ProfileError).message).toContain('present: global, nigeria');
    }
  });
});
