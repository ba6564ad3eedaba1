import { createServer, type Server } from 'node:http';
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

  /** /metrics for Prometheus and /health for the kubelet; nothing else is served from a processor. */
  serve(port: number, healthy: () => boolean): Server {
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        void this.registry.metrics().then((body) => {
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(body);
        });
      } else if (req.url === '/health') {
        const ok = healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: ok ? 'ok' : 'stopping' }));
      } else {
        res.writeHead(404).end();
      }
    });
    server.listen(port, '0.0.0.0');
    return server;
  }
}
