import type { Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import { buildApp, type App } from '../api/app.ts';
import { createApiKey, type Scope } from '../api/auth.ts';
import { apiDeps } from '../api/deps.ts';
import { PipelineObserver } from '../runtime/observer.ts';
import { EventSource } from '../runtime/source.ts';
import { openStore } from '../store/open.ts';
import { buildEmbedder, buildKafkaClients, buildLlm, latticeWatch } from './wiring.ts';

/** How far back the API's observer reads for job progress: jobs older than this show no per-hop counts after a restart. */
const JOB_PROGRESS_WINDOW_MS = 24 * 60 * 60 * 1000;

/**
 * `personahub serve`: the HTTP API over the configured store, sending jobs' seeds through an EventSource
 * and reading their progress off the topics with a PipelineObserver. Returns the listening app and how to
 * close everything it opened.
 */
export async function serveApi(config: Config, logger: Logger): Promise<{ app: App; close(): Promise<void> }> {
  const { kafka, serde } = buildKafkaClients(config, logger, 'personahub-api');
  const store = await openStore(config);
  await store.migrate();
  const llm = buildLlm(config, logger);
  const embedder = buildEmbedder(config, llm);
  const source = await EventSource.open(kafka, serde, config.topicPrefix);
  // The observer reads every topic; the time filter keeps in memory only what recent jobs can have caused.
  const observer = new PipelineObserver(kafka, serde, config.topicPrefix, (await store.corpus.oldestRecentJob(JOB_PROGRESS_WINDOW_MS)) ?? Date.now(), latticeWatch(config, store));
  await observer.start();
  const deps = apiDeps({
    config, corpus: store.corpus, store, logger,
    shared: { config, logger, llm: config.mode === 'llm' ? llm : undefined, embedder, now: () => Date.now() },
    sink: (seeds) => source.send(seeds.map((s) => ({ event: 'seed' as const, key: s.id, value: s }))),
    resubmit: (personas) => source.send(personas.map((p) => ({ event: 'draft' as const, key: p.id, value: p }))),
    remove: (id) => source.sendTombstone('validated', id),
    progress: observer,
  });
  const app = await buildApp(deps);
  await app.listen({ host: config.apiHost, port: config.apiPort });
  logger.info({ host: config.apiHost, port: config.apiPort }, 'HTTP API listening');
  return {
    app,
    async close() {
      await app.close();
      // Jobs still sending finish (within the shutdown deadline) before the producer closes under them.
      await deps.jobs.drain();
      await observer.stop();
      await source.close();
      await llm?.close();
      await store.close();
    },
  };
}

/** `personahub api-key create`: the key is printed once; only its hash is stored. */
export async function createKey(config: Config, scope: Scope, label: string): Promise<{ id: string; key: string; scope: Scope }> {
  const store = await openStore(config);
  try {
    await store.migrate();
    return await createApiKey(store.corpus, scope, label);
  } finally {
    await store.close();
  }
}
