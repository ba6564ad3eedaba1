// Before kafkajs loads: its read_committed fix (see the module).
import './kafkajs-patches.ts';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { events, topicName, type EventName } from '../topology/index.ts';
import type { Serde } from './serde.ts';

// Node's CommonJS import sees only the first few of kafkajs' exports by name; this one comes through the default export.
const { ConfigResourceTypes } = kafkajs;

/**
 * `personahub topics init`: the topology's topics reconciled with the cluster, and every schema registered,
 * idempotently. Missing topics are created; partitions are raised when asked (never lowered: Kafka cannot);
 * every other difference between a topic and the topology (replication factor, min ISR, retention, cleanup
 * policy) is reported, never silently ignored and never changed behind the operator's back.
 *
 * Durability: every producer of the pipeline writes with acks=all (the runner's transactions, the seed source,
 * DLQ replay), so a record is acknowledged once `min.insync.replicas` replicas hold it; with 3 replicas and
 * min ISR 2 one broker may be down and nothing acknowledged is lost.
 */

/** The cluster-wide settings; unset ones fall back to the cluster's own defaults. */
export interface TopicsOptions {
  partitions: number;
  /** Null or absent: the cluster's `default.replication.factor`. */
  replicationFactor?: number | null;
  /** Null or absent: the cluster's `min.insync.replicas`. */
  minInsyncReplicas?: number | null;
  /** Add partitions to topics that have fewer than `partitions`. Moves keys to new partitions, so it is never implicit. */
  raisePartitions?: boolean;
}

/** The topic configs topics init owns, by their Kafka names. */
export const OWNED_CONFIGS = ['min.insync.replicas', 'retention.ms', 'cleanup.policy'] as const;
type OwnedConfig = (typeof OWNED_CONFIGS)[number];

export interface WantedTopic {
  topic: string;
  event: EventName;
  partitions: number;
  replicationFactor: number;
  configs: Record<OwnedConfig, string>;
}

/** A topic as the cluster has it. */
export interface ObservedTopic {
  topic: string;
  partitions: number;
  /** Replicas of each partition (the assignment, offline ones included). */
  replicasPerPartition: number[];
  /** Effective values, whatever their source (topic, broker or default); absent when the broker did not say. */
  configs: Partial<Record<OwnedConfig, string>>;
  /** Partitions without a leader just now (0 once the topic is usable). */
  leaderless: number;
}

export type TopicSetting = 'partitions' | 'replication.factor' | OwnedConfig;

export interface TopicDifference {
  setting: TopicSetting;
  want: string;
  have: string;
  /** What would bring the topic in line; topics init itself only ever raises partitions. */
  fix: string;
}

export interface TopicReport {
  topic: string;
  event: EventName;
  /** What topics init did to it. */
  action: 'created' | 'raised' | 'none';
  want: WantedTopic;
  /** After the action: for a created topic, what was asked. */
  have: ObservedTopic;
  /** Differences left after the action. */
  differences: TopicDifference[];
}

export interface TopicsResult {
  created: string[];
  raised: string[];
  topics: TopicReport[];
  /** Differences left over every topic: non-zero means the cluster is not what the topology and configuration ask. */
  differences: number;
}

/** The topology's topics with the resolved cluster-wide settings. */
export function wantedTopics(prefix: string, s: { partitions: number; replicationFactor: number; minInsyncReplicas: number }): WantedTopic[] {
  return (Object.keys(events) as EventName[]).map((event) => ({
    topic: topicName(prefix, event),
    event,
    partitions: s.partitions,
    replicationFactor: s.replicationFactor,
    configs: {
      'min.insync.replicas': String(s.minInsyncReplicas),
      'retention.ms': String(events[event].retentionMs),
      'cleanup.policy': events[event].cleanupPolicy,
    },
  }));
}

/** `compact,delete` and `delete,compact` are one policy. */
const normalizePolicy = (v: string): string => v.split(',').map((p) => p.trim()).filter(Boolean).sort().join(',');

function range(values: number[]): string {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  if (distinct.length === 0) return '0';
  return distinct.length === 1 ? String(distinct[0]) : `${distinct[0]}-${distinct[distinct.length - 1]}`;
}

/**
 * The differences between a topic as wanted and as observed, each with the fix an operator would apply.
 * Pure, so every case is unit tested without a broker.
 */
