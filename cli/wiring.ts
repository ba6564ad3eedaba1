import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keys, localKafkaNodes, type Config } from '../config/index.ts';
import { processors } from '../processors/registry.ts';
import { hashEmbedder, llmEmbedder, type Embedder } from '../llm/embedder.ts';
import { createKafka, kafkaPort } from '../runtime/kafka.ts';
import { createLlmClient, type LlmClient, type LlmClientOptions } from '../llm/client.ts';
import type { Logger } from '../core/logger.ts';
import { PipelineMetrics } from '../runtime/metrics.ts';
import type { SharedContext } from '../runtime/processor.ts';
import type { LatticeWatch } from '../runtime/observer.ts';
import { timedStore } from '../runtime/timed-store.ts';
import { StageRunner } from '../runtime/runner.ts';
import { Serde } from '../runtime/serde.ts';
import type { StackOptions } from '../stack/types.ts';
import type { FetchModelsOptions } from '../models/weights/fetch.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/index.ts';
import { checkTopology, stage, type StageName } from '../topology/index.ts';
import { PersonaHubError } from '../core/errors.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The endpoint the pipeline talks to: the configured one, or the local model server. */
export function llmBaseUrl(config: Config): string {
  return config.llmBaseUrl || `http://127.0.0.1:${config.llmPort}/v1`;
}

/** Whether anything calls the endpoint: the drafts (mode llm), the embeddings (embedder llm) or the LLM judge. */
function usesLlmEndpoint(config: Config): boolean {
  return config.mode === 'llm' || config.embedder === 'llm' || config.llmJudge === 'on';
}

/** Whether `stack up` should run the local model server (the endpoint is used and none is configured). */
export function needsLocalLlm(config: Config): boolean {
  return config.startLocalLlm && config.llmBaseUrl === '' && usesLlmEndpoint(config);
}

/**
 * What `models fetch` assembles for this configuration: the local text model (`PERSONAHUB_LOCAL_LLM`), unless a GGUF
 * of one's own replaces it (`PERSONAHUB_LLM_MODEL_PATH`), and the embedding model.
 */
export function modelFetchOptions(config: Config, logger: Logger): FetchModelsOptions {
  return { modelsDir: config.modelsDir, cacheDir: config.cacheDir, llm: config.llmModelPath === '' ? config.localLlm : null, logger };
}

export function stackOptions(config: Config, logger: Logger): StackOptions {
  const kafkaNodes = localKafkaNodes(config);
  return {
    home: config.home,
    cacheDir: config.cacheDir,
    kafka: { port: config.kafkaPort, controllerPort: config.kafkaControllerPort, ...(kafkaNodes.length > 1 ? { nodes: kafkaNodes } : {}) },
    registry: { port: config.registryPort, managementPort: config.registryManagementPort },
    postgres: { port: config.postgresPort, user: config.postgresUser, password: config.postgresPassword, database: config.postgresDatabase },
    readyTimeoutMs: 180_000,
    logger,
    portSettings: [
      { port: config.kafkaPort, setting: keys.kafkaPort.env },
      { port: config.kafkaControllerPort, setting: keys.kafkaControllerPort.env },
      // Nodes after the first take the next ports two by two: the setting to change is still the first node's.
      ...kafkaNodes.slice(1).flatMap((n) => [
        { port: n.port, setting: `${keys.kafkaPort.env} (node ${n.nodeId} listens on it + ${n.port - config.kafkaPort})` },
        { port: n.controllerPort, setting: `${keys.kafkaControllerPort.env} (node ${n.nodeId}'s controller listens on it + ${n.controllerPort - config.kafkaControllerPort})` },
      ]),
      { port: config.registryPort, setting: keys.registryPort.env },
      { port: config.registryManagementPort, setting: keys.registryManagementPort.env },
      { port: config.postgresPort, setting: keys.postgresPort.env },
      // Only when its server runs: otherwise a clash on the same number would name a setting that is not in play.
      ...(needsLocalLlm(config) ? [{ port: config.llmPort, setting: keys.llmPort.env }] : []),
    ],
    extraServices: needsLocalLlm(config) ? [{
      name: 'llm',
      async install() {
        const { fetchModels } = await import('../models/weights/fetch.ts');
        await fetchModels(modelFetchOptions(config, logger));
      },
      // The server runs from this checkout with the same Node and config; tsx compiles on the fly.
      command: process.execPath,
      args: ['--import', 'tsx', join(repoRoot, 'cli', 'main.ts'), 'llm', 'serve'],
      cwd: repoRoot,
      // Ready once it serves the configured model under the configured name: a server left running with another
      // model (PERSONAHUB_LOCAL_LLM changed since it started) is not taken for this one; `stack down` stops it.
      ready: { http: `http://127.0.0.1:${config.llmPort}/v1/models/${encodeURIComponent(config.llmModel)}` },
    }] : [],
  };
}

