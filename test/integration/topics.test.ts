import { spawn } from 'node:child_process';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { deleteByNamePrefix, type TopicsResult } from '../../runtime/admin.ts';
import { events, topicName, type EventName } from '../../topology/index.ts';
import { until } from '../helpers/faults.ts';
import { personahubEnv, testPrefix } from '../helpers/pipeline.ts';

/**
 * `personahub topics init` against the real broker, as a CLI: it creates what is missing, reports every topic
 * whose settings differ from the topology and configuration (a table by default, JSON with --json; exit 2 with
 * --strict, else 0), raises partitions only when asked, never lowers them, and refuses a replication factor
 * the cluster cannot hold, naming the setting. Each case has topics of its own (its own prefix).
 */

const DAY_MS = 24 * 3600_000;
const TIMEOUT_MS = 120_000;
const config = loadConfig();
const admin = new kafkajs.Kafka({ clientId: 'topics-test', brokers: config.kafkaBrokers.split(','), logLevel: kafkajs.logLevel.NOTHING }).admin();
const prefixes: string[] = [];

function newPrefix(): string {
  const prefix = testPrefix('tt');
  prefixes.push(prefix);
  return prefix;
}

const topicsOf = (prefix: string) => (Object.keys(events) as EventName[]).map((e) => topicName(prefix, e));

function topicsInit(prefix: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'topics', 'init', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...personahubEnv(), PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function partitionCounts(prefix: string): Promise<number[]> {
  const { topics } = await admin.fetchTopicMetadata({ topics: topicsOf(prefix) });
  return topicsOf(prefix).map((name) => topics.find((t) => t.name === name)?.partitions.length ?? 0);
}

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  const existing = new Set(await admin.listTopics());
  const ours = prefixes.flatMap(topicsOf).filter((t) => existing.has(t));
  if (ours.length > 0) await admin.deleteTopics({ topics: ours });
  await admin.disconnect();
});

