import { buildApp, type App } from '../../api/app.ts';
import { createApiKey } from '../../api/auth.ts';
import { apiDeps, type ApiParts } from '../../api/deps.ts';
import type { SqlStore } from '../../store/sql-store.ts';
import { EventSource } from '../../runtime/source.ts';
import { openStore } from '../../store/open.ts';
import type { TestPipeline } from './pipeline.ts';

export interface TestApi {
  app: App;
  store: SqlStore;
  keys: { read: string; write: string };
  /** Headers carrying a key of that scope. */
  auth(scope: 'read' | 'write'): { authorization: string };
  close(): Promise<void>;
}

/**
 * The HTTP API over a test pipeline's store and topics: jobs' seeds go to its seed topic, their progress
 * is read by its observer, the preview runs its stages' context. `overrides` change limits or the sink.
 */
export async function createTestApi(t: TestPipeline, overrides: Partial<Pick<ApiParts, 'sink' | 'jobBatchSize'>> & { bodyLimit?: number; rateLimit?: number } = {}): Promise<TestApi> {
  const store = await openStore(t.config);
  await store.migrate();
  const { store: _pipelineStore, ...shared } = t.pipeline.ctx;
  const source = await EventSource.open(t.pipeline.kafka, t.pipeline.serde, t.prefix);
  const app = await buildApp(apiDeps({
    config: { ...t.config, apiBodyLimit: overrides.bodyLimit ?? t.config.apiBodyLimit, apiRateLimit: overrides.rateLimit ?? 1_000_000 },
    corpus: store.corpus, store, shared, logger: t.pipeline.ctx.logger,
    sink: overrides.sink ?? ((seeds) => t.ingest([...seeds])),
    resubmit: (personas) => source.send(personas.map((p) => ({ event: 'draft' as const, key: p.id, value: p }))),
    remove: (id) => source.sendTombstone('validated', id),
    progress: t.observer,
    ...(overrides.jobBatchSize ? { jobBatchSize: overrides.jobBatchSize } : {}),
  }));
  const keys = { read: (await createApiKey(store.corpus, 'read', 'test')).key, write: (await createApiKey(store.corpus, 'write', 'test')).key };
  return {
    app, store, keys,
    auth: (scope) => ({ authorization: `Bearer ${keys[scope]}` }),
    async close() {
      await app.close();
      await source.close();
      await store.close();
    },
  };
}