export interface Pipeline {
  ctx: SharedContext;
  serde: Serde;
  metrics: PipelineMetrics;
  kafka: KafkaClient;
  close(): Promise<void>;
}

type KafkaClient = ReturnType<typeof createKafka>;

/** Kafka and the registry only: enough for sources and admin (ingest, topics init), which need no store or model. */
export function buildKafkaClients(config: Config, logger: Logger, clientId: string): { kafka: KafkaClient; serde: Serde } {
  const problems = checkTopology();
  if (problems.length > 0) throw new PersonaHubError('PH_TOPOLOGY_INVALID', problems.join('; '));
  return { kafka: createKafka(config, clientId, logger), serde: new Serde(config.registryUrl, config.topicPrefix, config) };
}

export function buildLlm(config: Config, logger: Logger, onCall?: LlmClientOptions['onCall']): LlmClient | undefined {
  if (!usesLlmEndpoint(config)) return undefined;
  return createLlmClient({
    baseURL: llmBaseUrl(config), apiKey: config.llmApiKey, model: config.llmModel, embeddingModel: config.embeddingModel,
    timeoutMs: config.llmTimeoutMs, maxRetries: config.llmMaxRetries, concurrency: config.llmConcurrency,
    tokensPerMinute: config.llmTokensPerMinute, cacheDir: config.llmCacheDir || undefined, cacheMaxEntries: 10_000,
    logger: logger.child({ component: 'llm' }), ...(onCall ? { onCall } : {}),
  });
}

export function buildEmbedder(config: Config, llm: LlmClient | undefined): Embedder {
  return config.embedder === 'llm' && llm ? llmEmbedder(llm, config.embeddingModel) : hashEmbedder(config.embeddingDimensions);
}

/** Builds what the stages share: clients, store, metrics. Nothing here touches Kafka topics yet. */
export async function buildPipeline(config: Config, logger: Logger, clientId: string): Promise<Pipeline> {
  const { kafka, serde } = buildKafkaClients(config, logger, clientId);
  const metrics = new PipelineMetrics();
  const llm = buildLlm(config, logger, metrics.onLlmCall);
  const embedder = buildEmbedder(config, llm);
  const store = timedStore(await openStore(config), metrics);
  await store.migrate();
  const ctx: SharedContext = { config, logger, llm: config.mode === 'llm' || config.llmJudge === 'on' ? llm : undefined, embedder, store, now: () => Date.now() };
  return {
    ctx, serde, metrics, kafka,
    async close() {
      await llm?.close();
      await store.close();
    },
  };
}

/** What read-only commands (search, clusters, report) need: the store and the embedder, no Kafka, no registry. */
export interface ReadSide {
  store: Store;
  embedder: Embedder;
  close(): Promise<void>;
}

export async function openReadSide(config: Config, logger: Logger): Promise<ReadSide> {
  // Only the embeddings are asked of the endpoint here, so the client is built for them alone.
  const llm = config.embedder === 'llm' ? buildLlm(config, logger) : undefined;
  const store = await openStore(config);
  await store.migrate();
  return {
    store, embedder: buildEmbedder(config, llm),
    async close() {
      await llm?.close();
      await store.close();
    },
  };
}

/**
 * The one place a stage is paired with its processor, by name. Both come from tables keyed by stage
 * name (topology and registry), so for any N the compiler knows they agree; no cast is needed.
 */
export function createRunner<N extends StageName>(pipeline: Pipeline, name: N, logger: Logger): StageRunner<N> {
  return new StageRunner<N>({
    config: pipeline.ctx.config, spec: stage(name), processor: processors[name],
    kafka: kafkaPort(pipeline.kafka), serde: pipeline.serde, ctx: pipeline.ctx, metrics: pipeline.metrics, logger,
  });
}

/** What the observer needs to wait for a lattice to stop growing; none when expansion is off. */
export function latticeWatch(config: Pick<Config, 'latticeDepth'>, store: Pick<Store, 'expansionGrants'>): LatticeWatch | undefined {
  return config.latticeDepth > 0 ? { maxDepth: config.latticeDepth, grants: (ids) => store.expansionGrants(ids) } : undefined;
}
