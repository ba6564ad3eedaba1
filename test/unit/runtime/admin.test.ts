import { describe, expect, it } from 'vitest';
import { diffTopic, renderTopicsTable, wantedTopics, type ObservedTopic, type TopicReport, type TopicsResult, type WantedTopic } from '../../../runtime/admin.ts';
import { events } from '../../../topology/index.ts';

const settings = { partitions: 3, replicationFactor: 3, minInsyncReplicas: 2 };
const [seed, , , validated] = wantedTopics('ph', settings) as [WantedTopic, WantedTopic, WantedTopic, WantedTopic];

/** The topic exactly as wanted, with `change` applied. */
function observed(want: WantedTopic, change: Partial<ObservedTopic> = {}): ObservedTopic {
  return {
    topic: want.topic,
    partitions: want.partitions,
    replicasPerPartition: Array<number>(want.partitions).fill(want.replicationFactor),
    configs: { ...want.configs },
    leaderless: 0,
    ...change,
  };
}

describe('wantedTopics', () => {
  it('gives every event its topic, with the cluster-wide settings and the topology\'s retention and cleanup policy', () => {
    const wanted = wantedTopics('ph', settings);
    expect(wanted.map((t) => t.topic)).toEqual(Object.keys(events).map((e) => `ph.${e}.v1`));
    expect(seed).toEqual({
      topic: 'ph.seed.v1', event: 'seed', partitions: 3, replicationFactor: 3,
      configs: { 'min.insync.replicas': '2', 'retention.ms': String(7 * 24 * 3600_000), 'cleanup.policy': 'delete' },
    });
    expect(validated.configs['retention.ms']).toBe(String(30 * 24 * 3600_000));
  });
});

describe('diffTopic', () => {
  it('finds nothing when the topic is as wanted', () => {
    expect(diffTopic(seed, observed(seed))).toEqual([]);
  });

  it('reports too few partitions, with the flag that raises them', () => {
    const [d] = diffTopic(seed, observed(seed, { partitions: 2, replicasPerPartition: [3, 3] }));
    expect(d).toMatchObject({ setting: 'partitions', want: '3', have: '2', fix: expect.stringContaining('--raise-partitions') });
  });

  it('reports too many partitions as something Kafka cannot lower', () => {
    const [d] = diffTopic(seed, observed(seed, { partitions: 6, replicasPerPartition: [3, 3, 3, 3, 3, 3] }));
    expect(d).toMatchObject({ setting: 'partitions', want: '3', have: '6', fix: expect.stringContaining('never lowers') });
    expect(d?.fix).toContain('PERSONAHUB_PARTITIONS=6');
  });

  it('reports a replication factor that differs on any partition, showing the range found', () => {
    expect(diffTopic(seed, observed(seed, { replicasPerPartition: [1, 1, 1] }))).toEqual([
      { setting: 'replication.factor', want: '3', have: '1', fix: expect.stringContaining('kafka-reassign-partitions') },
    ]);
    expect(diffTopic(seed, observed(seed, { replicasPerPartition: [3, 2, 3] }))[0]).toMatchObject({ setting: 'replication.factor', have: '2-3' });
  });

  it('reports min ISR, retention and cleanup policy, each with the kafka-configs command that fixes it', () => {
    const diffs = diffTopic(seed, observed(seed, { configs: { 'min.insync.replicas': '1', 'retention.ms': '86400000', 'cleanup.policy': 'compact' } }));
    expect(diffs.map((d) => [d.setting, d.have, d.want])).toEqual([
      ['min.insync.replicas', '1', '2'],
      ['retention.ms', '86400000', String(7 * 24 * 3600_000)],
      ['cleanup.policy', 'compact', 'delete'],
    ]);
    expect(diffs[1]?.fix).toBe(`kafka-configs.sh --alter --entity-type topics --entity-name ph.seed.v1 --add-config retention.ms=${7 * 24 * 3600_000}`);
  });

  it('reads a cleanup policy as a set (compact,delete is delete,compact), and brackets a list in the fix', () => {
    const want = { ...seed, configs: { ...seed.configs, 'cleanup.policy': 'compact,delete' } };
    expect(diffTopic(want, observed(want, { configs: { ...want.configs, 'cleanup.policy': 'delete, compact' } }))).toEqual([]);
    expect(diffTopic(want, observed(want, { configs: { ...want.configs, 'cleanup.policy': 'delete' } }))[0]?.fix).toContain('--add-config cleanup.policy=[compact,delete]');
  });

  it('reports a setting the broker did not describe as unknown rather than as equal', () => {
    expect(diffTopic(seed, observed(seed, { configs: { 'retention.ms': seed.configs['retention.ms'], 'cleanup.policy': 'delete' } }))).toEqual([
      { setting: 'min.insync.replicas', want: '2', have: '(unknown)', fix: expect.any(String) },
    ]);
  });
});

describe('renderTopicsTable', () => {
  it('shows the cluster\'s value in each cell, the wanted one beside it where they differ, and every fix below', () => {
    const report = (want: WantedTopic, have: ObservedTopic, action: TopicReport['action']): TopicReport => ({ topic: want.topic, event: want.event, action, want, have, differences: diffTopic(want, have) });
    const topics = [
      report(seed, observed(seed), 'created'),
      report(validated, observed(validated, { configs: { ...validated.configs, 'retention.ms': '1000' } }), 'raised'),
    ];
    const result: TopicsResult = { created: [seed.topic], raised: [validated.topic], topics, differences: 1 };
    const lines = renderTopicsTable(result).split('\n');
    expect(lines[0]).toMatch(/^TOPIC\s+STATE\s+PARTITIONS\s+REPLICAS\s+MIN\.ISR\s+RETENTION\.MS\s+CLEANUP$/);
    expect(lines[1]).toMatch(/^ph\.seed\.v1\s+created\s+3\s+3\s+2\s+604800000\s+delete$/);
    expect(lines[2]).toMatch(/^ph\.validated\.v1\s+DIFFERS\s+3\s+3\s+2\s+1000 \(want 2592000000\)\s+delete$/);
    expect(lines.slice(4)).toEqual([
      '1 created, 1 raised, 1 difference(s) left (topics init changes nothing but missing topics and, when asked, partitions):',
      '  ph.validated.v1 retention.ms: 1000, want 2592000000. Fix: kafka-configs.sh --alter --entity-type topics --entity-name ph.validated.v1 --add-config retention.ms=2592000000',
    ]);
  });
});