export function diffTopic(want: WantedTopic, have: ObservedTopic): TopicDifference[] {
  const out: TopicDifference[] = [];
  if (have.partitions < want.partitions) {
    out.push({ setting: 'partitions', want: String(want.partitions), have: String(have.partitions), fix: 'run `personahub topics init --raise-partitions` (keys then move to other partitions: per-key order across the change is not kept)' });
  } else if (have.partitions > want.partitions) {
    out.push({ setting: 'partitions', want: String(want.partitions), have: String(have.partitions), fix: `Kafka never lowers a topic's partitions: set PERSONAHUB_PARTITIONS=${have.partitions}, or recreate the topic` });
  }
  if (have.replicasPerPartition.some((r) => r !== want.replicationFactor)) {
    out.push({ setting: 'replication.factor', want: String(want.replicationFactor), have: range(have.replicasPerPartition), fix: 'reassign the replicas (kafka-reassign-partitions.sh); topics init does not move data' });
  }
  for (const name of OWNED_CONFIGS) {
    const wanted = want.configs[name];
    const actual = have.configs[name];
    const same = actual !== undefined && (name === 'cleanup.policy' ? normalizePolicy(actual) === normalizePolicy(wanted) : actual === wanted);
    if (!same) {
      out.push({ setting: name, want: wanted, have: actual ?? '(unknown)', fix: `kafka-configs.sh --alter --entity-type topics --entity-name ${want.topic} --add-config ${name}=${wanted.includes(',') ? `[${wanted}]` : wanted}` });
    }
  }
  return out;
}

/** The topics as the cluster has them: partition count and replicas from metadata, configs from DescribeConfigs. */
export async function observeTopics(admin: Admin, topics: readonly string[]): Promise<Map<string, ObservedTopic>> {
  const out = new Map<string, ObservedTopic>();
  if (topics.length === 0) return out;
  const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...topics] });
  const { resources } = await admin.describeConfigs({
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: [...OWNED_CONFIGS] })),
    includeSynonyms: false,
  });
  for (const m of metadata) {
    const resource = resources.find((r) => r.resourceName === m.name);
    const configs: Partial<Record<OwnedConfig, string>> = {};
    for (const e of resource?.configEntries ?? []) if ((OWNED_CONFIGS as readonly string[]).includes(e.configName)) configs[e.configName as OwnedConfig] = e.configValue;
    out.set(m.name, {
      topic: m.name,
      partitions: m.partitions.length,
      replicasPerPartition: [...m.partitions].sort((a, b) => a.partitionId - b.partitionId).map((p) => p.replicas.length),
      configs,
      leaderless: m.partitions.filter((p) => p.leader < 0).length,
    });
  }
  const absent = topics.filter((t) => !out.has(t));
  if (absent.length > 0) throw new PersonaHubError('PH_KAFKA_TOPICS', `no metadata yet for ${absent.join(', ')}`);
  return out;
}

/** The cluster's defaults for what is not configured: `default.replication.factor` and `min.insync.replicas` of a broker. */
async function clusterDefaults(admin: Admin): Promise<{ replicationFactor: number; minInsyncReplicas: number }> {
  const cluster = await admin.describeCluster();
  const broker = cluster.brokers[0];
  if (!broker) throw new PersonaHubError('PH_KAFKA_TOPICS', 'the cluster reports no brokers');
  const { resources } = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.BROKER, name: String(broker.nodeId), configNames: ['default.replication.factor', 'min.insync.replicas'] }],
    includeSynonyms: false,
  });
  const value = (name: string): number => {
    const v = Number(resources[0]?.configEntries.find((e) => e.configName === name)?.configValue);
    if (!Number.isInteger(v) || v < 1) {
      throw new PersonaHubError('PH_KAFKA_TOPICS', `broker ${broker.nodeId} did not give its ${name}; set PERSONAHUB_REPLICATION_FACTOR and PERSONAHUB_MIN_INSYNC_REPLICAS`);
    }
    return v;
  };
  return { replicationFactor: value('default.replication.factor'), minInsyncReplicas: value('min.insync.replicas') };
}

