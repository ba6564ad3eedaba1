import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../core/logger.ts';
import { createLlmClient } from '../../llm/client.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { Serde } from '../../runtime/serde.ts';
import { startSampleConsumer } from './consumer.ts';

/**
 * `node --import tsx examples/persona-samples/main.ts`: runs the sample service with the pipeline's own
 * settings (PERSONAHUB_KAFKA_BROKERS, PERSONAHUB_REGISTRY_URL, PERSONAHUB_TOPIC_PREFIX, the LLM endpoint
 * and model) until SIGTERM or SIGINT.
 */
const config = loadConfig();
const logger = createLogger({ level: config.logLevel, name: 'persona-samples' });
const llm = createLlmClient({
  baseURL: config.llmBaseUrl || `http://127.0.0.1:${config.llmPort}/v1`, apiKey: config.llmApiKey, model: config.llmModel, embeddingModel: config.embeddingModel,
  timeoutMs: config.llmTimeoutMs, maxRetries: config.llmMaxRetries, concurrency: config.llmConcurrency, tokensPerMinute: config.llmTokensPerMinute,
  cacheDir: config.llmCacheDir || undefined, cacheMaxEntries: 10_000, logger,
});
const kafka = createKafka(config, `${config.topicPrefix}.example.persona-samples`, logger);
const serde = new Serde(config.registryUrl, config.topicPrefix, config);
const running = await startSampleConsumer({ kafka, serde, registryUrl: config.registryUrl, prefix: config.topicPrefix, llm, logger });
logger.info('persona samples running');
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void running.stop().then(() => llm.close()).then(() => process.exit(0), (error: unknown) => {
      logger.error({ err: error }, 'stopping failed');
      process.exit(1);
    });
  });
}
