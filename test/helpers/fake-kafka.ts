import type { IHeaders, KafkaMessage } from 'kafkajs';
import { SerdeError, type SerdePort } from '../../runtime/serde.ts';
import type { BatchPort, ConsumerPort, ConsumerSettings, KafkaPort, ProducerPort, TransactionPort } from '../../runtime/kafka.ts';
import type { EventName, EventTypes } from '../../topology/index.ts';

/**
 * The runner's Kafka ports in memory, for its unit tests: a test delivers batches by hand, and sees
 * what each transaction sent and whether it committed or aborted. Integration tests use the broker.
 */
export interface Record {
  key: Buffer;
  /** Null for a tombstone. */
  value: Buffer | null;
  headers: IHeaders;
}

export class FakeTransaction implements TransactionPort {
  readonly sent: { topic: string; messages: Record[] }[] = [];
  offsets: { partition: number; offset: string }[] = [];
  state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(private readonly producer: FakeProducer) {}

  async send(record: { topic: string; messages: Record[] }): Promise<unknown> {
    this.producer.kafka.failNext('send');
    this.sent.push({ topic: record.topic, messages: record.messages });
    return [];
  }

  async sendOffsets(o: { topics: { partitions: { partition: number; offset: string }[] }[] }): Promise<void> {
    this.producer.kafka.failNext('sendOffsets');
    this.offsets = o.topics.flatMap((t) => t.partitions);
  }

  async commit(): Promise<void> {
    this.producer.kafka.failNext('commit');
    this.state = 'committed';
    // The coordinator moved after writing the commit: the client hears an error, the transaction stands.
    this.producer.kafka.failNext('afterCommit');
  }

  async abort(): Promise<void> {
    // A transaction the coordinator already committed cannot be aborted.
    if (this.state === 'committed') throw new Error('transaction already committed');
    this.state = 'aborted';
  }
}

export class FakeProducer implements ProducerPort {
  /** Every transaction begun, including the empty ones a runner begins and aborts to fence a partition. */
  readonly begun: FakeTransaction[] = [];
  connected = false;

  constructor(readonly kafka: FakeKafka, readonly transactionalId: string) {}

  async connect(): Promise<void> {
    this.connected = true;
  }

  async disconnect(): Promise<void> {
    this.connected = false;
  }

  async transaction(): Promise<TransactionPort> {
    const txn = new FakeTransaction(this);
    this.begun.push(txn);
    return txn;
  }

  /** The transactions that sent something or committed offsets. */
  get transactions(): FakeTransaction[] {
    return this.begun.filter((t) => t.sent.length > 0 || t.offsets.length > 0 || t.state === 'committed');
  }

  /** Empty transactions begun and aborted: the fencing of a partition's previous owner. */
  get fences(): number {
    return this.begun.filter((t) => t.sent.length === 0 && t.offsets.length === 0 && t.state === 'aborted').length;
  }
}

export class FakeConsumer implements ConsumerPort {
  eachBatch: ((payload: BatchPort) => Promise<void>) | undefined;
  paused = false;
  disconnected = false;
  private readonly crashListeners: ((e: { error: Error; restart: boolean }) => void)[] = [];
  private readonly joinListeners: ((e: { partitions: number[] }) => void)[] = [];
  private readonly heartbeatListeners: (() => void)[] = [];

  constructor(readonly settings: ConsumerSettings) {}

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  async subscribe(): Promise<void> {}
  async run(o: { eachBatch: (payload: BatchPort) => Promise<void> }): Promise<void> {
    this.eachBatch = o.eachBatch;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  onCrash(listener: (e: { error: Error; restart: boolean }) => void): void {
    this.crashListeners.push(listener);
  }
  onGroupJoin(listener: (e: { partitions: number[] }) => void): void {
    this.joinListeners.push(listener);
  }
  onHeartbeat(listener: () => void): void {
    this.heartbeatListeners.push(listener);
  }

  join(partitions: number[]): void {
    for (const l of this.joinListeners) l({ partitions });
  }

  /** The consumer's own heartbeat, as kafkajs sends it between fetches. */
  beat(): void {
    for (const l of this.heartbeatListeners) l();
  }

  crash(error: Error, restart: boolean): void {
    for (const l of this.crashListeners) l({ error, restart });
  }

  /**
   * Hands one batch to the runner. `stale` is read on every check, so a test can revoke the partition
   * in the middle of processing; the resolved offsets are returned.
   */
  async deliver(partition: number, messages: KafkaMessage[], o: { stale?: () => boolean } = {}): Promise<string[]> {
    if (!this.eachBatch) throw new Error('the runner has not called run()');
    const resolved: string[] = [];
    await this.eachBatch({
      batch: { topic: 'input', partition, highWatermark: String(Number(messages[messages.length - 1]?.offset ?? '0') + 1), messages },
      heartbeat: async () => { for (const l of this.heartbeatListeners) l(); },
      isRunning: () => !this.disconnected,
      isStale: o.stale ?? (() => false),
      resolveOffset: (offset) => void resolved.push(offset),
    });
    return resolved;
  }
}

type FailurePoint = 'send' | 'sendOffsets' | 'commit' | 'afterCommit';

export class FakeKafka implements KafkaPort {
  readonly consumers: FakeConsumer[] = [];
  readonly producers: FakeProducer[] = [];
  private readonly failures: { point: FailurePoint; error: Error }[] = [];

