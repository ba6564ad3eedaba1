import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The HTTP API's metrics (prom-client stays in runtime/): requests by route pattern (never the raw URL,
 * whose ids would make one series per persona), method and status, and their latency.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'personahub_api_requests_total', help: 'HTTP API requests answered', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'personahub_api_request_duration_seconds', help: 'HTTP API request latency', labelNames: ['method', 'route'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'personahub_api_' });
  }

  observe(e: { method: string; route: string; status: number; seconds: number }): void {
    this.requests.inc({ method: e.method, route: e.route, status: String(e.status) });
    this.duration.observe({ method: e.method, route: e.route }, e.seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
