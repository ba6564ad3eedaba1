import { describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../core/errors.ts';
import { LlmError } from '../../../llm/errors.ts';
import { PipelineMetrics } from '../../../runtime/metrics.ts';
import type { Processor } from '../../../runtime/processor.ts';
import { DLQ_HEADERS, StageRunner } from '../../../runtime/runner.ts';
import type { Persona } from '../../../schemas/types.generated.ts';
import { stage } from '../../../topology/index.ts';
import { fakeContext, MemoryStore } from '../../helpers/context.ts';
import { FakeKafka, FakeSerde, message } from '../../helpers/fake-kafka.ts';
import { samplePersona } from '../../helpers/samples.ts';

const PREFIX = 'unit';
const ENRICHED = `${PREFIX}.enriched.v1`;
const DLQ = `${PREFIX}.dlq.v1`;

type Step = 'ok' | Error;

/**
 * A scripted enrich processor: each call takes the next step of the persona's script (an error to
 * throw, or 'ok' to emit the persona as enriched); a persona without a script always succeeds.
 */
function scripted(scripts: Map<string, Step[]>, calls: string[] = []): Processor<'enrich'> {
  return {
    stage: 'enrich',
    process: async (persona) => {
      calls.push(persona.id);
      const step = scripts.get(persona.id)?.shift() ?? 'ok';
      if (step !== 'ok') throw step;
      return [{ event: 'enriched', key: persona.id, value: persona }];
    },
  };
}

function setup(processor: Processor<'enrich'>, env: Record<string, string> = {}, store = new MemoryStore()) {
  const kafka = new FakeKafka();
  const serde = new FakeSerde();
  const metrics = new PipelineMetrics();
  let clock = 1_000_000;
  const slept: number[] = [];
  const ctx = fakeContext({ store, env: { PERSONAHUB_TOPIC_PREFIX: PREFIX, ...env } });
  const runner = new StageRunner<'enrich'>({
    config: ctx.config, spec: stage('enrich'), processor, kafka, serde, ctx, metrics, logger: ctx.logger,
    // A fake clock that sleeping advances: waits cost no real time, and no test depends on this machine's speed.
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
      // Yield to the event loop, as a real timer would, so the test can act between waits.
      await new Promise((r) => setImmediate(r));
    },
    now: () => clock,
    random: () => 0.5,
  });
  return { kafka, serde, metrics, runner, slept, store, advance: (ms: number) => { clock += ms; } };
}

const persona = (id: string): Persona => samplePersona({ id });

