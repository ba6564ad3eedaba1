import type { Seed } from '../schemas/types.generated.ts';
import { formatWhere, parseWhere } from './filter.ts';
import { seedId } from './ids.ts';
import { loadProfile } from './profile.ts';
import { samplerFor } from './sampler.ts';
import { hashId } from './text.ts';

/**
 * A generation job (`personahub generate`, and the API's generation jobs): N seeds whose personas the
 * draft stage draws from a named profile conditioned on a filter. The seed carries the target; the
 * draft stage does the sampling, so a job's personas are exactly what the stage would draw for them.
 */
export interface GenerationJob {
  profile: string;
  /** Filter in the filter language; empty draws from the whole profile. */
  where: string;
  count: number;
  /** The text every seed of the job carries: the persona's relation to it is written like any seed's. */
  text: string;
  /** Names the job; the same id, profile, filter and count always make the same seeds (and so the same personas). */
  jobId: string;
}

export const DEFAULT_GENERATION_TEXT = 'An ordinary week: work or study, family, neighbours, and the news everyone is talking about.';

/** A job id from what the job asks and when, for a caller that does not name one. */
export function newJobId(profile: string, where: string, count: number, now: number): string {
  return hashId('generate', profile, where, count, now).slice(0, 16);
}

/**
 * Checks the job (the profile loads and the filter can be met, so a bad job fails here and not in the
 * draft stage) and builds its seeds. The filter is stored normalised, so equal filters read alike.
 */
export function generationSeeds(job: GenerationJob, now: number): Seed[] {
  loadProfile(job.profile);
  const where = formatWhere(parseWhere(job.where));
  samplerFor(job.profile, where);
  const source = `generate:${job.jobId}`;
  return Array.from({ length: job.count }, (_, i) => ({
    id: seedId(`${job.text}\u0000${i}`, source),
    text: job.text,
    source,
    lineNumber: i + 1,
    depth: 0, parentPersonaId: null, rootSeedId: null, relationKind: null, parent: null,
    target: { profile: job.profile, where, jobId: job.jobId },
    createdAt: now,
  }));
}
