import { randomUUID } from 'node:crypto';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import type { Config } from '../config/index.ts';
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.ts';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { groupId, topicName, type EventName, type EventTypes, type StageInput, type StageName, type StageOf, type StageOutput } from '../topology/index.ts';
import { Breakers, type CircuitBreaker } from './breaker.ts';
import { classifyFailure, isFenced, type Failure } from './error-policy.ts';
import { inputIdentity } from './identity.ts';
import { encodeOutputs, groupByPartition, isTombstone, mergeByTopic, REPLAYED_FROM_HEADER, TRACE_HEADER, type BatchPort, type ConsumerPort, type Encoded, type KafkaPort, type ProducerPort } from './kafka.ts';
import type { Health, PipelineMetrics } from './metrics.ts';
import type { Output, Processor, ProcessorContext, SharedContext, Tombstone } from './processor.ts';
import type { SerdePort } from './serde.ts';

export interface RunnerOptions<N extends StageName> {
  config: Config;
  spec: StageOf<N>;
  processor: Processor<N>;
  kafka: KafkaPort;
  serde: SerdePort;
  ctx: SharedContext;
  metrics: PipelineMetrics;
  logger: Logger;
  /** Injectable for unit tests: waits, jitter and the clock. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** Messages per transaction: bounds the work redone after a crash and the transaction's size. */
export const CHUNK_SIZE = 16;

/** DLQ headers: readable without Avro, so any Kafka tool can tell why and from where. */
export const DLQ_HEADERS = {
  code: 'ph-error-code', class: 'ph-error-class', message: 'ph-error-message', stage: 'ph-stage',
  topic: 'ph-original-topic', partition: 'ph-original-partition', offset: 'ph-original-offset', attempts: 'ph-attempts', failedAt: 'ph-failed-at',
} as const;

/** What the CLI and tests hold of a running stage, whichever stage it is. */
export interface RunningStage {
  readonly stage: StageName;
  readonly isRunning: boolean;
  /** Liveness: false when the consumer crashed or stopped heartbeating; the process should be restarted. */
  live(): HealthReport;
  /** Readiness: false while joining the group or while a dependency's breaker is open. */
  ready(): HealthReport;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface HealthReport extends Health {
  stage: StageName;
}

/** Several stages in one process are as healthy as the least healthy of them. */
export function combinedHealth(reports: readonly HealthReport[]): Health {
  const reasons = reports.flatMap((r) => r.reasons.map((reason) => `${r.stage}: ${reason}`));
  return { ok: reasons.length === 0, reasons };
}

/** Thrown inside a batch when its partition was revoked or the runner stops: the chunk is dropped, uncommitted. */
class Abandoned extends Error {}

interface Handled {
  encoded: Encoded;
  /** Error codes of the DLQ records among the outputs, counted once the transaction commits. */
  deadLettered: string[];
  /** Counted once the transaction commits: inputs already processed under another delivery. */
  skipped: boolean;
}

interface Decoded<N extends StageName> {
  message: KafkaMessage;
  traceId: string;
  delivery: string;
  logger: Logger;
  event?: EventTypes[StageInput<N>];
  identity?: string;
  /** Set when the event cannot be decoded: it goes to the DLQ. */
  poison?: Failure;
  /** The key of a tombstone (a record with no value: the keyed entity was deleted). */
  tombstone?: string;
}

/**
 * Runs one stage: consume → decode → process → encode → produce → commit, up to
 * PERSONAHUB_PARTITION_CONCURRENCY partitions at a time.
 *
 * Guarantee: exactly-once between Kafka topics. Each chunk of a batch is processed, then its outputs
 * and its input offsets go in one Kafka transaction (sendOffsets), so after a crash or rebalance a
 * chunk is either fully visible downstream (read_committed) with its offsets committed, or not at
 * all and is processed again. An input already processed under another delivery (a re-ingested seed,
 * a replayed dead letter) is recognised by its claim in the store and skipped.
 *
 * Error policy (runtime/error-policy.ts): a transient failure is waited out with jittered backoff,
 * for as long as the outage lasts, with the dependency's circuit breaker pausing the stage while it
 * is open; a permanent failure sends the event to the DLQ at once.
 */
export class StageRunner<N extends StageName> implements RunningStage {
  private consumer: ConsumerPort | undefined;
  /** One transactional producer per input partition (see producerFor). */
  private readonly producers = new Map<number, Promise<ProducerPort>>();
  private running = false;
  private crashed: string | undefined;
  private joined = false;
  private lastHeartbeat = 0;
  private paused = false;
  private assigned: number[] = [];
  private readonly group: string;
  private readonly inputTopic: string;
  private readonly breakers: Breakers;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly retryBackoff: BackoffPolicy;
  /** Per assigned partition: the group's committed offset, read after this instance fenced the partition's previous owner. */
  private readonly fences = new Map<number, Promise<bigint>>();

