import type { Kafka, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../core/errors.ts';
import { PipelineObserver } from '../../../runtime/observer.ts';
import type { Serde } from '../../../runtime/serde.ts';
import { topicName } from '../../../topology/index.ts';

/**
 * The observer over a fake kafkajs consumer: what it counts when kafkajs redelivers after a restart,
 * and that it replaces a consumer kafkajs gave up on (a broker restart must not leave it blind).
 */
type Listener = (e: { payload: { error: Error; restart: boolean } }) => void;

class FakeConsumer {
  readonly events = { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' } as const;
  readonly listeners = new Map<string, Listener[]>();
  eachMessage: ((p: { topic: string; partition: number; message: KafkaMessage }) => Promise<void>) | undefined;
  disconnected = false;

  constructor(private readonly failConnect: boolean) {}

  on(event: string, listener: Listener): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }

  async connect(): Promise<void> {
    if (this.failConnect) throw Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSConnectionError' });
  }

  async subscribe(): Promise<void> {}

  async run(o: { eachMessage: FakeConsumer['eachMessage'] }): Promise<void> {
    this.eachMessage = o.eachMessage;
    // Joins at once, as kafkajs does once the broker answers.
    for (const l of this.listeners.get(this.events.GROUP_JOIN) ?? []) l({ payload: { error: new Error(), restart: false } });
  }

  async disconnect(): Promise<void> {
    this.disconnected = true;
  }

  crash(restart: boolean): void {
    for (const l of this.listeners.get(this.events.CRASH) ?? []) l({ payload: { error: new Error('Failed to find group coordinator'), restart } });
  }

  deliver(topic: string, offset: number, value: unknown): Promise<void> {
    const message = { key: Buffer.from(`k${offset}`), value: Buffer.from(JSON.stringify(value)), offset: String(offset), headers: {} } as unknown as KafkaMessage;
    return this.eachMessage?.({ topic, partition: 0, message }) ?? Promise.resolve();
  }
}

function setup(opts: { failConnects?: number } = {}) {
  const consumers: FakeConsumer[] = [];
  const groups: string[] = [];
  let failConnects = opts.failConnects ?? 0;
  const kafka = {
    consumer({ groupId }: { groupId: string }) {
      groups.push(groupId);
      // The first consumer connects; the replacements fail `failConnects` times (the broker still down).
      const c = new FakeConsumer(consumers.length > 0 && failConnects-- > 0);
      consumers.push(c);
      return c;
    },
  } as unknown as Kafka;
  let registryDown = false;
  const serde = {
    decodeKey: async (b: Buffer | null) => b?.toString() ?? null,
    decode: async (_event: string, b: Buffer | null) => {
      if (registryDown) throw new PersonaHubError('PH_SERDE_REGISTRY_UNAVAILABLE', 'registry down', { transient: true, dependency: 'registry' });
      return JSON.parse(b?.toString() ?? 'null') as unknown;
    },
  } as unknown as Serde;
  const observer = new PipelineObserver(kafka, serde, 'p');
  return { observer, consumers, groups, latest: () => consumers[consumers.length - 1] as FakeConsumer, setRegistryDown: (v: boolean) => { registryDown = v; } };
}

const SEEDS = topicName('p', 'seed');
const seed = (id: string) => ({ id, createdAt: 1 });
const until = async (check: () => boolean): Promise<void> => {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
};

describe('PipelineObserver', () => {
  it('counts a record once when a restarted consumer delivers it again from the last committed offset', async () => {
    const { observer, latest } = setup();
    await observer.start();
    await latest().deliver(SEEDS, 0, seed('a'));
    await latest().deliver(SEEDS, 1, seed('b'));
    // kafkajs restarted the consumer; the offsets it had committed were behind what was counted.
    await latest().deliver(SEEDS, 0, seed('a'));
    await latest().deliver(SEEDS, 1, seed('b'));
    await latest().deliver(SEEDS, 2, seed('c'));
    expect(observer.records.seed).toBe(3);
    expect(observer.seen.seed.size).toBe(3);
    await observer.stop();
  });

  it('replaces a consumer kafkajs will not restart, in the same group, until one connects', async () => {
    const { observer, consumers, groups, latest } = setup({ failConnects: 2 });
    await observer.start();
    await latest().deliver(SEEDS, 0, seed('a'));
    const first = latest();
    first.crash(false);
    await until(() => consumers.length === 4 && latest().eachMessage !== undefined);
    expect(first.disconnected).toBe(true);
    // Two replacements failed to connect and were let go; the third runs, in the observer's one group.
    expect(consumers.slice(1, 3).every((c) => c.disconnected)).toBe(true);
    expect(new Set(groups).size).toBe(1);
    expect(observer.consumerRestarts).toBe(1);
    await latest().deliver(SEEDS, 0, seed('a'));
    await latest().deliver(SEEDS, 1, seed('b'));
    expect(observer.records.seed).toBe(2);
    // kafkajs restarting it by itself needs nothing from the observer.
    latest().crash(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(consumers).toHaveLength(4);
    await observer.stop();
  });

  it('throws on a registry outage so the record is delivered again, instead of writing it off as undecodable', async () => {
    const { observer, latest, setRegistryDown } = setup();
    await observer.start();
    setRegistryDown(true);
    await expect(latest().deliver(SEEDS, 0, seed('a'))).rejects.toThrow('registry down');
    setRegistryDown(false);
    await latest().deliver(SEEDS, 0, seed('a'));
    expect(observer.undecodable).toEqual([]);
    expect(observer.records.seed).toBe(1);
    await observer.stop();
  });
});
