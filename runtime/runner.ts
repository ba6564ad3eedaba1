import { randomUUID } from 'node:crypto';
import type { Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Config } from '../config/index.ts';
import { groupId, topicName, type EventName, type EventTypes, type StageInput, type StageName, type StageOf, type StageOutput } from '../topology/index.ts';
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.ts';
import { PersonaHubError } from '../core/errors.ts';
import { encodeOutputs, mergeByTopic, producerConfig, TRACE_HEADER, type Encoded } from './kafka.ts';
import type { Logger } from '../core/logger.ts';
import type { PipelineMetrics } from './metrics.ts';
import type { Output, Processor, SharedContext } from './processor.ts';
import type { Serde } from './serde.ts';

export interface RunnerOptions<N extends StageName> {
  config: Config;
  spec: StageOf<N>;
  processor: Processor<N>;
  kafka: Kafka;
  serde: Serde;
  ctx: SharedContext;
  metrics: PipelineMetrics;
  logger: Logger;
  /** Messages per transaction: bounds the work redone after a crash and the transaction's size. */
  chunkSize?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Retries of a transient processing error: 250 ms doubling up to 30 s, jittered. */
const RETRY_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 30_000 };

/** DLQ headers: readable without Avro, so any Kafka tool can tell why and from where. */
export const DLQ_HEADERS = {
  code: 'ph-error-code', class: 'ph-error-class', message: 'ph-error-message', stage: 'ph-stage',
  topic: 'ph-original-topic', partition: 'ph-original-partition', offset: 'ph-original-offset', attempts: 'ph-attempts', failedAt: 'ph-failed-at',
} as const;

/**
 * Runs one stage: consume → decode → process → encode → produce → commit, up to
 * PERSONAHUB_PARTITION_CONCURRENCY partitions at a time.
 *
 * Guarantee: exactly-once between Kafka topics. Each chunk of a batch is processed, then its outputs
 * and its input offsets go in one Kafka transaction (sendOffsets), so after a crash or rebalance a
 * chunk is either fully visible downstream (read_committed) with its offsets committed, or not at
 * all and is processed again. The store sink is idempotent by (id, version) for the same reason.
 */
