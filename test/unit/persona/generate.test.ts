import { describe, expect, it } from 'vitest';
import { matches, parseWhere } from '../../../persona/filter.ts';
import { generationSeeds } from '../../../persona/generate.ts';
import { loadProfile } from '../../../persona/profile.ts';
import { UnsatisfiableFilterError } from '../../../persona/sampler.ts';
import { personaFilterAttributes } from '../../../persona/persona-filter.ts';
import { draft } from '../../../processors/draft/index.ts';
import { fakeContext } from '../../helpers/context.ts';

const job = { profile: 'nigeria', where: 'occupation = nurse, age>=30', count: 40, text: 'A week of night shifts.', jobId: 'job-1' };

describe('generation jobs', () => {
  it('make the same seeds for the same job, each carrying the normalised target', () => {
    const seeds = generationSeeds(job, 7);
    expect(generationSeeds(job, 7)).toEqual(seeds);
    expect(new Set(seeds.map((s) => s.id)).size).toBe(40);
    expect(seeds[0]?.target).toEqual({ profile: 'nigeria', where: 'occupation=nurse,age>=30', jobId: 'job-1' });
    expect(generationSeeds({ ...job, jobId: 'job-2' }, 7)[0]?.id).not.toBe(seeds[0]?.id);
  });

  it('refuse a job no persona can satisfy before any seed is made', () => {
    expect(() => generationSeeds({ ...job, where: 'occupation=nurse,educationLevel=primary' }, 7)).toThrow(UnsatisfiableFilterError);
    expect(() => generationSeeds({ ...job, profile: 'atlantis' }, 7)).toThrow('no profile "atlantis"');
  });

  it('the draft stage drafts every job seed with matching attributes, a fitting name and the profile in provenance', async () => {
    const profile = loadProfile('nigeria');
    const clauses = parseWhere(job.where);
    // PERSONAHUB_PROFILE says global: the seed's own target wins.
    const ctx = fakeContext({ env: { PERSONAHUB_PROFILE: 'global', PERSONAHUB_PERSONAS_PER_SEED: '2' } });
    const personas = (await Promise.all(generationSeeds(job, 7).map((s) => draft.process(s, ctx)))).flat().map((o) => o.value);
    expect(personas).toHaveLength(80);
    for (const p of personas) {
      expect(matches(personaFilterAttributes(p), clauses)).toBe(true);
      expect(p.provenance).toMatchObject({ samplerProfile: 'nigeria', samplerProfileVersion: profile.version });
      const d = p.demographics;
      if (!d) throw new Error('no demographics');
      expect(p.locale).toBe(`${d.city}, ${d.country}`);
      const pool = profile.names.get(d.culturalBackground);
      const [given = '', ...rest] = p.name.split(' ');
      expect(d.sex === 'female' ? pool?.female : pool?.male).toContain(given);
      expect(pool?.surname).toContain(rest.join(' '));
    }
  });

  it('a seed without a target draws from PERSONAHUB_PROFILE, unconditioned', async () => {
    const [seed] = generationSeeds(job, 7);
    if (!seed) throw new Error('no seed');
    const out = await draft.process({ ...seed, target: null }, fakeContext({ env: { PERSONAHUB_PROFILE: 'global' } }));
    expect(out[0]?.value.provenance.samplerProfile).toBe('global');
  });
});