  constructor(private readonly o: RunnerOptions<N>) {
    this.group = groupId(o.config.topicPrefix, o.spec.name);
    this.inputTopic = topicName(o.config.topicPrefix, o.spec.input);
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = o.random ?? Math.random;
    this.now = o.now ?? Date.now;
    this.retryBackoff = { baseMs: 250, capMs: o.config.retryMaxDelayMs };
    this.breakers = new Breakers({
      failureThreshold: o.config.breakerFailureThreshold,
      openBackoff: { baseMs: o.config.breakerOpenMs, capMs: Math.max(o.config.breakerOpenMs, o.config.retryMaxDelayMs) },
      retryAfterCeilingMs: o.config.retryAfterMaxMs,
      random: this.random,
      now: this.now,
      onStateChange: (dependency, state) => {
        o.metrics.breakerState.set({ stage: o.spec.name, dependency }, state === 'closed' ? 0 : state === 'half_open' ? 1 : 2);
        o.logger.warn({ stage: o.spec.name, dependency, state }, state === 'open' ? 'dependency unavailable: stage paused' : `dependency breaker ${state}`);
        this.updatePause();
      },
    });
  }

  get stage(): N {
    return this.o.spec.name;
  }

  get isRunning(): boolean {
    return this.running;
  }

  live(): HealthReport {
    const reasons: string[] = [];
    if (!this.running) reasons.push('stopped');
    if (this.crashed) reasons.push(`consumer crashed: ${this.crashed}`);
    // A member that stops heartbeating is out of the group after the session timeout: so is this instance.
    if (this.joined && this.now() - this.lastHeartbeat > this.o.config.sessionTimeoutMs) reasons.push(`no heartbeat for ${this.now() - this.lastHeartbeat} ms`);
    return { ok: reasons.length === 0, stage: this.o.spec.name, reasons };
  }

  ready(): HealthReport {
    const reasons = this.live().reasons;
    if (!this.joined) reasons.push('joining the consumer group');
    for (const dependency of this.breakers.unavailable) reasons.push(`${dependency} unavailable (breaker open)`);
    return { ok: reasons.length === 0, stage: this.o.spec.name, reasons };
  }

  async start(): Promise<void> {
    await this.o.processor.init?.(this.o.ctx);
    this.running = true;
    await this.startConsumer();
    this.o.logger.info({ stage: this.o.spec.name, input: this.inputTopic, group: this.group }, 'stage started');
  }

