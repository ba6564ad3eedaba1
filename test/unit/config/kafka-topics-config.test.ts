import { describe, expect, it } from 'vitest';
import { loadConfig, localKafkaNodes } from '../../../config/index.ts';

describe('topic settings', () => {
  it('leave replication factor and min ISR to the cluster unless set', () => {
    expect(loadConfig({})).toMatchObject({ partitions: 3, replicationFactor: null, minInsyncReplicas: null });
    expect(loadConfig({ PERSONAHUB_REPLICATION_FACTOR: '3', PERSONAHUB_MIN_INSYNC_REPLICAS: '2' })).toMatchObject({ replicationFactor: 3, minInsyncReplicas: 2 });
  });

  it('refuse a min ISR above the replication factor (every acks=all write would fail)', () => {
    expect(() => loadConfig({ PERSONAHUB_REPLICATION_FACTOR: '2', PERSONAHUB_MIN_INSYNC_REPLICAS: '3' }))
      .toThrow(/PERSONAHUB_MIN_INSYNC_REPLICAS=3 is above PERSONAHUB_REPLICATION_FACTOR=2/);
  });
});

describe('local Kafka nodes', () => {
  it('interleave broker and controller ports two by two from the first node\'s', () => {
    expect(localKafkaNodes({ kafkaPort: 19092, kafkaControllerPort: 19093, kafkaNodes: 3 })).toEqual([
      { nodeId: 1, port: 19092, controllerPort: 19093 }, { nodeId: 2, port: 19094, controllerPort: 19095 }, { nodeId: 3, port: 19096, controllerPort: 19097 },
    ]);
  });

  it('put every node in the default bootstrap list, and only the one node by default', () => {
    expect(loadConfig({}).kafkaBrokers).toBe('127.0.0.1:19092');
    expect(loadConfig({ PERSONAHUB_KAFKA_NODES: '3', PERSONAHUB_KAFKA_PORT: '22000', PERSONAHUB_KAFKA_CONTROLLER_PORT: '22001' }).kafkaBrokers)
      .toBe('127.0.0.1:22000,127.0.0.1:22002,127.0.0.1:22004');
    // An explicit list wins.
    expect(loadConfig({ PERSONAHUB_KAFKA_NODES: '3', PERSONAHUB_KAFKA_BROKERS: 'kafka:9092' }).kafkaBrokers).toBe('kafka:9092');
  });

  it('allow odd counts only, named as such', () => {
    expect(() => loadConfig({ PERSONAHUB_KAFKA_NODES: '2' })).toThrow(/PERSONAHUB_KAFKA_NODES="2": allowed values are "1", "3", "5"/);
  });

  it('refuse ports that collide between nodes, saying how to choose them', () => {
    expect(() => loadConfig({ PERSONAHUB_KAFKA_NODES: '3', PERSONAHUB_KAFKA_PORT: '22000', PERSONAHUB_KAFKA_CONTROLLER_PORT: '22002' }))
      .toThrow(/port 22002 is taken twice: choose PERSONAHUB_KAFKA_PORT and PERSONAHUB_KAFKA_CONTROLLER_PORT an odd distance apart/);
    expect(() => loadConfig({ PERSONAHUB_KAFKA_NODES: '3', PERSONAHUB_KAFKA_PORT: '65534', PERSONAHUB_KAFKA_CONTROLLER_PORT: '65535' })).toThrow(/beyond 65535/);
    // One node: the same two ports are fine as before.
    expect(loadConfig({ PERSONAHUB_KAFKA_PORT: '22000', PERSONAHUB_KAFKA_CONTROLLER_PORT: '22002' }).kafkaNodes).toBe(1);
  });
});
