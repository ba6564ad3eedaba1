import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PipelineMetrics } from '../../../runtime/metrics.ts';

describe('processor metrics endpoint', () => {
  it('serves Prometheus metrics with the personahub_ prefix, health by state, 404 otherwise', async () => {
    const metrics = new PipelineMetrics();
    metrics.consumed.inc({ stage: 'draft', topic: 'personahub.seed.v1' }, 3);
    metrics.onLlmCall({ kind: 'chat', model: 'gemma', status: 'ok', durationMs: 1200, promptTokens: 100, completionTokens: 40 });
    let live = { ok: true, reasons: [] as string[] };
    let ready = { ok: false, reasons: ['draft: joining the consumer group'] };
    const server = metrics.serve(0, { live: () => live, ready: () => ready });
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const res = await fetch(`${base}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toContain('personahub_events_consumed_total{stage="draft",topic="personahub.seed.v1"} 3');
      expect(text).toContain('personahub_llm_tokens_total{model="gemma",direction="completion"} 40');
      expect(text).toMatch(/personahub_llm_request_duration_seconds_bucket\{le="2.5",kind="chat",model="gemma"\} 1/);
      expect(text).toContain('personahub_process_resident_memory_bytes');
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
      const notReady = await fetch(`${base}/health/ready`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ status: 'failing', reasons: ['draft: joining the consumer group'] });
      ready = { ok: true, reasons: [] };
      expect((await fetch(`${base}/health/ready?verbose=1`)).status).toBe(200);
      live = { ok: false, reasons: ['draft: consumer crashed: KafkaJSNonRetriableError'] };
      expect((await fetch(`${base}/health`)).status).toBe(503);
      expect((await fetch(`${base}/health/live`)).status).toBe(503);
      expect((await fetch(`${base}/other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
