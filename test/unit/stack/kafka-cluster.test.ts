import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../core/logger.ts';
import { kafkaPaths, kafkaServices, renderServerProperties } from '../../../stack/kafka.ts';
import { StackContext } from '../../../stack/service.ts';
import type { StackOptions } from '../../../stack/types.ts';

function parse(props: string): Map<string, string> {
  return new Map(props.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const nodes = [
  { nodeId: 1, port: 22000, controllerPort: 22001 },
  { nodeId: 2, port: 22002, controllerPort: 22003 },
  { nodeId: 3, port: 22004, controllerPort: 22005 },
];

function options(kafka: StackOptions['kafka']): StackOptions {
  return {
    home: '/var/tmp/ph-x', cacheDir: '/var/tmp/ph-cache', kafka,
    registry: { port: 1, managementPort: 2 }, postgres: { port: 3, user: 'u', password: 'p', database: 'd' },
    readyTimeoutMs: 1000, logger: createLogger({ level: 'silent' }),
  };
}

describe('a three-node KRaft cluster', () => {
  const second = parse(renderServerProperties({ nodeId: 2, port: 22002, controllerPort: 22003, dataDir: '/d2', voters: nodes }));

  it('makes every node a broker and a voting controller on its own ports and data', () => {
    expect(second.get('process.roles')).toBe('broker,controller');
    expect(second.get('node.id')).toBe('2');
    expect(second.get('controller.quorum.voters')).toBe('1@127.0.0.1:22001,2@127.0.0.1:22003,3@127.0.0.1:22005');
    expect(second.get('listeners')).toBe('PLAINTEXT://127.0.0.1:22002,CONTROLLER://127.0.0.1:22003');
    expect(second.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:22002');
    expect(second.get('log.dirs')).toBe('/d2');
  });

  it('replicates internal topics 3 times with min ISR 2, and makes that the default for new topics', () => {
    for (const key of ['offsets.topic.replication.factor', 'transaction.state.log.replication.factor', 'share.coordinator.state.topic.replication.factor', 'default.replication.factor']) {
      expect(second.get(key), key).toBe('3');
    }
    for (const key of ['transaction.state.log.min.isr', 'share.coordinator.state.topic.min.isr', 'min.insync.replicas']) expect(second.get(key), key).toBe('2');
    expect(second.get('auto.create.topics.enable')).toBe('false');
  });

  it('keeps one replica everywhere on a single node', () => {
    const single = parse(renderServerProperties({ port: 19092, controllerPort: 19093, dataDir: '/d' }));
    expect(single.get('default.replication.factor')).toBe('1');
    expect(single.get('min.insync.replicas')).toBe('1');
    expect(single.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
  });

  it('runs one service per node, named kafka-<id>, with its own folder and one shared cluster id', () => {
    const services = kafkaServices(new StackContext(options({ port: 22000, controllerPort: 22001, nodes })));
    expect(services.map((s) => [s.name, s.port, s.ports])).toEqual([
      ['kafka-1', 22000, [22000, 22001]], ['kafka-2', 22002, [22002, 22003]], ['kafka-3', 22004, [22004, 22005]],
    ]);
    expect(kafkaPaths('/h', '/c', 2)).toMatchObject({ root: '/h/kafka-2', data: '/h/kafka-2/data', clusterId: '/h/kafka-cluster-id' });
  });

  it('keeps the single node as it was: one service `kafka` in <home>/kafka', () => {
    const services = kafkaServices(new StackContext(options({ port: 19092, controllerPort: 19093 })));
    expect(services.map((s) => [s.name, s.ports])).toEqual([['kafka', [19092, 19093]]]);
    expect(kafkaPaths('/h', '/c')).toMatchObject({ root: '/h/kafka', clusterId: '/h/kafka/cluster-id' });
  });

  it('refuses two nodes with one id', () => {
    expect(() => kafkaServices(new StackContext(options({ port: 1, controllerPort: 2, nodes: [nodes[0]!, { ...nodes[1]!, nodeId: 1 }] })))).toThrow(/node ids must differ/);
  });
});