async function metricValue(metrics: PipelineMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('StageRunner', () => {
  it('commits a chunk\'s outputs and its input offset in one transaction', async () => {
    const { kafka, runner } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a')), message(1, persona('b'))]);
    expect(resolved).toEqual(['1']);
    const txns = kafka.producers.flatMap((p) => p.transactions);
    expect(txns).toHaveLength(1);
    expect(txns[0]?.state).toBe('committed');
    expect(txns[0]?.offsets).toEqual([{ partition: 0, offset: '2' }]);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a', 'b']);
    expect(kafka.producers[0]?.transactionalId).toBe(`${PREFIX}.enrich.${PREFIX}.draft.v1.0`);
  });

  it('waits out transient failures, however many, and never dead-letters them', async () => {
    const down = () => new LlmError('PH_LLM_CONNECTION', 'endpoint unreachable');
    const { kafka, runner, metrics, slept } = setup(scripted(new Map([['a', Array.from({ length: 12 }, down)]])));
    await runner.start();
    kafka.latestConsumer.join([0]);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
    expect(kafka.committed(DLQ)).toEqual([]);
    expect(await metricValue(metrics, 'personahub_retries_total', { stage: 'enrich', reason: 'process:PH_LLM_CONNECTION' })).toBe(12);
    // Backoff grows and is capped: no wait exceeds PERSONAHUB_RETRY_MAX_DELAY_MS.
    expect(Math.max(...slept)).toBeLessThanOrEqual(30_000);
    expect(slept.reduce((a, b) => a + b, 0)).toBeGreaterThan(10_000);
  });

  it('honours a Retry-After longer than the backoff, up to the configured ceiling', async () => {
    const limited = () => new LlmError('PH_LLM_RATE_LIMITED', '429', { retryAfterMs: 90_000 });
    const { kafka, runner, slept } = setup(scripted(new Map([['a', [limited()]]])), { PERSONAHUB_BREAKER_FAILURE_THRESHOLD: '100' });
    await runner.start();
    kafka.latestConsumer.join([0]);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    expect(slept.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(90_000);
    expect(kafka.committed(ENRICHED)).toHaveLength(1);
  });

  it('opens the dependency\'s breaker: pauses fetching, reports not ready, probes, then resumes', async () => {
    const down = () => new LlmError('PH_LLM_CONNECTION', 'endpoint unreachable');
    const readiness: boolean[] = [];
    const paused: boolean[] = [];
    const calls: string[] = [];
    let kafkaRef: FakeKafka | undefined;
    let runnerRef: StageRunner<'enrich'> | undefined;
    const processor = scripted(new Map([['a', [down(), down(), down(), down(), down()]]]), calls);
    const watching: Processor<'enrich'> = {
      stage: 'enrich',
      process: async (p, ctx) => {
        readiness.push(runnerRef?.ready().ok ?? false);
        paused.push(kafkaRef?.latestConsumer.paused ?? false);
        return processor.process(p, ctx);
      },
    };
    const { kafka, runner, metrics } = setup(watching, { PERSONAHUB_BREAKER_FAILURE_THRESHOLD: '3' });
    kafkaRef = kafka;
    runnerRef = runner;
    await runner.start();
    kafka.latestConsumer.join([0, 1]);
    expect(runner.ready().ok).toBe(true);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    // Three failures open the breaker; later attempts are probes of an open (not ready, paused) stage.
    expect(readiness).toEqual([true, true, true, false, false, false]);
    expect(paused).toEqual([false, false, false, true, true, true]);
    expect(calls).toHaveLength(6);
    expect(kafka.latestConsumer.paused).toBe(false);
    expect(runner.ready().ok).toBe(true);
    expect(await metricValue(metrics, 'personahub_breaker_state', { stage: 'enrich', dependency: 'llm' })).toBe(0);
  });

  it('dead-letters a permanent failure at once, with headers, counted when committed', async () => {
    const bad = new PersonaHubError('PH_ENRICH_BAD', 'cannot enrich this one');
    const { kafka, runner, metrics } = setup(scripted(new Map([['b', [bad]]])));
    await runner.start();
    kafka.latestConsumer.join([0]);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a')), message(1, persona('b')), message(2, 'not json at all')]);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
    const dead = kafka.committed(DLQ);
    expect(dead.map((d) => d.headers[DLQ_HEADERS.code])).toEqual(['PH_ENRICH_BAD', 'PH_SERDE_DECODE']);
    expect(dead[0]?.headers).toMatchObject({ [DLQ_HEADERS.stage]: 'enrich', [DLQ_HEADERS.offset]: '1', [DLQ_HEADERS.partition]: '0', [DLQ_HEADERS.attempts]: '1' });
    expect(await metricValue(metrics, 'personahub_events_dead_lettered_total', { stage: 'enrich', code: 'PH_ENRICH_BAD' })).toBe(1);
  });

  it('does not count dead letters whose transaction did not commit', async () => {
    const bad = new PersonaHubError('PH_ENRICH_BAD', 'cannot enrich this one');
    const { kafka, runner, metrics } = setup(scripted(new Map([['a', [bad]]])));
    await runner.start();
    kafka.latestConsumer.join([0]);
    let revoked = false;
    kafka.failAt('commit', Object.assign(new Error('The producer attempted to use an old epoch'), { name: 'KafkaJSProtocolError', type: 'INVALID_PRODUCER_EPOCH' }));
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a'))], { stale: () => revoked });
    revoked = true;
    expect(resolved).toEqual([]);
    expect(kafka.committed(DLQ)).toEqual([]);
    expect(await metricValue(metrics, 'personahub_events_dead_lettered_total', { stage: 'enrich', code: 'PH_ENRICH_BAD' })).toBe(0);
  });

  it('replaces the producer after a failed commit and commits the chunk once', async () => {
    const { kafka, runner } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    kafka.failAt('commit', Object.assign(new Error('Connection closed'), { name: 'KafkaJSConnectionClosedError' }));
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    expect(resolved).toEqual(['0']);
    expect(kafka.producers).toHaveLength(2);
    expect(kafka.producers[0]?.transactions.map((t) => t.state)).toEqual(['aborted']);
    expect(kafka.producers[1]?.transactions.map((t) => t.state)).toEqual(['committed']);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
  });

  it('does not redo a chunk whose commit failed after it took effect (coordinator moved)', async () => {
    const { kafka, runner } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    kafka.failAt('afterCommit', Object.assign(new Error('Not coordinator'), { name: 'KafkaJSProtocolError', type: 'NOT_COORDINATOR' }));
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a')), message(1, persona('b'))]);
    expect(resolved).toEqual(['1']);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a', 'b']);
    expect(kafka.producers.flatMap((p) => p.transactions).map((t) => t.state)).toEqual(['committed']);
  });

  it('fences the partition\'s previous owner on assignment and does not redo what that zombie committed meanwhile', async () => {
    const calls: string[] = [];
    const { kafka, runner } = setup(scripted(new Map(), calls));
    await runner.start();
    // A zombie (the partition's previous owner, not yet fenced) commits offsets 0-1 after this member was assigned.
    const zombie = await kafka.transactionalProducer('zombie').transaction();
    await zombie.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 'input', partitions: [{ partition: 0, offset: '2' }] }] });
    await zombie.commit();
    kafka.latestConsumer.join([0]);
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a')), message(1, persona('b')), message(2, persona('c')), message(3, persona('d'))]);
    expect(calls).toEqual(['c', 'd']);
    expect(resolved).toEqual(['1', '3']);
    expect(kafka.producers.find((p) => p.transactionalId.endsWith('.0'))?.fences).toBe(1);
  });

  it('drops a chunk whose partition was revoked while it was processed: no commit, no offset', async () => {
    let revoked = false;
    const revoking: Processor<'enrich'> = {
      stage: 'enrich',
      process: async (p) => {
        revoked = true;
        return [{ event: 'enriched', key: p.id, value: p }];
      },
    };
    const { kafka, runner } = setup(revoking);
    await runner.start();
    kafka.latestConsumer.join([0]);
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a'))], { stale: () => revoked });
    expect(resolved).toEqual([]);
    expect(kafka.producers.flatMap((p) => p.transactions)).toEqual([]);
  });

  it('gives up a chunk when its producer is fenced by the partition\'s new owner', async () => {
    const { kafka, runner } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    kafka.failAt('sendOffsets', Object.assign(new Error('fenced'), { name: 'KafkaJSProtocolError', type: 'PRODUCER_FENCED' }));
    const resolved = await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    expect(resolved).toEqual([]);
    expect(kafka.producers.flatMap((p) => p.transactions).map((t) => t.state)).toEqual(['aborted']);
  });

  it('skips an input already processed under another delivery (re-ingest, replay), and processes a redelivery', async () => {
    const calls: string[] = [];
    const { kafka, runner, metrics } = setup(scripted(new Map(), calls));
    await runner.start();
    kafka.latestConsumer.join([0]);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    // The same record again (a crash before the commit): same delivery, processed again.
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    // The same persona at a later offset (ingested twice): skipped.
    await kafka.latestConsumer.deliver(0, [message(5, persona('a'))]);
    expect(calls).toEqual(['a', 'a']);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a', 'a']);
    expect(await metricValue(metrics, 'personahub_inputs_skipped_total', { stage: 'enrich' })).toBe(1);
  });

  it('releases the claim of a dead-lettered input, so its replay is processed', async () => {
    const bad = new PersonaHubError('PH_ENRICH_BAD', 'cannot enrich this one');
    const calls: string[] = [];
    const { kafka, runner } = setup(scripted(new Map([['a', [bad]]]), calls));
    await runner.start();
    kafka.latestConsumer.join([0]);
    await kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    await kafka.latestConsumer.deliver(0, [message(9, persona('a'))]);
    expect(calls).toEqual(['a', 'a']);
    expect(kafka.committed(DLQ)).toHaveLength(1);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
  });

  it('waits out a registry outage while decoding instead of dead-lettering', async () => {
    const { kafka, runner, serde, slept } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    serde.registryDown = true;
    const restore = setInterval(() => {}, 1_000);
    const delivering = kafka.latestConsumer.deliver(0, [message(0, persona('a'))]);
    // The fake clock only moves when the runner sleeps: bring the registry back after a few waits.
    while (slept.length < 4) await new Promise((r) => setImmediate(r));
    serde.registryDown = false;
    await delivering;
    clearInterval(restore);
    expect(kafka.committed(DLQ)).toEqual([]);
    expect(kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
  });

  it('restarts a consumer that kafkajs will not restart, and is not live until it rejoins', async () => {
    const { kafka, runner, metrics } = setup(scripted(new Map()));
    await runner.start();
    kafka.latestConsumer.join([0]);
    expect(runner.live().ok).toBe(true);
    const first = kafka.latestConsumer;
    first.crash(Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSNonRetriableError' }), false);
    expect(runner.live().ok).toBe(false);
    expect(runner.live().reasons[0]).toContain('consumer crashed');
    while (kafka.consumers.length < 2) await new Promise((r) => setImmediate(r));
    expect(first.disconnected).toBe(true);
    expect(runner.ready().ok).toBe(false);
    kafka.latestConsumer.join([0]);
    expect(runner.live().ok).toBe(true);
    expect(runner.ready().ok).toBe(true);
    expect(await metricValue(metrics, 'personahub_consumer_restarts_total', { stage: 'enrich' })).toBe(1);
    // kafkajs restarting it by itself needs nothing from the runner.
    kafka.latestConsumer.crash(new Error('retriable'), true);
    await new Promise((r) => setImmediate(r));
    expect(kafka.consumers).toHaveLength(2);
    // Counted all the same: what a broker restart mostly causes is this kind, and the restarts alert is for it.
    expect(await metricValue(metrics, 'personahub_consumer_restarts_total', { stage: 'enrich' })).toBe(2);
  });

  it('is not live when the member stops heartbeating for longer than the session timeout', async () => {
    const { kafka, runner, advance } = setup(scripted(new Map()), { PERSONAHUB_SESSION_TIMEOUT_MS: '6000' });
    await runner.start();
    kafka.latestConsumer.join([0]);
    advance(5_000);
    expect(runner.live().ok).toBe(true);
    advance(2_000);
    expect(runner.live()).toMatchObject({ ok: false, reasons: ['no heartbeat for 7000 ms'] });
    kafka.latestConsumer.beat();
    expect(runner.live().ok).toBe(true);
  });

  it('passes a tombstone by for a stage without a tombstone handler, and gives it to one that has one', async () => {
    const tombstone = { ...message(1, 'unused', 'gone'), value: null };
    const plain = setup(scripted(new Map()));
    await plain.runner.start();
    plain.kafka.latestConsumer.join([0]);
    expect(await plain.kafka.latestConsumer.deliver(0, [message(0, persona('a')), tombstone])).toEqual(['1']);
    expect(plain.kafka.committed(ENRICHED).map((r) => r.key)).toEqual(['a']);
    expect(plain.kafka.committed(DLQ)).toEqual([]);

    const deleted: string[] = [];
    const handling = setup({
      ...scripted(new Map()),
      tombstone: async (key) => {
        deleted.push(key);
        return [{ event: 'enriched', key, value: null }];
      },
    });
    await handling.runner.start();
    handling.kafka.latestConsumer.join([0]);
    expect(await handling.kafka.latestConsumer.deliver(0, [tombstone])).toEqual(['1']);
    expect(deleted).toEqual(['gone']);
    // Passed on as a tombstone: the key, and no value.
    expect(handling.kafka.committed(ENRICHED)).toEqual([{ key: 'gone', value: null, headers: expect.any(Object) }]);
  });
});
