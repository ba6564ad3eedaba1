/**
 * Prometheus metrics of the model server, on a registry of its own (prefix `personahub_llm_`), so
 * that the server can run inside another PersonaHub process without the two colliding.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface LlmServerMetrics {
  registry: Registry;
  /** Requests waiting for their turn, per queue. */
  queueDepth: Gauge<'queue'>;
  /** Requests being computed (0 or 1 per queue). */
  queueRunning: Gauge<'queue'>;
  requests: Counter<'route' | 'status'>;
  requestDuration: Histogram<'route'>;
  promptTokens: Counter<'model'>;
  tokensGenerated: Counter<'model'>;
  /** Decode speed of one generation: tokens after the first, over the time after the first. */
  tokensPerSecond: Histogram<'model'>;
  timeToFirstToken: Histogram<'model'>;
  embeddingInputs: Counter<'model'>;
  modelInfo: Gauge<'model' | 'kind' | 'chat_template'>;
}

export const METRIC_PREFIX = 'personahub_llm_';

export function createLlmServerMetrics(): LlmServerMetrics {
  const registry = new Registry();
  // Process RSS, CPU and event-loop lag: the figures that say whether the queue bound is right.
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  return {
    registry,
    queueDepth: new Gauge({ name: `${METRIC_PREFIX}queue_depth`, help: 'Requests waiting in the queue', labelNames: ['queue'], registers }),
    queueRunning: new Gauge({ name: `${METRIC_PREFIX}queue_running`, help: 'Requests being computed', labelNames: ['queue'], registers }),
    requests: new Counter({ name: `${METRIC_PREFIX}requests_total`, help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers }),
    requestDuration: new Histogram({
      name: `${METRIC_PREFIX}request_duration_seconds`,
      help: 'HTTP request latency, queue wait included',
      labelNames: ['route'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    promptTokens: new Counter({ name: `${METRIC_PREFIX}prompt_tokens_total`, help: 'Prompt tokens of generation requests', labelNames: ['model'], registers }),
    tokensGenerated: new Counter({ name: `${METRIC_PREFIX}tokens_generated_total`, help: 'Tokens generated', labelNames: ['model'], registers }),
    tokensPerSecond: new Histogram({
      name: `${METRIC_PREFIX}generation_tokens_per_second`,
      help: 'Decode speed per generation (tokens after the first, per second after the first)',
      labelNames: ['model'],
      buckets: [1, 2, 5, 10, 20, 30, 50, 75, 100, 200, 500],
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: `${METRIC_PREFIX}time_to_first_token_seconds`,
      help: 'Prompt evaluation time up to the first generated token (cached prefixes make it short)',
      labelNames: ['model'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    embeddingInputs: new Counter({ name: `${METRIC_PREFIX}embedding_inputs_total`, help: 'Texts embedded', labelNames: ['model'], registers }),
    modelInfo: new Gauge({ name: `${METRIC_PREFIX}model_info`, help: 'Models served (value 1)', labelNames: ['model', 'kind', 'chat_template'], registers }),
  };
}