/** The configured settings, with the cluster's defaults for the unset ones, checked against each other. */
async function resolveSettings(admin: Admin, o: TopicsOptions): Promise<{ partitions: number; replicationFactor: number; minInsyncReplicas: number }> {
  const configured = (o.replicationFactor ?? null) !== null && (o.minInsyncReplicas ?? null) !== null;
  const cluster = configured ? null : await clusterDefaults(admin);
  const replicationFactor = o.replicationFactor ?? cluster?.replicationFactor ?? 1;
  const minInsyncReplicas = o.minInsyncReplicas ?? cluster?.minInsyncReplicas ?? 1;
  const source = (v: number | null | undefined, env: string, clusterName: string) => (v ?? null) === null ? `the cluster's ${clusterName}` : env;
  if (minInsyncReplicas > replicationFactor) {
    throw new PersonaHubError(
      'PH_KAFKA_TOPICS',
      `min.insync.replicas ${minInsyncReplicas} (${source(o.minInsyncReplicas, 'PERSONAHUB_MIN_INSYNC_REPLICAS', 'min.insync.replicas')}) is above the replication factor ${replicationFactor} ` +
        `(${source(o.replicationFactor, 'PERSONAHUB_REPLICATION_FACTOR', 'default.replication.factor')}): every acks=all write would be refused; set both explicitly`,
    );
  }
  return { partitions: o.partitions, replicationFactor, minInsyncReplicas };
}

/**
 * Reconciles the topology's topics with the cluster (see the top of this file) and reports every topic as the
 * cluster then has it. Leaders are awaited by polling metadata rather than `waitForLeaders`, which throws
 * UNKNOWN_TOPIC_OR_PARTITION right after a broker restart although the topics were created.
 */
export async function reconcileTopics(admin: Admin, prefix: string, o: TopicsOptions, timeoutMs = 60_000): Promise<TopicsResult> {
  const deadline = Date.now() + timeoutMs;
  const settings = await resolveSettings(admin, o);
  const wanted = wantedTopics(prefix, settings);
  const names = wanted.map((t) => t.topic);
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    // Kafka would refuse too (INVALID_REPLICATION_FACTOR), without saying which setting to change.
    const brokers = (await admin.describeCluster()).brokers.length;
    if (settings.replicationFactor > brokers) {
      throw new PersonaHubError('PH_KAFKA_TOPICS', `replication factor ${settings.replicationFactor} needs ${settings.replicationFactor} brokers up to create ${missing.map((t) => t.topic).join(', ')}; the cluster has ${brokers} (set PERSONAHUB_REPLICATION_FACTOR)`);
    }
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((t) => ({
        topic: t.topic,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor,
        configEntries: Object.entries(t.configs).map(([name, value]) => ({ name, value })),
      })),
    });
  }
  let observed = await settle(deadline, timeoutMs, () => observeTopics(admin, names));
  const toRaise = o.raisePartitions ? wanted.filter((t) => !missing.includes(t) && (observed.get(t.topic)?.partitions ?? t.partitions) < t.partitions) : [];
  if (toRaise.length > 0) {
    await admin.createPartitions({ topicPartitions: toRaise.map((t) => ({ topic: t.topic, count: t.partitions })) });
    observed = await settle(deadline, timeoutMs, async () => {
      const now = await observeTopics(admin, names);
      if (toRaise.some((t) => (now.get(t.topic)?.partitions ?? 0) < t.partitions)) throw new Error('the new partitions are not in the metadata yet');
      return now;
    });
  }

  const topics = wanted.map((want): TopicReport => {
    const have = observed.get(want.topic);
    if (!have) throw new PersonaHubError('PH_KAFKA_TOPICS', `topic ${want.topic} is missing from the cluster's metadata`);
    return {
      topic: want.topic,
      event: want.event,
      action: missing.includes(want) ? 'created' : toRaise.includes(want) ? 'raised' : 'none',
      want,
      have,
      differences: diffTopic(want, have),
    };
  });
  return { created: missing.map((t) => t.topic), raised: toRaise.map((t) => t.topic), topics, differences: topics.reduce((n, t) => n + t.differences.length, 0) };
}

/**
 * Repeats `observe` until every topic is there with a leader for each partition and the brokers answer for
 * them (right after a creation or a broker restart some do not yet), or the deadline passes.
 */
