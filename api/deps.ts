import type { Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import { ApiMetrics } from '../runtime/api-metrics.ts';
import type { SharedContext } from '../runtime/processor.ts';
import type { Persona } from '../schemas/types.generated.ts';
import type { Store } from '../store/index.ts';
import type { CorpusStore } from '../store/query.ts';
import type { ApiDeps } from './app.ts';
import { Jobs, type PipelineProgress, type SeedSink } from './jobs.ts';
import { preview } from './preview.ts';

/** Seeds per send of a job: small enough that a cancel stops most of a large job, large enough to batch. */
export const JOB_BATCH = 100;

export interface ApiParts {
  config: Pick<Config, 'maxSeedChars' | 'apiBodyLimit' | 'apiRateLimit' | 'profile'>;
  corpus: CorpusStore;
  store: Pick<Store, 'readPersona' | 'neighbours'>;
  resubmit(personas: readonly Persona[]): Promise<void>;
  remove(id: string): Promise<void>;
  /** The stages' context without a store: the preview runs the processors with it. */
  shared: Omit<SharedContext, 'store'>;
  sink: SeedSink;
  progress: PipelineProgress | undefined;
  logger: Logger;
  jobBatchSize?: number;
}

/** The API's dependencies from the clients `personahub serve` (or a test) opened. */
export function apiDeps(p: ApiParts): ApiDeps {
  return {
    corpus: p.corpus,
    store: p.store,
    resubmit: p.resubmit,
    remove: p.remove,
    embedder: p.shared.embedder,
    jobs: new Jobs({ corpus: p.corpus, sink: p.sink, progress: p.progress, logger: p.logger, maxSeedChars: p.config.maxSeedChars, defaultProfile: p.config.profile, batchSize: p.jobBatchSize ?? JOB_BATCH }),
    progress: p.progress,
    defaultProfile: p.config.profile,
    preview: (texts) => preview(p.shared, texts),
    metrics: new ApiMetrics(),
    logger: p.logger,
    async ready() {
      try {
        await p.corpus.ping();
        return { ok: true, reasons: [] };
      } catch (error) {
        return { ok: false, reasons: [`store: ${(error as Error).message}`] };
      }
    },
    limits: { bodyLimit: p.config.apiBodyLimit, rateLimitPerMinute: p.config.apiRateLimit },
  };
}