  private async startConsumer(): Promise<void> {
    const { config } = this.o;
    const consumer = this.o.kafka.consumer({
      groupId: this.group, sessionTimeoutMs: config.sessionTimeoutMs,
      heartbeatIntervalMs: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)), maxBytesPerPartition: config.fetchMaxBytesPerPartition,
    });
    this.consumer = consumer;
    this.joined = false;
    this.paused = false;
    consumer.onGroupJoin(({ partitions }) => {
      this.joined = true;
      this.crashed = undefined;
      this.lastHeartbeat = this.now();
      this.assigned = partitions;
      // A new generation: every partition is fenced afresh before its first batch (see fenceFor).
      this.fences.clear();
      for (const p of partitions) void this.fenceFor(p).catch(() => {});
      this.updatePause();
    });
    consumer.onHeartbeat(() => {
      this.lastHeartbeat = this.now();
    });
    consumer.onCrash(({ error, restart }) => {
      this.crashed = `${error.name}: ${error.message}`;
      this.joined = false;
      this.o.logger.error({ stage: this.o.spec.name, err: error, restart }, restart ? 'consumer crashed; kafkajs restarts it' : 'consumer crashed; the runner restarts it');
      // Counted whoever restarts it: a broker restart mostly ends in crashes kafkajs restarts by itself
      // (connection retries exhausted), and those are what the consumer-restarts alert is for.
      if (this.running) this.o.metrics.consumerRestarts.inc({ stage: this.o.spec.name });
      // kafkajs gives up on errors it calls non-retriable (a coordinator lost during a broker restart is
      // one): without this the stage would sit idle, reporting healthy, until someone restarted it.
      if (!restart && this.running) void this.restartConsumer(consumer);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.inputTopic, fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: config.partitionConcurrency,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /** Replaces a consumer kafkajs will not restart, with backoff, for as long as the runner runs. */
  private async restartConsumer(crashed: ConsumerPort): Promise<void> {
    if (this.consumer !== crashed) return;
    await crashed.disconnect().catch(() => {});
    for (let attempt = 0; this.running && this.consumer === crashed; attempt += 1) {
      await this.sleep(backoffDelayMs(attempt, this.retryBackoff, this.random));
      if (!this.running) return;
      try {
        await this.startConsumer();
        this.o.logger.info({ stage: this.o.spec.name, attempt }, 'consumer restarted');
        return;
      } catch (error) {
        this.o.logger.warn({ stage: this.o.spec.name, err: error, attempt }, 'consumer restart failed; trying again');
        await this.consumer?.disconnect().catch(() => {});
        this.consumer = crashed;
      }
    }
  }

  /** Fetching stops while a dependency is down: nothing is gained by holding more events than are stuck. */
  private updatePause(): void {
    const consumer = this.consumer;
    if (!consumer) return;
    const shouldPause = this.breakers.unavailable.length > 0;
    if (shouldPause === this.paused) return;
    this.paused = shouldPause;
    if (shouldPause) consumer.pause([{ topic: this.inputTopic }]);
    else consumer.resume([{ topic: this.inputTopic }]);
    this.o.metrics.pausedPartitions.set({ stage: this.o.spec.name }, shouldPause ? this.assigned.length : 0);
  }

  private async eachBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: BatchPort): Promise<void> {
    const owned = () => isRunning() && !isStale() && this.running;
    // A long LLM call must not make the member look dead: heartbeat on a timer while the batch runs.
    const pump = setInterval(() => void heartbeat().catch(() => {}), Math.min(3_000, Math.floor(this.o.config.sessionTimeoutMs / 3)));
    try {
      // What a zombie committed between this member's assignment and its fencing is not done again.
      const fencedAt = await this.fenceFor(batch.partition);
      const done = batch.messages.filter((m) => BigInt(m.offset) < fencedAt);
      const lastDone = done[done.length - 1];
      if (lastDone) resolveOffset(lastDone.offset);
      const messages = batch.messages.filter((m) => BigInt(m.offset) >= fencedAt);
      for (let i = 0; i < messages.length; i += CHUNK_SIZE) {
        if (!owned()) return;
        const chunk = messages.slice(i, i + CHUNK_SIZE);
        const last = chunk[chunk.length - 1];
        if (!last) continue;
        const handled = await this.processChunk(chunk, batch.partition, owned);
        // A rebalance during processing means this partition may now belong to another member:
        // committing would race it, so drop the results and let the new owner redo the chunk.
        if (!owned()) return;
        const committed = await this.commit(handled, batch.partition, last.offset, owned);
        if (!committed) return;
        resolveOffset(last.offset);
        // High watermark minus next offset. Transaction markers and aborted records take offsets too, so
        // on transactional topics it overstates by a few; it is for trends and autoscaling, not accounting.
        this.o.metrics.lag.set({ stage: this.o.spec.name, topic: this.inputTopic, partition: String(batch.partition) }, Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1));
        await heartbeat().catch(() => {});
      }
    } catch (error) {
      if (error instanceof Abandoned) return;
      throw error;
    } finally {
      clearInterval(pump);
    }
  }

