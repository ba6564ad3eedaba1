import { compatibilityPartitioner, Consumer, FetchIsolationLevels, Producer, type Message } from '@platformatic/kafka';
import { BenchError } from '../harness.ts';
import { CHUNK, type RawPipe, type RawPipeOptions } from './kafka-bench.ts';

/**
 * startRawPipe's semantics with @platformatic/kafka in place of kafkajs: read_committed, the group's committed
 * offsets (the earliest where none), one transactional producer per input partition, at most the configured
 * number of partitions' transactions at a time, and per chunk of CHUNK records of one partition one transaction:
 * one send of the chunk's outputs, the chunk's offset added through the consumer's group, commit.
 *
 * The client hands messages over as one stream of all assigned partitions rather than kafkajs' per-partition
 * batches, so chunks are cut per partition here: a full chunk goes at once, and what is left of a partition when
 * the stream has delivered everything it had is sent as a short chunk (as kafkajs' batches end in one).
 */
export async function startPlatformaticPipe(o: RawPipeOptions): Promise<RawPipe> {
  const base = { clientId: o.group, bootstrapBrokers: o.config.kafkaBrokers.split(','), retries: 10, retryDelay: 20 };
  const consumer = new Consumer({ ...base, groupId: o.group, sessionTimeout: o.config.sessionTimeoutMs, autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  // Connected on first use: a transaction's first request connects the producer and initialises its id.
  const producers = new Map<number, Producer>();
  const producerFor = (partition: number): Producer => {
    let p = producers.get(partition);
    if (!p) {
      // The same murmur2 as the Java client and kafkajs' DefaultPartitioner, so outputs land where theirs do.
      p = new Producer({ ...base, transactionalId: `${o.group}.${partition}`, idempotent: true, partitioner: compatibilityPartitioner });
      producers.set(partition, p);
    }
    return p;
  };
  let committed = 0;
  let failure: unknown;
  const pending = new Map<number, Message[]>();
  const lanes = new Map<number, Promise<void>>();
  let running = 0;
  const waiting: (() => void)[] = [];
  const slot = async (): Promise<void> => {
    if (running < o.config.partitionConcurrency) {
      running += 1;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };

  const transact = async (partition: number, chunk: Message[]): Promise<void> => {
    const last = chunk[chunk.length - 1];
    if (!last) return;
    const producer = producerFor(partition);
    await slot();
    try {
      const tx = await producer.beginTransaction();
      try {
        await tx.send({ acks: -1, messages: chunk.map((m) => {
          const r = o.record(m.key ?? null);
          return r.key === null ? { topic: o.output, value: r.value } : { topic: o.output, key: r.key, value: r.value };
        }) });
        await tx.addConsumer(consumer);
        await tx.addOffset(last);
        await tx.commit();
      } catch (error) {
        await tx.abort().catch(() => {});
        throw error;
      }
      committed += chunk.length;
    } finally {
      release();
    }
  };
  // One partition's chunks go one after another, as its offsets must be committed in order.
  const enqueue = (partition: number, chunk: Message[]): void => {
    const lane = (lanes.get(partition) ?? Promise.resolve()).then(() => (failure === undefined ? transact(partition, chunk) : undefined));
    lanes.set(partition, lane.catch((error: unknown) => {
      failure ??= error;
    }));
  };
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    for (const [partition, messages] of pending) if (messages.length > 0) enqueue(partition, messages.splice(0));
  };

  const stream = await consumer.consume({
    topics: [o.input], mode: 'committed', fallbackMode: 'earliest', autocommit: false, isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    maxBytesPerPartition: o.config.fetchMaxBytesPerPartition, maxBytes: o.config.fetchMaxBytesPerPartition * 4,
  });
  stream.on('data', (message: Message) => {
    let messages = pending.get(message.partition);
    if (!messages) pending.set(message.partition, (messages = []));
    messages.push(message);
    if (messages.length >= CHUNK) enqueue(message.partition, messages.splice(0, CHUNK));
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  stream.on('error', (error: unknown) => {
    failure ??= error;
  });
  return {
    get committed() {
      // A failed transaction ends the pass with its cause, rather than a timeout that says nothing.
      if (failure !== undefined) throw new BenchError('PH_BENCH_PIPE', `@platformatic/kafka pipe ${o.group} failed`, { cause: failure });
      return committed;
    },
    async stop() {
      await stream.close();
      await Promise.all(lanes.values());
      await consumer.close();
      for (const p of producers.values()) await p.close();
    },
  };
}