  consumer(settings: ConsumerSettings): ConsumerPort {
    const c = new FakeConsumer(settings);
    this.consumers.push(c);
    return c;
  }

  transactionalProducer(transactionalId: string): ProducerPort {
    const p = new FakeProducer(this, transactionalId);
    this.producers.push(p);
    return p;
  }

  /** Offsets of committed transactions, as the group coordinator would report them. */
  async committedOffset(_groupId: string, _topic: string, partition: number): Promise<bigint> {
    const offsets = this.producers.flatMap((p) => p.transactions).filter((t) => t.state === 'committed').flatMap((t) => t.offsets).filter((o) => o.partition === partition);
    return offsets.reduce((max, o) => (BigInt(o.offset) > max ? BigInt(o.offset) : max), -1n);
  }

  /** Every output topic has this many partitions (the runner groups a transaction's sends by partition). */
  partitions = 3;

  async partitionCount(_topic: string): Promise<number> {
    return this.partitions;
  }

  /** The next time a transaction reaches `point`, it throws `error`. */
  failAt(point: FailurePoint, error: Error): void {
    this.failures.push({ point, error });
  }

  failNext(point: FailurePoint): void {
    const i = this.failures.findIndex((f) => f.point === point);
    if (i < 0) return;
    const [failure] = this.failures.splice(i, 1);
    if (failure) throw failure.error;
  }

  get latestConsumer(): FakeConsumer {
    const c = this.consumers[this.consumers.length - 1];
    if (!c) throw new Error('no consumer yet');
    return c;
  }

  /** Records of committed transactions on `topic`, decoded by the fake serde. */
  committed(topic: string): { key: string; value: unknown; headers: IHeaders }[] {
    return this.producers.flatMap((p) => p.transactions).filter((t) => t.state === 'committed')
      .flatMap((t) => t.sent.filter((s) => s.topic === topic).flatMap((s) => s.messages))
      .map((m) => ({ key: m.key.toString(), value: m.value === null ? null : (JSON.parse(m.value.toString()) as unknown), headers: m.headers }));
  }
}

/**
 * JSON in place of Avro: the runner's serde contract without a registry. `registryDown` makes every
 * call fail as an unreachable registry would; bytes that are not JSON are poison.
 */
export class FakeSerde implements SerdePort {
  registryDown = false;

  async decode<E extends EventName>(_event: E, bytes: Buffer | null): Promise<EventTypes[E]> {
    this.check();
    try {
      const value: EventTypes[E] = JSON.parse((bytes ?? Buffer.alloc(0)).toString('utf8'));
      return value;
    } catch (cause) {
      throw new SerdeError('PH_SERDE_DECODE', `not JSON: ${(cause as Error).message}`, { cause });
    }
  }

  async decodeKey(bytes: Buffer | null): Promise<string | null> {
    return bytes?.toString('utf8') ?? null;
  }

  async encodeKey(_event: EventName, key: string): Promise<Buffer> {
    this.check();
    return Buffer.from(key);
  }

  async encodeValue(_event: EventName, value: unknown): Promise<Buffer> {
    this.check();
    return Buffer.from(JSON.stringify(value, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
  }

  private check(): void {
    if (this.registryDown) throw new SerdeError('PH_SERDE_REGISTRY_UNAVAILABLE', 'registry down (fake)', { transient: true });
  }
}

export function message(offset: number, value: unknown, key = `k${offset}`): KafkaMessage {
  return { key: Buffer.from(key), value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), offset: String(offset), timestamp: '0', attributes: 0, headers: {} };
}
