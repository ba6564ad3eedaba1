import { createServer, type Server, type ServerResponse } from 'node:http';

export interface Health {
  ok: boolean;
  reasons: string[];
}
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Metrics come from runner hooks, never from processor code. One registry per process, passed in,
 * names prefixed `personahub_`, labels stage and topic (DESIGN §5).
 */
export class PipelineMetrics {
  readonly registry = new Registry();
  readonly consumed = new Counter({ name: 'personahub_events_consumed_total', help: 'Events consumed', labelNames: ['stage', 'topic'], registers: [this.registry] });
  readonly produced = new Counter({ name: 'personahub_events_produced_total', help: 'Events produced', labelNames: ['stage', 'topic'], registers: [this.registry] });
  readonly failed = new Counter({ name: 'personahub_events_failed_total', help: 'Processing attempts that threw', labelNames: ['stage', 'code', 'transient'], registers: [this.registry] });
  readonly deadLettered = new Counter({ name: 'personahub_events_dead_lettered_total', help: 'Events sent to the DLQ', labelNames: ['stage', 'topic', 'code'], registers: [this.registry] });
  readonly rejected = new Counter({ name: 'personahub_validation_rejections_total', help: 'Personas rejected, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'personahub_processing_duration_seconds', help: 'Time in process() per event', labelNames: ['stage'], buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly lag = new Gauge({ name: 'personahub_consumer_lag', help: 'Records behind the partition\'s high watermark after the last committed chunk (what autoscaling on lag reads)', labelNames: ['stage', 'topic', 'partition'], registers: [this.registry] });
  readonly inFlight = new Gauge({ name: 'personahub_in_flight_events', help: 'Events being processed', labelNames: ['stage'], registers: [this.registry] });
  readonly llmRequests = new Counter({ name: 'personahub_llm_requests_total', help: 'LLM and embedding calls', labelNames: ['kind', 'model', 'status'], registers: [this.registry] });
  readonly llmLatency = new Histogram({ name: 'personahub_llm_request_duration_seconds', help: 'LLM call latency', labelNames: ['kind', 'model'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [this.registry] });
  readonly llmTokens = new Counter({ name: 'personahub_llm_tokens_total', help: 'Tokens used', labelNames: ['model', 'direction'], registers: [this.registry] });
  readonly retries = new Counter({ name: 'personahub_retries_total', help: 'Transient failures waited out, by stage and reason (step:code, e.g. process:PH_LLM_CONNECTION)', labelNames: ['stage', 'reason'], registers: [this.registry] });
  readonly breakerState = new Gauge({ name: 'personahub_breaker_state', help: 'Circuit breaker per stage and dependency: 0 closed, 1 half-open (probing), 2 open (stage paused)', labelNames: ['stage', 'dependency'], registers: [this.registry] });
  readonly pausedPartitions = new Gauge({ name: 'personahub_paused_partitions', help: 'Assigned partitions whose fetching is paused because a dependency is unavailable', labelNames: ['stage'], registers: [this.registry] });
  readonly consumerRestarts = new Counter({ name: 'personahub_consumer_restarts_total', help: 'Consumer crashes followed by a restart, whether kafkajs restarted it or the runner did', labelNames: ['stage'], registers: [this.registry] });
  readonly dlqReplayed = new Counter({ name: 'personahub_dlq_replayed_total', help: 'Inputs consumed that `personahub dlq replay` re-drove from the DLQ', labelNames: ['stage'], registers: [this.registry] });
  readonly skipped = new Counter({ name: 'personahub_inputs_skipped_total', help: 'Inputs not processed again because another delivery of the same input was (re-ingest, replay)', labelNames: ['stage', 'reason'], registers: [this.registry] });
  readonly storeWrite = new Histogram({ name: 'personahub_store_write_duration_seconds', help: 'Store upsert latency', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'personahub_' });
  }

  /** The hook the LLM client calls for every request. */
  onLlmCall = (e: { kind: string; model: string; status: string; durationMs: number; promptTokens?: number; completionTokens?: number }): void => {
    this.llmRequests.inc({ kind: e.kind, model: e.model, status: e.status });
    if (e.status !== 'cache_hit') this.llmLatency.observe({ kind: e.kind, model: e.model }, e.durationMs / 1000);
    if (e.promptTokens) this.llmTokens.inc({ model: e.model, direction: 'prompt' }, e.promptTokens);
    if (e.completionTokens) this.llmTokens.inc({ model: e.model, direction: 'completion' }, e.completionTokens);
  };

  /**
   * /metrics for Prometheus, and the kubelet's probes: /health/live (restart me: a consumer crashed or
   * stopped heartbeating) and /health/ready (do not count me: joining the group, or a dependency down).
   * /health stays as an alias of liveness. Each answers 200 or 503 with the reasons as JSON.
   */
  serve(port: number, health: { live: () => Health; ready: () => Health }): Server {
    const answer = (res: ServerResponse, h: Health): void => {
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: h.ok ? 'ok' : 'failing', reasons: h.reasons }));
    };
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/metrics') {
        void this.registry.metrics().then((body) => {
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(body);
        });
      } else if (path === '/health' || path === '/health/live') {
        answer(res, health.live());
      } else if (path === '/health/ready') {
        answer(res, health.ready());
      } else {
        res.writeHead(404).end();
      }
    });
    server.listen(port, '0.0.0.0');
    return server;
  }
}