async function settle(deadline: number, timeoutMs: number, observe: () => Promise<Map<string, ObservedTopic>>): Promise<Map<string, ObservedTopic>> {
  for (;;) {
    let why: string;
    try {
      const observed = await observe();
      const topics = [...observed.values()];
      if (topics.every((t) => t.partitions > 0 && t.leaderless === 0)) return observed;
      why = `partitions without a leader in ${topics.filter((t) => t.partitions === 0 || t.leaderless > 0).map((t) => t.topic).join(', ')}`;
    } catch (cause) {
      why = (cause as Error).message;
    }
    if (Date.now() > deadline) throw new PersonaHubError('PH_KAFKA_TOPICS', `topics not ready after ${timeoutMs} ms: ${why}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function initTopics(kafka: Kafka, serde: Serde, o: TopicsOptions & { prefix: string; logger: Logger }): Promise<TopicsResult & { subjects: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const result = await reconcileTopics(admin, o.prefix, o);
    const ids = await serde.registerAll();
    o.logger.info({ created: result.created, raised: result.raised, differences: result.differences, subjects: ids.size }, 'topics and schemas ready');
    if (result.differences > 0) {
      o.logger.warn({ topics: result.topics.filter((t) => t.differences.length > 0).map((t) => t.topic) }, 'some topics differ from the topology and configuration: see the report');
    }
    return { ...result, subjects: ids.size };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Deletes every topic and every consumer group whose name starts with `namePrefix` (a run's `<prefix>.`, or
 * a marker several runs share): what a finished test or benchmark run leaves behind on a shared broker.
 * Left there, a suite's thousands of partitions and groups pile up run after run until the broker spends
 * its heap on them. A group that still has members is not deleted (the broker refuses) and not counted.
 */
export async function deleteByNamePrefix(kafka: Kafka, namePrefix: string): Promise<{ topics: number; groups: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Groups first: once its topics are gone, this client's metadata refresh (which listGroups runs) fails on them.
    const topics = (await admin.listTopics()).filter((name) => name.startsWith(namePrefix));
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((id) => id.startsWith(namePrefix));
    let refused = 0;
    if (groups.length > 0) {
      try {
        await admin.deleteGroups(groups);
      } catch (error) {
        if (!(error instanceof kafkajs.KafkaJSDeleteGroupsError)) throw error;
        refused = error.groups.length;
      }
    }
    // One request per few hundred topics keeps each under the broker's request timeout.
    for (let i = 0; i < topics.length; i += 500) await admin.deleteTopics({ topics: topics.slice(i, i + 500), timeout: 60_000 });
    return { topics: topics.length, groups: groups.length - refused };
  } finally {
    await admin.disconnect();
  }
}

/** The report as a fixed-width table, one row per topic: each cell the cluster's value, with the wanted one beside it where they differ. */
export function renderTopicsTable(result: TopicsResult): string {
  const cell = (t: TopicReport, setting: TopicSetting, have: string): string => {
    const d = t.differences.find((x) => x.setting === setting);
    return d ? `${d.have} (want ${d.want})` : have;
  };
  const rows = result.topics.map((t) => [
    t.topic,
    t.differences.length > 0 ? 'DIFFERS' : t.action === 'none' ? 'ok' : t.action,
    cell(t, 'partitions', String(t.have.partitions)),
    cell(t, 'replication.factor', range(t.have.replicasPerPartition)),
    cell(t, 'min.insync.replicas', t.have.configs['min.insync.replicas'] ?? '?'),
    cell(t, 'retention.ms', t.have.configs['retention.ms'] ?? '?'),
    cell(t, 'cleanup.policy', t.have.configs['cleanup.policy'] ?? '?'),
  ]);
  const header = ['TOPIC', 'STATE', 'PARTITIONS', 'REPLICAS', 'MIN.ISR', 'RETENTION.MS', 'CLEANUP'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const fixes = result.topics.flatMap((t) => t.differences.map((d) => `  ${t.topic} ${d.setting}: ${d.have}, want ${d.want}. Fix: ${d.fix}`));
  return [
    line(header),
    ...rows.map(line),
    '',
    `${result.created.length} created, ${result.raised.length} raised, ${result.differences} difference(s) left` +
      (fixes.length > 0 ? ' (topics init changes nothing but missing topics and, when asked, partitions):' : '.'),
    ...fixes,
  ].join('\n');
}