describe('topics init on an existing cluster', () => {
  it('creates what is missing and reports what differs: JSON and exit 2 with --strict, a table and exit 0 without', async () => {
    const prefix = newPrefix();
    // Made by hand with wrong settings: fewer partitions, another min ISR, retention and cleanup policy; a short-lived DLQ.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topicName(prefix, 'seed'), numPartitions: 2, replicationFactor: 1, configEntries: [
          { name: 'retention.ms', value: String(DAY_MS) }, { name: 'cleanup.policy', value: 'compact' }, { name: 'min.insync.replicas', value: '2' },
        ] },
        { topic: topicName(prefix, 'dlq'), numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'min.insync.replicas', value: '1' }] },
      ],
    });

    const settings = { PERSONAHUB_PARTITIONS: '3', PERSONAHUB_REPLICATION_FACTOR: '1', PERSONAHUB_MIN_INSYNC_REPLICAS: '1' };
    const strict = await topicsInit(prefix, ['--json', '--strict'], settings);
    expect(strict.code, strict.stderr).toBe(2);
    const report = JSON.parse(strict.stdout) as TopicsResult & { subjects: number };
    expect(report.created.sort()).toEqual(topicsOf(prefix).filter((t) => !t.endsWith('.seed.v1') && !t.endsWith('.dlq.v1')).sort());
    expect(report.subjects).toBe(2 * topicsOf(prefix).length);
    const differing = Object.fromEntries(report.topics.filter((t) => t.differences.length > 0).map((t) => [t.event, t.differences.map((d) => [d.setting, d.have, d.want])]));
    expect(differing).toEqual({
      seed: [['partitions', '2', '3'], ['min.insync.replicas', '2', '1'], ['retention.ms', String(DAY_MS), String(7 * DAY_MS)], ['cleanup.policy', 'compact', 'delete']],
      dlq: [['retention.ms', '3600000', String(30 * DAY_MS)]],
    });
    expect(report.differences).toBe(5);
    // Reported, never changed: the hand-made topics are as they were.
    expect((await partitionCounts(prefix))[0]).toBe(2);

    const table = await topicsInit(prefix, [], settings);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${prefix}\\.seed\\.v1\\s+DIFFERS\\s+2 \\(want 3\\)\\s+1\\s+2 \\(want 1\\)\\s+${DAY_MS} \\(want ${7 * DAY_MS}\\)\\s+compact \\(want delete\\)$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${prefix}\\.draft\\.v1\\s+ok\\s+3\\s+1\\s+1\\s+${7 * DAY_MS}\\s+delete$`, 'm'));
    expect(table.stdout).toContain('0 created, 0 raised, 5 difference(s) left');
    expect(table.stdout).toContain(`${prefix}.seed.v1 partitions: 2, want 3. Fix: run \`personahub topics init --raise-partitions\``);
    // The warning names the topics on stderr too, for whoever reads only the logs.
    expect(table.stderr).toContain('some topics differ from the topology and configuration');
  }, TIMEOUT_MS);

  it('raises partitions when asked, and never lowers them', async () => {
    const prefix = newPrefix();
    expect((await topicsInit(prefix, ['--json'])).code).toBe(0);
    expect(await partitionCounts(prefix)).toEqual(topicsOf(prefix).map(() => config.partitions));

    const more = config.partitions + 2;
    const notAsked = await topicsInit(prefix, ['--json'], { PERSONAHUB_PARTITIONS: String(more) });
    expect((JSON.parse(notAsked.stdout) as TopicsResult).differences).toBe(topicsOf(prefix).length);
    expect(await partitionCounts(prefix)).toEqual(topicsOf(prefix).map(() => config.partitions));

    const raised = await topicsInit(prefix, ['--json', '--raise-partitions', '--strict'], { PERSONAHUB_PARTITIONS: String(more) });
    expect(raised.code, raised.stderr).toBe(0);
    const result = JSON.parse(raised.stdout) as TopicsResult;
    expect({ raised: result.raised.sort(), differences: result.differences }).toEqual({ raised: topicsOf(prefix).sort(), differences: 0 });
    expect(await partitionCounts(prefix)).toEqual(topicsOf(prefix).map(() => more));

    // Back to fewer: reported (Kafka cannot lower a partition count), and nothing is lowered.
    const fewer = await topicsInit(prefix, ['--json', '--raise-partitions']);
    const after = JSON.parse(fewer.stdout) as TopicsResult;
    expect(after.raised).toEqual([]);
    expect(after.topics.map((t) => t.differences.map((d) => [d.setting, d.have, d.want]))).toEqual(topicsOf(prefix).map(() => [['partitions', String(more), String(config.partitions)]]));
    expect(after.topics[0]?.differences[0]?.fix).toContain('never lowers');
    expect(await partitionCounts(prefix)).toEqual(topicsOf(prefix).map(() => more));
  }, TIMEOUT_MS);

  it('refuses a replication factor the cluster cannot hold, naming the setting', async () => {
    const prefix = newPrefix();
    const brokers = (await admin.describeCluster()).brokers.length;
    const r = await topicsInit(prefix, [], { PERSONAHUB_REPLICATION_FACTOR: String(brokers + 1), PERSONAHUB_MIN_INSYNC_REPLICAS: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`personahub: PH_KAFKA_TOPICS: replication factor ${brokers + 1} needs ${brokers + 1} brokers up`);
    expect(r.stderr).toContain('PERSONAHUB_REPLICATION_FACTOR');
    expect((await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`))).toEqual([]);
  }, TIMEOUT_MS);
});

describe('deleting what a run left behind', () => {
  it('deletes the topics and idle groups under a name prefix, keeps a group with a member and everything else', async () => {
    const prefix = newPrefix();
    const other = newPrefix();
    const kafka = new kafkajs.Kafka({ clientId: 'topics-test', brokers: config.kafkaBrokers.split(','), logLevel: kafkajs.logLevel.NOTHING });
    // Admin clients of this case's own: a client whose metadata names a deleted topic fails to refresh it.
    const setup = kafka.admin();
    await setup.connect();
    await setup.createTopics({ waitForLeaders: true, topics: [...topicsOf(prefix), topicName(other, 'seed')].map((topic) => ({ topic, numPartitions: 1 })) });
    // An idle group with committed offsets (what a stopped stage leaves), and one whose consumer still runs
    // (on a topic that stays: a consumer whose topic is deleted under it fails).
    await setup.setOffsets({ groupId: `${prefix}.idle`, topic: topicName(prefix, 'seed'), partitions: [{ partition: 0, offset: '0' }] });
    await setup.disconnect();
    const live = kafka.consumer({ groupId: `${prefix}.live` });
    await live.connect();
    try {
      await live.subscribe({ topics: [topicName(other, 'seed')] });
      let joined = false;
      live.on(live.events.GROUP_JOIN, () => { joined = true; });
      await live.run({ eachMessage: async () => {} });
      await until(() => joined, 60_000, 'the live consumer joined its group');

      const deleted = await deleteByNamePrefix(kafka, `${prefix}.`);
      expect(deleted).toEqual({ topics: topicsOf(prefix).length, groups: 1 });
      const fresh = kafka.admin();
      await fresh.connect();
      try {
        const topics = await fresh.listTopics();
        expect(topics.filter((t) => t.startsWith(`${prefix}.`))).toEqual([]);
        expect(topics).toContain(topicName(other, 'seed'));
        const groups = (await fresh.listGroups()).groups.map((g) => g.groupId);
        expect(groups).not.toContain(`${prefix}.idle`);
        expect(groups).toContain(`${prefix}.live`);
      } finally {
        await fresh.disconnect();
      }
    } finally {
      await live.disconnect();
    }
    // Once its member has left, a sweep by the shared mark takes the last group too.
    expect(await deleteByNamePrefix(kafka, prefix)).toEqual({ topics: 0, groups: 1 });
  }, TIMEOUT_MS);
});