  private async processChunk(chunk: KafkaMessage[], partition: number, owned: () => boolean): Promise<Handled[]> {
    const decoded: Decoded<N>[] = [];
    for (const message of chunk) decoded.push(await this.decode(message, partition, owned));
    // One round trip claims the chunk's inputs: an identity first seen under another delivery was
    // already processed (the same seed ingested twice, a dead letter replayed after it was fixed).
    const claims = decoded.filter((d) => d.identity !== undefined).map((d) => ({ identity: d.identity ?? '', delivery: d.delivery }));
    const owners = claims.length === 0 ? new Map<string, string>() : await this.withRetry('claim', owned, () => this.o.ctx.store.claimInputs(this.o.spec.name, claims));
    const limit = Math.max(1, this.o.config.maxInFlight);
    const results: Handled[] = new Array(decoded.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < decoded.length; i = next++) {
        const d = decoded[i];
        if (!d) continue;
        if (d.poison) results[i] = await this.deadLetter(d, partition, d.poison, 1);
        else if (d.identity !== undefined && owners.get(d.identity) !== d.delivery) {
          d.logger.info({ identity: d.identity, owner: owners.get(d.identity) }, 'input already processed under another delivery; skipped');
          results[i] = { encoded: new Map(), deadLettered: [], skipped: true };
        } else results[i] = await this.handle(d, partition, owned);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, decoded.length) }, worker));
    return results;
  }

  private async decode(message: KafkaMessage, partition: number, owned: () => boolean): Promise<Decoded<N>> {
    const { spec, serde, ctx, metrics } = this.o;
    const traceId = message.headers?.[TRACE_HEADER]?.toString() ?? randomUUID();
    const delivery = `${this.inputTopic}:${partition}:${message.offset}`;
    const logger = ctx.logger.child({ stage: spec.name, traceId, partition, offset: message.offset });
    metrics.consumed.inc({ stage: spec.name, topic: this.inputTopic });
    if (message.headers?.[REPLAYED_FROM_HEADER] !== undefined) metrics.dlqReplayed.inc({ stage: spec.name });
    try {
      if (message.value === null) {
        // A tombstone has no value to decode. It claims no identity: deleting is idempotent, and an id
        // deleted, made again (the same seed re-run) and deleted again must be deleted both times.
        const key = await this.withRetry('decode', owned, () => serde.decodeKey(message.key));
        if (key === null) throw new PersonaHubError('PH_TOMBSTONE_NO_KEY', 'a record with neither key nor value: nothing to delete');
        return { message, traceId, delivery, logger, tombstone: key };
      }
      // A registry outage is waited out; bytes the registry says are not ours are poison.
      const event = await this.withRetry('decode', owned, () => serde.decode<StageInput<N>>(spec.input, message.value, message.key));
      return { message, traceId, delivery, logger, event, identity: inputIdentity(event) };
    } catch (error) {
      if (error instanceof Abandoned) throw error;
      return { message, traceId, delivery, logger, poison: classifyFailure(error) };
    }
  }

  /**
   * Runs `attempt` until it succeeds, fails permanently (rethrown), or the chunk is abandoned.
   * Transient failures wait: jittered exponential backoff capped at PERSONAHUB_RETRY_MAX_DELAY_MS, or
   * the dependency's Retry-After up to PERSONAHUB_RETRY_AFTER_MAX_MS, and never while its breaker is open.
   */
  private async withRetry<T>(reason: string, owned: () => boolean, attempt: () => Promise<T>, logger = this.o.logger): Promise<T> {
    for (let n = 0; ; n += 1) {
      const probes = await this.admitted(owned);
      try {
        const value = await attempt();
        this.breakers.settle(probes, undefined);
        return value;
      } catch (error) {
        const failure = classifyFailure(error);
        if (!failure.transient) {
          this.breakers.settle(probes, undefined);
          throw error;
        }
        this.breakers.settle(probes, failure.dependency ? { dependency: failure.dependency, retryAfterMs: failure.retryAfterMs } : undefined);
        this.o.metrics.retries.inc({ stage: this.o.spec.name, reason: `${reason}:${failure.code}` });
        const hint = failure.retryAfterMs === undefined ? 0 : Math.min(failure.retryAfterMs, this.o.config.retryAfterMaxMs);
        const delay = Math.max(backoffDelayMs(n, this.retryBackoff, this.random), hint);
        if (n === 0 || n % 10 === 0) logger.warn({ err: failure.error, code: failure.code, dependency: failure.dependency, attempt: n + 1, delayMs: Math.round(delay) }, 'transient failure; waiting it out');
        await this.wait(delay, owned);
      }
    }
  }

  /** Waits until every breaker of the stage admits an attempt; returns the breakers this attempt probes. */
  private async admitted(owned: () => boolean): Promise<CircuitBreaker[]> {
    for (;;) {
      if (!owned()) throw new Abandoned();
      const verdict = this.breakers.admit();
      if (verdict.ok) return verdict.probes;
      await this.wait(verdict.waitMs, owned);
    }
  }

  /** Sleeps in short steps so a revoked partition or a stop is noticed within a second. */
  private async wait(ms: number, owned: () => boolean): Promise<void> {
    const until = this.now() + ms;
    for (let left = ms; left > 0; left = until - this.now()) {
      if (!owned()) throw new Abandoned();
      await this.sleep(Math.min(left, 1_000));
    }
    if (!owned()) throw new Abandoned();
  }

  /** Never throws for a bad event: whatever cannot be processed becomes a DLQ record. */
  private async handle(d: Decoded<N>, partition: number, owned: () => boolean): Promise<Handled> {
    const { spec, processor, serde, config, metrics, ctx } = this.o;
    let run: (context: ProcessorContext) => Promise<(Output<StageOutput<N>> | Tombstone<StageOutput<N>>)[]>;
    const tombstoneKey = d.tombstone;
    if (tombstoneKey !== undefined) {
      const onTombstone = processor.tombstone;
      if (!onTombstone) {
        // Nothing of this stage's to delete: passed by, its offset committed with the chunk.
        d.logger.debug({ key: tombstoneKey }, 'tombstone passed by');
        return { encoded: new Map(), deadLettered: [], skipped: false };
      }
      run = (context) => onTombstone(tombstoneKey, context);
    } else {
      const event = d.event;
      if (event === undefined) return this.deadLetter(d, partition, classifyFailure(new Error('no event decoded')), 1);
      run = (context) => processor.process(event, context);
    }
    let attempts = 0;
    try {
      const encoded = await this.withRetry('process', owned, async () => {
        attempts += 1;
        const timer = metrics.duration.startTimer({ stage: spec.name });
        metrics.inFlight.inc({ stage: spec.name });
        try {
          const outputs = await run({ ...ctx, logger: d.logger, delivery: d.delivery });
          for (const out of outputs) {
            // Rejections are counted here, from what the processor emits, so stage code stays metric-free.
            if (!isTombstone(out) && isRejection(out)) for (const reason of out.value.reasons) metrics.rejected.inc({ reason: reason.code });
          }
          return await encodeOutputs(serde, config.topicPrefix, outputs, { [TRACE_HEADER]: d.traceId });
        } catch (error) {
          const failure = classifyFailure(error);
          metrics.failed.inc({ stage: spec.name, code: failure.code, transient: String(failure.transient) });
          throw error;
        } finally {
          timer();
          metrics.inFlight.dec({ stage: spec.name });
        }
      }, d.logger);
      return { encoded, deadLettered: [], skipped: false };
    } catch (error) {
      if (error instanceof Abandoned) throw error;
      // The claim is given back so that a replay of this dead letter, once the cause is fixed, is processed.
      if (d.identity !== undefined) {
        const identity = d.identity;
        await this.withRetry('release', owned, () => ctx.store.releaseInput(spec.name, identity, d.delivery));
      }
      return this.deadLetter(d, partition, classifyFailure(error), attempts);
    }
  }

  private async deadLetter(d: Decoded<N>, partition: number, failure: Failure, attempts: number): Promise<Handled> {
    const { spec, serde, config } = this.o;
    const { message } = d;
    const err = failure.error;
    const failedAt = this.now();
    const record: EventTypes['dlq'] = {
      stage: spec.name, errorCode: failure.code, errorClass: err.name, errorMessage: err.message.slice(0, 4000),
      originalTopic: this.inputTopic, originalPartition: partition, originalOffset: message.offset,
      originalKey: message.key ?? null, originalValue: message.value ?? null, attempts, failedAt,
    };
    const headers: IHeaders = {
      [TRACE_HEADER]: d.traceId,
      [DLQ_HEADERS.code]: failure.code, [DLQ_HEADERS.class]: err.name, [DLQ_HEADERS.message]: err.message.slice(0, 1000),
      [DLQ_HEADERS.stage]: spec.name, [DLQ_HEADERS.topic]: this.inputTopic, [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: message.offset, [DLQ_HEADERS.attempts]: String(attempts), [DLQ_HEADERS.failedAt]: new Date(failedAt).toISOString(),
    };
    const key = (await serde.decodeKey(message.key ?? null)) ?? `${this.inputTopic}:${partition}:${message.offset}`;
    d.logger.error({ err, code: failure.code, attempts }, 'event sent to the DLQ');
    // The DLQ topic's schema is in the registry too: its outage is waited out like any other.
    const encoded = await this.withRetry('dlq-encode', () => this.running, () => encodeOutputs(serde, config.topicPrefix, [{ event: 'dlq', key, value: record }], headers), d.logger);
    return { encoded, deadLettered: [failure.code], skipped: false };
  }

  /**
   * The transactional id is derived from the input partition, not from the instance: when a partition
   * moves to another instance (rebalance, crash, scale-out), the new owner's producer takes the same
   * id and fences the old one, so a zombie can no longer commit that partition's outputs. It also lets
   * partitions commit concurrently, since kafkajs allows one open transaction per producer.
   */
  /**
   * Fences the partition's previous owner before this member processes it: a transaction begun with
   * the partition's transactional id makes the coordinator bump the producer epoch and end whatever the
   * old owner left open (aborted, or completed if its commit was already under way). Only then is the
   * group's committed offset read, so a chunk a zombie committed after this member's assignment is seen
   * as done rather than redone.
   */
  private fenceFor(partition: number): Promise<bigint> {
    let fence = this.fences.get(partition);
    if (!fence) {
      fence = (async () => {
        const producer = await this.producerFor(partition);
        const txn = await producer.transaction();
        await txn.abort();
        return this.o.kafka.committedOffset(this.group, this.inputTopic, partition);
      })();
      // A failed fence is not cached: the batch fails and kafkajs retries it, fencing again.
      fence.catch(() => this.fences.delete(partition));
      this.fences.set(partition, fence);
    }
    return fence;
  }

  private producerFor(partition: number): Promise<ProducerPort> {
    let producer = this.producers.get(partition);
    if (!producer) {
      const p = this.o.kafka.transactionalProducer(`${this.group}.${this.inputTopic}.${partition}`);
      producer = p.connect().then(() => p);
      // A failed connect is not cached: the next attempt builds a new producer.
      producer.catch(() => this.producers.delete(partition));
      this.producers.set(partition, producer);
    }
    return producer;
  }

  /** Partitions per output topic, read once and again after a failed commit (see commit). */
  private readonly partitionCounts = new Map<string, Promise<number>>();

  private partitionCount(topic: string): Promise<number> {
    let count = this.partitionCounts.get(topic);
    if (!count) {
      count = this.o.kafka.partitionCount(topic);
      // A failed read is not cached: the commit fails, is retried, and reads again.
      count.catch(() => this.partitionCounts.delete(topic));
      this.partitionCounts.set(topic, count);
    }
    return count;
  }

  private dropProducer(partition: number, producer: Promise<ProducerPort>): void {
    if (this.producers.get(partition) === producer) this.producers.delete(partition);
    void producer.then((p) => p.disconnect()).catch(() => {});
  }

  /**
   * Outputs and the input offset in one transaction. A broker failure is retried with a fresh producer
   * for as long as the chunk is still ours; a fenced producer means the partition has a new owner, who
   * redoes the chunk: false, nothing committed here. Counts what the committed transaction made visible.
   */
  private async commit(handled: Handled[], partition: number, lastOffset: string, owned: () => boolean): Promise<boolean> {
    const encoded = mergeByTopic(handled.map((h) => h.encoded));
    let attempt = 0;
    try {
      await this.withRetry('commit', owned, async () => {
        const producerPromise = this.producerFor(partition);
        const producer = await producerPromise;
        // A commit that failed may have committed all the same (EndTxn to a coordinator that moved away after
        // writing PREPARE_COMMIT). A fresh producer's initialisation settles that transaction; if the group's
        // offset now covers the chunk, it committed, and redoing it would write its outputs twice.
        if (attempt++ > 0 && (await this.o.kafka.committedOffset(this.group, this.inputTopic, partition)) >= BigInt(lastOffset) + 1n) return;
        let txn;
        try {
          txn = await producer.transaction();
        } catch (error) {
          this.dropProducer(partition, producerPromise);
          throw error;
        }
        try {
          // Sends inside one transaction must not race each other (kafkajs), hence sequential. One partition per
          // request: after a partial failure across brokers (a leader moving), kafkajs 2.2.4 re-sends partitions
          // another broker already acknowledged, with new sequence numbers (duplicates), and can skip partitions
          // that moved to a broker that already answered (tulios/kafkajs#1798). One request, one partition, one
          // broker; a chunk's records for one partition still go in one request (one per record cost a round trip
          // each: the runner benchmark, docs/BENCHMARKS.md).
          for (const [topic, messages] of encoded) {
            for (const group of groupByPartition(topic, messages, await this.partitionCount(topic))) await txn.send({ topic, messages: group, acks: -1 });
          }
          await txn.sendOffsets({ consumerGroupId: this.group, topics: [{ topic: this.inputTopic, partitions: [{ partition, offset: (BigInt(lastOffset) + 1n).toString() }] }] });
          await txn.commit();
        } catch (error) {
          await txn.abort().catch((abortError: unknown) => {
            this.o.logger.warn({ err: abortError, partition }, 'transaction abort failed; replacing the producer');
          });
          this.dropProducer(partition, producerPromise);
          // Partitions may have been added meanwhile (topics reconcile): counted afresh for the redo.
          this.partitionCounts.clear();
          if (isFenced(error)) throw new Abandoned('fenced by the partition\'s new owner');
          throw error;
        }
      });
    } catch (error) {
      if (error instanceof Abandoned) return false;
      throw error;
    }
    const { metrics, spec } = this.o;
    for (const [topic, messages] of encoded) metrics.produced.inc({ stage: spec.name, topic }, messages.length);
    for (const h of handled) {
      for (const code of h.deadLettered) metrics.deadLettered.inc({ stage: spec.name, topic: this.inputTopic, code });
      if (h.skipped) metrics.skipped.inc({ stage: spec.name, reason: 'already_processed' });
    }
    return true;
  }

  /**
   * Stops fetching, lets the chunk in progress finish its transaction (or abandons it: a chunk waiting
   * on an outage is dropped uncommitted and redone by the next owner), then disconnects.
   */
  async stop(): Promise<void> {
    this.running = false;
    await this.consumer?.disconnect().catch((error: unknown) => this.o.logger.warn({ err: error }, 'consumer disconnect failed'));
    for (const producer of this.producers.values()) await producer.then((p) => p.disconnect()).catch(() => {});
    this.producers.clear();
    await this.o.processor.close?.();
    this.o.logger.info({ stage: this.o.spec.name }, 'stage stopped');
  }
}

function isRejection<O extends EventName>(out: Output<O>): out is Output<O> & Output<'rejected'> {
  return out.event === 'rejected';
}

export { PersonaHubError };