/** What the CLI and tests hold of a running stage, whichever stage it is. */
export interface RunningStage {
  readonly stage: StageName;
  readonly isRunning: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class StageRunner<N extends StageName> implements RunningStage {
  private consumer: Consumer | undefined;
  /** One transactional producer per input partition (see producerFor). */
  private readonly producers = new Map<number, Promise<Producer>>();
  private running = false;
  private readonly group: string;
  private readonly inputTopic: string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: RunnerOptions<N>) {
    this.group = groupId(o.config.topicPrefix, o.spec.name);
    this.inputTopic = topicName(o.config.topicPrefix, o.spec.input);
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  get stage(): N {
    return this.o.spec.name;
  }

  get isRunning(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    const { kafka, config, spec, processor, ctx } = this.o;
    await processor.init?.(ctx);
    this.consumer = kafka.consumer({ groupId: this.group, readUncommitted: false, allowAutoTopicCreation: false, sessionTimeout: config.sessionTimeoutMs, heartbeatInterval: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)) });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.inputTopic, fromBeginning: true });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.partitionConcurrency,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
        const size = this.o.chunkSize ?? 16;
        for (let i = 0; i < batch.messages.length; i += size) {
          if (!isRunning() || isStale()) return;
          const chunk = batch.messages.slice(i, i + size);
          const encoded = await this.processChunk(chunk, batch.partition, heartbeat);
          // A rebalance during processing means this partition may now belong to another member:
          // committing would race it, so drop the results and let the new owner redo the chunk.
          if (!isRunning() || isStale()) return;
          const last = chunk[chunk.length - 1];
          if (!last) continue;
          await this.commit(encoded, batch.partition, last.offset);
          resolveOffset(last.offset);
          // High watermark minus next offset. Transaction markers and aborted records take offsets too, so
          // on transactional topics it overstates by a few; it is for trends and autoscaling, not accounting.
          this.o.metrics.lag.set({ stage: spec.name, topic: this.inputTopic, partition: String(batch.partition) }, Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1));
          await heartbeat();
        }
      },
    });
    this.o.logger.info({ stage: spec.name, input: this.inputTopic, group: this.group }, 'stage started');
  }

  private async processChunk(chunk: KafkaMessage[], partition: number, heartbeat: () => Promise<void>): Promise<Encoded> {
    const limit = Math.max(1, this.o.config.maxInFlight);
    const results: Encoded[] = new Array(chunk.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < chunk.length; i = next++) {
        const message = chunk[i];
        if (!message) continue;
        results[i] = await this.handle(message, partition);
        await heartbeat();
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, chunk.length) }, worker));
    // Outputs go out in input order, so per-key order survives concurrent processing.
    return mergeByTopic(results);
  }

  /**
   * The transactional id is derived from the input partition, not from the instance: when a partition
   * moves to another instance (rebalance, crash, scale-out), the new owner's producer takes the same
   * id and fences the old one, so a zombie can no longer commit that partition's outputs. It also lets
   * partitions commit concurrently, since kafkajs allows one open transaction per producer.
   */
  private producerFor(partition: number): Promise<Producer> {
    let producer = this.producers.get(partition);
    if (!producer) {
      const p = this.o.kafka.producer(producerConfig({
        transactionalId: `${this.group}.${this.inputTopic}.${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        // kafkajs waits 300 ms on CONCURRENT_TRANSACTIONS by default, capping a producer at ~4 transactions/s.
        retry: { initialRetryTime: 20, retries: 10 },
      }));
      producer = p.connect().then(() => p);
      this.producers.set(partition, producer);
    }
    return producer;
  }

  private async commit(encoded: Encoded, partition: number, lastOffset: string): Promise<void> {
    const producer = await this.producerFor(partition);
    let txn;
    try {
      txn = await producer.transaction();
    } catch (error) {
      // A fenced or broken producer is dropped; the batch is retried with a fresh one.
      this.producers.delete(partition);
      await producer.disconnect().catch(() => {});
      throw error;
    }
    try {
      // Sends inside one transaction must not race each other (kafkajs), hence sequential.
      for (const [topic, messages] of encoded) {
        await txn.send({ topic, messages, acks: -1 });
        for (const m of messages) this.o.metrics.produced.inc({ stage: this.o.spec.name, topic });
      }
      await txn.sendOffsets({ consumerGroupId: this.group, topics: [{ topic: this.inputTopic, partitions: [{ partition, offset: (BigInt(lastOffset) + 1n).toString() }] }] });
      await txn.commit();
    } catch (error) {
      await txn.abort().catch((abortError: unknown) => {
        // Abort fails when the producer was fenced by the partition's new owner: drop it.
        this.o.logger.warn({ err: abortError, partition }, 'transaction abort failed; replacing the producer');
        this.producers.delete(partition);
        void producer.disconnect().catch(() => {});
      });
      throw error;
    }
  }

  /** Never throws for a bad event: whatever cannot be processed becomes a DLQ record. */
  private async handle(message: KafkaMessage, partition: number): Promise<Encoded> {
    const { spec, processor, serde, config, metrics, ctx } = this.o;
    const traceId = message.headers?.[TRACE_HEADER]?.toString() ?? randomUUID();
    const logger = ctx.logger.child({ stage: spec.name, traceId, partition, offset: message.offset });
    metrics.consumed.inc({ stage: spec.name, topic: this.inputTopic });
    let attempts = 0;
    let event: EventTypes[StageInput<N>];
    try {
      event = await serde.decode<StageInput<N>>(spec.input, message.value);
    } catch (error) {
      return this.deadLetter(message, partition, error, 1, traceId, logger);
    }
    for (;;) {
      attempts += 1;
      const timer = metrics.duration.startTimer({ stage: spec.name });
      metrics.inFlight.inc({ stage: spec.name });
      try {
        const outputs: Output<StageOutput<N>>[] = await processor.process(event, { ...ctx, logger, delivery: `${this.inputTopic}:${partition}:${message.offset}` });
        for (const out of outputs) {
          // Rejections are counted here, from what the processor emits, so stage code stays metric-free.
          if (isRejection(out)) for (const reason of out.value.reasons) metrics.rejected.inc({ reason: reason.code });
        }
        return await encodeOutputs(serde, config.topicPrefix, outputs, { [TRACE_HEADER]: traceId });
      } catch (error) {
        const transient = error instanceof PersonaHubError && error.transient;
        metrics.failed.inc({ stage: spec.name, code: errorCode(error), transient: String(transient) });
        if (!transient || attempts > config.maxRetries) return this.deadLetter(message, partition, error, attempts, traceId, logger);
        const delay = backoffDelayMs(attempts - 1, RETRY_BACKOFF);
        logger.warn({ err: error, attempts, delay }, 'transient failure, retrying');
        await this.sleep(delay);
      } finally {
        timer();
        metrics.inFlight.dec({ stage: spec.name });
      }
    }
  }

  private async deadLetter(message: KafkaMessage, partition: number, error: unknown, attempts: number, traceId: string, logger: Logger): Promise<Encoded> {
    const { spec, serde, config, metrics } = this.o;
    const code = errorCode(error);
    const err = error instanceof Error ? error : new Error(String(error));
    const failedAt = Date.now();
    const record: EventTypes['dlq'] = {
      stage: spec.name, errorCode: code, errorClass: err.name, errorMessage: err.message.slice(0, 4000),
      originalTopic: this.inputTopic, originalPartition: partition, originalOffset: message.offset,
      originalKey: message.key ?? null, originalValue: message.value ?? null, attempts, failedAt,
    };
    const headers: IHeaders = {
      [TRACE_HEADER]: traceId,
      [DLQ_HEADERS.code]: code, [DLQ_HEADERS.class]: err.name, [DLQ_HEADERS.message]: err.message.slice(0, 1000),
      [DLQ_HEADERS.stage]: spec.name, [DLQ_HEADERS.topic]: this.inputTopic, [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: message.offset, [DLQ_HEADERS.attempts]: String(attempts), [DLQ_HEADERS.failedAt]: new Date(failedAt).toISOString(),
    };
    const key = (await serde.decodeKey(message.key ?? null)) ?? `${this.inputTopic}:${partition}:${message.offset}`;
    metrics.deadLettered.inc({ stage: spec.name, topic: this.inputTopic, code });
    logger.error({ err, code, attempts }, 'event sent to the DLQ');
    return encodeOutputs(serde, config.topicPrefix, [{ event: 'dlq', key, value: record }], headers);
  }

  /** Stops fetching, lets the batch in progress finish its transaction, then disconnects. */
  async stop(): Promise<void> {
    this.running = false;
    await this.consumer?.disconnect();
    for (const producer of this.producers.values()) await (await producer).disconnect();
    this.producers.clear();
    await this.o.processor.close?.();
    this.o.logger.info({ stage: this.o.spec.name }, 'stage stopped');
  }
}

function isRejection<O extends EventName>(out: Output<O>): out is Output<O> & Output<'rejected'> {
  return out.event === 'rejected';
}

function errorCode(error: unknown): string {
  return error instanceof PersonaHubError ? error.code : 'PH_UNEXPECTED';
}
