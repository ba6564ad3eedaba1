import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka, Producer } from 'kafkajs';
import type { EventName } from '../topology/index.ts';
import { encodeOutputs, mergeByTopic, producerConfig, TRACE_HEADER, type Encoded } from './kafka.ts';
import type { Output } from './processor.ts';
import type { Serde } from './serde.ts';

/** Records per send: bounds one request's size and the memory a large ingest holds at once. */
const SEND_BATCH = 500;

/**
 * A source's producer (ingest today, the API's generation jobs next): plain idempotent sends, each event
 * keyed and given a fresh trace id, no transaction because there is no input offset to commit with it.
 */
export class EventSource {
  private constructor(private readonly producer: Producer, private readonly serde: Serde, private readonly prefix: string) {}

  static async open(kafka: Kafka, serde: Serde, prefix: string): Promise<EventSource> {
    const producer = kafka.producer(producerConfig({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    return new EventSource(producer, serde, prefix);
  }

  async send<O extends EventName>(outputs: readonly Output<O>[]): Promise<void> {
    for (let i = 0; i < outputs.length; i += SEND_BATCH) {
      const groups: Encoded[] = [];
      for (const out of outputs.slice(i, i + SEND_BATCH)) groups.push(await encodeOutputs(this.serde, this.prefix, [out], { [TRACE_HEADER]: randomUUID() }));
      await this.producer.sendBatch({ acks: -1, topicMessages: [...mergeByTopic(groups)].map(([topic, messages]) => ({ topic, messages })) });
    }
  }

  /** A tombstone (the key, no value) on the event's topic: the keyed entity is deleted, for every consumer of the topic. */
  async sendTombstone(event: EventName, key: string): Promise<void> {
    const encoded = await encodeOutputs(this.serde, this.prefix, [{ event, key, value: null }], { [TRACE_HEADER]: randomUUID() });
    for (const [topic, messages] of encoded) await this.producer.send({ topic, messages, acks: -1 });
  }

  /** Records already encoded (a dead letter's original bytes, say) to one topic, in the same bounded batches. */
  async sendRecords(topic: string, records: readonly { key: Buffer | null; value: Buffer; headers: IHeaders }[]): Promise<void> {
    for (let i = 0; i < records.length; i += SEND_BATCH) await this.producer.send({ topic, messages: records.slice(i, i + SEND_BATCH), acks: -1 });
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}
