import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/logger.ts';
import { DEFAULT_GENERATION_TEXT, generationSeeds } from '../persona/generate.ts';
import { parseSeedLines, type IngestRejection } from '../persona/seeds.ts';
import type { PipelineObserver } from '../runtime/observer.ts';
import type { Seed } from '../schemas/types.generated.ts';
import type { CorpusStore, JobRecord } from '../store/query.ts';
import { descendsFrom, seedDescendsFrom } from '../topology/index.ts';
import { ApiError } from './errors.ts';

/** Sends seeds to the seed topic (runtime/source.ts's EventSource in production). */
export type SeedSink = (seeds: readonly Seed[]) => Promise<void>;

/** What the API reads of the pipeline: the observer's per-hop accounting, what it has seen, and since when. */
export type PipelineProgress = Pick<PipelineObserver, 'accounting' | 'seen' | 'since' | 'latticeSettled'>;

export interface JobView extends JobRecord {
  duplicates?: number;
  refused?: IngestRejection[];
  progress?: {
    stages: { hop: string; in: number; out: number; pending: number }[];
    indexed: number;
    rejected: number;
    deadLettered: number;
    settled: boolean;
  };
}

/**
 * Generation jobs: seed texts become seed events sent in batches, the job recorded in the store with how
 * many were sent. Cancelling stops what is not sent yet, between two batches, and marks the job
 * cancelled; seeds already on the topic are in the pipeline and run to the end (a Kafka record cannot be
 * taken back), which the job's progress keeps showing.
 */
export class Jobs {
  /** Jobs this process is still sending, so a cancel reaches the loop before its next batch. */
  private readonly sending = new Map<string, { cancelled: boolean; done: Promise<void> }>();

  constructor(private readonly o: {
    corpus: CorpusStore;
    sink: SeedSink;
    progress: PipelineProgress | undefined;
    logger: Logger;
    maxSeedChars: number;
    /** The profile a sampled-attributes job draws from when it names none (PERSONAHUB_PROFILE). */
    defaultProfile: string;
    /** Seeds per send: the grain at which a cancel takes effect. */
    batchSize: number;
  }) {}

  async submit(input: { lines: readonly string[]; format: 'jsonl' | 'text'; source: string }): Promise<JobView> {
    const parsed = parseSeedLines(input.lines, { source: input.source, format: input.format, maxChars: this.o.maxSeedChars, now: Date.now() });
    if (parsed.seeds.length === 0) {
      const why = parsed.rejected.slice(0, 3).map((r) => `line ${r.line}: ${r.reason} (${r.detail})`).join('; ');
      throw new ApiError(400, 'PH_API_NO_SEEDS', `no usable seed text in the request${why ? `: ${why}` : ''}`);
    }
    return { ...(await this.start(randomUUID(), parsed.seeds)), duplicates: parsed.duplicates, refused: parsed.rejected };
  }

  /**
   * A sampled-attributes job (persona/generate.ts, as `personahub generate`): `count` seeds whose personas the
   * draft stage draws from the profile conditioned on the filter. An unknown profile or a filter the profile
   * cannot meet is refused here, before anything is sent.
   */
  async submitSample(input: { count: number; profile?: string; where?: string; text?: string }): Promise<JobView> {
    const id = randomUUID();
    const job = { count: input.count, profile: input.profile ?? this.o.defaultProfile, where: input.where ?? '', text: input.text ?? DEFAULT_GENERATION_TEXT, jobId: id };
    return this.start(id, generationSeeds(job, Date.now()));
  }

  private async start(id: string, seeds: readonly Seed[]): Promise<JobView> {
    const job = await this.o.corpus.insertJob(id, seeds.map((s) => s.id));
    const state = { cancelled: false, done: Promise.resolve() };
    state.done = this.send(id, seeds, state);
    this.sending.set(id, state);
    return job;
  }

  private async send(id: string, seeds: readonly Seed[], state: { cancelled: boolean }): Promise<void> {
    // Yield first: the request that submitted the job is answered before the first batch goes out.
    await Promise.resolve();
    try {
      let sent = 0;
      for (let i = 0; i < seeds.length; i += this.o.batchSize) {
        if (state.cancelled) return;
        const batch = seeds.slice(i, i + this.o.batchSize);
        await this.o.sink(batch);
        sent += batch.length;
        // The record says whether another API instance cancelled the job meanwhile.
        const recorded = await this.o.corpus.updateJob(id, { sent });
        if (recorded?.status === 'cancelled') return;
      }
      await this.o.corpus.updateJob(id, { status: 'sent' });
    } catch (error) {
      this.o.logger.error({ err: error, job: id }, 'job failed while sending seeds');
      await this.o.corpus.updateJob(id, { status: 'failed', error: (error as Error).message }).catch(() => {});
    } finally {
      this.sending.delete(id);
    }
  }

  async get(id: string): Promise<JobView> {
    const job = await this.o.corpus.job(id);
    if (!job) throw new ApiError(404, 'PH_API_JOB_NOT_FOUND', `no job ${id}`);
    return this.o.progress ? { ...job, progress: await progressOf(this.o.progress, job) } : job;
  }

  /** Stops sending and marks the job cancelled; a job already sent whole cannot be cancelled (409). */
  async cancel(id: string): Promise<JobView> {
    const job = await this.o.corpus.job(id);
    if (!job) throw new ApiError(404, 'PH_API_JOB_NOT_FOUND', `no job ${id}`);
    if (job.status === 'sent') throw new ApiError(409, 'PH_API_JOB_SENT', `job ${id} is sent whole: its seeds are in the pipeline and cannot be called back`);
    const state = this.sending.get(id);
    if (state) state.cancelled = true;
    await this.o.corpus.updateJob(id, { status: 'cancelled' });
    // The batch in flight when the cancel came finishes, and its count is recorded before the answer.
    await state?.done;
    return this.get(id);
  }

  /** Waits for every job this process is sending (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all([...this.sending.values()].map((s) => s.done));
  }
}

/**
 * A job's personas are those whose lineage roots in its seeds (topology's descendsFrom): drafted from one, or
 * derived in a lattice rooted in one. The per-hop counts and the totals read the same set, so they agree.
 */
async function progressOf(observer: PipelineProgress, job: JobRecord): Promise<NonNullable<JobView['progress']>> {
  const seedIds = new Set(job.seedIds.slice(0, job.sent));
  const stages = observer.accounting(seedIds).map((h) => ({ hop: h.hop, in: h.in, out: h.out, pending: h.pending.length }));
  // Indexed and rejected records carry no lineage: they are the job's when their persona's draft is.
  const personaIds = new Set([...observer.seen.draft].filter(([, p]) => descendsFrom(seedIds, p)).map(([id]) => id));
  const jobSeeds = new Set([...observer.seen.seed].filter(([id, s]) => seedDescendsFrom(seedIds, id, s)).map(([id]) => id));
  const ofJob = (m: ReadonlyMap<string, unknown>): number => [...m.keys()].filter((k) => personaIds.has(k)).length;
  const deadLettered = [...observer.seen.dlq.keys()].filter((k) => jobSeeds.has(k) || seedIds.has(k) || personaIds.has(k)).length;
  const seedsSeen = [...seedIds].every((s) => observer.seen.seed.has(s));
  return {
    stages,
    indexed: ofJob(observer.seen.indexed),
    rejected: ofJob(observer.seen.rejected),
    deadLettered,
    // A cancelled or failed job settles on what it did send; with a lattice, once it has stopped growing.
    settled: job.status !== 'sending' && seedsSeen && stages.every((s) => s.pending === 0) && (await observer.latticeSettled(seedIds)),
  };
}
