import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { groupByPartition, partitionOf } from '../../../runtime/kafka.ts';

const key = (i: number) => Buffer.from(`persona-${i}`);

describe('groupByPartition', () => {
  it('puts each record in the partition kafkajs\' producer would, one group per partition, produce order kept', () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ key: key(i), n: i }));
    const groups = groupByPartition('t', records, 3);
    expect(groups.length).toBe(3);
    expect(groups.flat().map((r) => r.n).sort((a, b) => a - b)).toEqual(records.map((r) => r.n));
    // The producer's own partitioner, given the cluster's metadata (leaders differ, one partition leaderless).
    const producer = Partitioners.DefaultPartitioner();
    const metadata = [0, 1, 2].map((partitionId) => ({ partitionErrorCode: 0, partitionId, leader: partitionId === 2 ? -1 : partitionId + 1, replicas: [1], isr: [1] }));
    for (const group of groups) {
      const where = new Set(group.map((r) => producer({ topic: 't', partitionMetadata: metadata, message: { key: r.key, value: null } })));
      expect(where.size).toBe(1);
      expect(group.map((r) => r.n)).toEqual([...group.map((r) => r.n)].sort((a, b) => a - b));
    }
  });

  it('follows the partition count: one partition, one group; more partitions spread the same keys', () => {
    const records = Array.from({ length: 16 }, (_, i) => ({ key: key(i) }));
    expect(groupByPartition('t', records, 1)).toHaveLength(1);
    expect(new Set(records.map((r) => partitionOf('t', r.key, 12))).size).toBeGreaterThan(3);
  });
});
