/**
 * Kafka operations behind scripts/replay-topic.sh and scripts/rotate-dlq.sh, over the project's own
 * Kafka client (runtime/kafka.ts: the same brokers, TLS and SASL settings as the stages, from the
 * PERSONAHUB_* environment). Kafka's own kafka-consumer-groups.sh is not part of the broker jars the
 * local stack installs, and the project's CLI has no offset reset, hence this helper.
 *
 *   node --import tsx scripts/kafka-ops.ts reset-offsets --group G --topic T (--to-earliest|--to-latest|--to-offset N|--to-datetime ISO) [--dry-run]
 *   node --import tsx scripts/kafka-ops.ts rotate-dlq [--archive NAME] [--copy-only] [--dry-run]
 *
 * Output: one JSON object on stdout saying what was (or would be) done.
 */
import { Partitioners } from 'kafkajs';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../core/logger.ts';
import { createKafka } from '../runtime/kafka.ts';
import { events, topicName } from '../topology/index.ts';

type Admin = ReturnType<ReturnType<typeof createKafka>['admin']>;

export class OpsError extends Error {}

/** How long rotate-dlq's copy may take to join its consumer group before it gives up, deleting nothing. */
const JOIN_TIMEOUT_MS = 120_000;

export interface ResetOptions {
  group: string;
  topic: string;
  to: { earliest: true } | { latest: true } | { offset: number } | { datetime: number };
  dryRun: boolean;
}

/** Moves a consumer group's committed offsets on one topic; the group must have no running member. */
export async function resetOffsets(admin: Admin, o: ResetOptions) {
  const [group] = (await admin.describeGroups([o.group])).groups;
  if (group && group.members.length > 0) {
    throw new OpsError(`consumer group ${o.group} has ${group.members.length} running member(s) (state ${group.state}): pause the stage first (scripts/pause-stage.sh pause <stage>, or --pause-stage)`);
  }
  const watermarks = await admin.fetchTopicOffsets(o.topic);
  let target: { partition: number; offset: string }[];
  if ('datetime' in o.to) {
    const byTime = await admin.fetchTopicOffsetsByTimestamp(o.topic, o.to.datetime);
    target = byTime.map((p) => ({ partition: p.partition, offset: p.offset }));
  } else {
    const to = o.to;
    target = watermarks.map((w) => {
      const low = BigInt(w.low);
      const high = BigInt(w.high);
      if ('earliest' in to) return { partition: w.partition, offset: w.low };
      if ('latest' in to) return { partition: w.partition, offset: w.high };
      const wanted = BigInt(to.offset);
      return { partition: w.partition, offset: String(wanted < low ? low : wanted > high ? high : wanted) };
    });
  }
  const before = (await admin.fetchOffsets({ groupId: o.group, topics: [o.topic] }))[0]?.partitions ?? [];
  const plan = target.sort((a, b) => a.partition - b.partition).map((t) => ({
    partition: t.partition,
    from: before.find((p) => p.partition === t.partition)?.offset ?? '-1',
    to: t.offset,
  }));
  if (!o.dryRun) await admin.setOffsets({ groupId: o.group, topic: o.topic, partitions: target });
  return { group: o.group, topic: o.topic, dryRun: o.dryRun, partitions: plan };
}

export interface RotateOptions {
  prefix: string;
  archive?: string;
  copyOnly: boolean;
  dryRun: boolean;
  now?: Date;
}

/**
 * Copies every record of the DLQ (key, value and headers as bytes, same partition) into a dated
 * archive topic, checks the copy, then deletes the copied records from the DLQ (DeleteRecords: the
 * topic stays, its low watermark moves), so `personahub dlq inspect` starts afresh.
 */
export async function rotateDlq(kafka: ReturnType<typeof createKafka>, admin: Admin, o: RotateOptions) {
  const dlq = topicName(o.prefix, 'dlq');
  const stamp = (o.now ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const archive = o.archive ?? `${dlq}.archive-${stamp}`;
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(archive)) throw new OpsError(`archive topic name "${archive}" is not a valid Kafka topic name`);
  const watermarks = await admin.fetchTopicOffsets(dlq);
  const pending = watermarks.filter((w) => BigInt(w.high) > BigInt(w.low));
  const total = pending.reduce((n, w) => n + Number(BigInt(w.high) - BigInt(w.low)), 0);
  const summary = { dlq, archive, dryRun: o.dryRun, copyOnly: o.copyOnly, partitions: watermarks.map((w) => ({ partition: w.partition, low: w.low, high: w.high })), records: total, copied: 0, truncated: false };
  if (o.dryRun || total === 0) return summary;
  const existing = await admin.listTopics();
  if (existing.includes(archive)) throw new OpsError(`archive topic ${archive} exists already: name another one with --archive`);
  const config = (await admin.describeConfigs({ resources: [{ type: 2, name: dlq, configNames: ['retention.ms'] }], includeSynonyms: false })).resources[0]?.configEntries ?? [];
  const retention = config.find((c) => c.configName === 'retention.ms')?.configValue ?? String(events.dlq.retentionMs);
  await admin.createTopics({ waitForLeaders: false, topics: [{ topic: archive, numPartitions: watermarks.length, configEntries: [{ name: 'retention.ms', value: retention }] }] });
  await waitForLeaders(admin, archive, watermarks.length);

  // Read committed records up to the high watermarks taken above (aborted ones and markers are not copied).
  const groupId = `${o.prefix}.dlq-rotate.${stamp}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  const high = new Map(watermarks.map((w) => [w.partition, BigInt(w.high)]));
  // Per partition, the offset up to which the DLQ was read and copied: only that much is deleted afterwards.
  const reached = new Map(watermarks.map((w) => [w.partition, BigInt(w.low)]));
  const done = new Set(watermarks.filter((w) => BigInt(w.high) <= BigInt(w.low)).map((w) => w.partition));
  let copied = 0;
  // Idle time counts from the consumer's joining its group, not from the start: joining can take longer
  // than the idle window on a loaded machine, and nothing read then is not "the tail was markers".
  let lastProgress: number | undefined;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    lastProgress = Date.now();
  });
  await producer.connect();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: dlq, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const limit = high.get(batch.partition) ?? 0n;
        const messages = batch.messages.filter((m) => BigInt(m.offset) < limit);
        if (messages.length > 0) {
          await producer.send({ topic: archive, acks: -1, messages: messages.map((m) => ({ partition: batch.partition, key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp })) });
          copied += messages.length;
          lastProgress = Date.now();
        }
        // lastOffset counts the transaction markers and aborted records the batch skipped, too.
        const next = BigInt(batch.lastOffset()) + 1n;
        reached.set(batch.partition, next < limit ? next : limit);
        if (next >= limit) done.add(batch.partition);
      },
    });
    // Done when every partition reached its watermark, or, once joined, nothing came for 10 s (the tail was markers).
    const started = Date.now();
    while (done.size < watermarks.length && (lastProgress === undefined || Date.now() - lastProgress < 10_000)) {
      if (lastProgress === undefined && Date.now() - started > JOIN_TIMEOUT_MS) throw new OpsError(`the copy's consumer did not join its group within ${JOIN_TIMEOUT_MS / 1000} s: nothing was deleted; is the broker reachable?`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  summary.copied = copied;
  // Offsets of a topic created seconds ago can lag behind on a broker that just learnt of it: read again a while.
  const count = async () => (await admin.fetchTopicOffsets(archive)).reduce((n, w) => n + Number(BigInt(w.high) - BigInt(w.low)), 0);
  let archived = await count();
  for (const until = Date.now() + 30_000; archived !== copied && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 500));
    archived = await count();
  }
  if (archived !== copied) throw new OpsError(`the archive ${archive} holds ${archived} records, ${copied} were copied: the DLQ is left as it was`);
  if (!o.copyOnly) {
    // Up to what was read, partition by partition: a partition the copy did not reach keeps its records.
    const partitions = watermarks.flatMap((w) => {
      const to = reached.get(w.partition) ?? BigInt(w.low);
      return to > BigInt(w.low) ? [{ partition: w.partition, offset: String(to) }] : [];
    });
    if (partitions.length > 0) await admin.deleteTopicRecords({ topic: dlq, partitions });
    summary.truncated = partitions.length === pending.length;
  }
  return summary;
}

async function waitForLeaders(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = meta.topics[0]?.partitions ?? [];
      if (parts.length === partitions && parts.every((p) => p.leader >= 0)) return;
    } catch {
      // not known yet
    }
    if (Date.now() > deadline) throw new OpsError(`topic ${topic} has no leader for every partition after 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  const flags = new Set(['--dry-run', '--copy-only', '--to-earliest', '--to-latest', '--help']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) throw new OpsError(`unexpected argument "${a}"`);
    if (flags.has(a)) out.set(a, true);
    else {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new OpsError(`${a} needs a value`);
      out.set(a, v);
      i++;
    }
  }
  return out;
}

export function resetTarget(args: Map<string, string | true>): ResetOptions['to'] {
  const given = ['--to-earliest', '--to-latest', '--to-offset', '--to-datetime'].filter((k) => args.has(k));
  if (given.length !== 1) throw new OpsError(`say exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime TIME (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  if (args.has('--to-earliest')) return { earliest: true };
  if (args.has('--to-latest')) return { latest: true };
  const offset = args.get('--to-offset');
  if (typeof offset === 'string') {
    if (!/^\d+$/.test(offset)) throw new OpsError(`--to-offset must be a whole number, got "${offset}"`);
    return { offset: Number(offset) };
  }
  const when = String(args.get('--to-datetime'));
  const t = Date.parse(when);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(when) || Number.isNaN(t)) throw new OpsError(`--to-datetime must be an ISO 8601 time like 2026-11-26T08:00:00Z, got "${when}"`);
  return { datetime: t };
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const args = parseArgs(rest);
  if (command !== 'reset-offsets' && command !== 'rotate-dlq') throw new OpsError(`unknown command "${command ?? ''}"; commands: reset-offsets, rotate-dlq`);
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: 'kafka-ops' });
  const kafka = createKafka(config, 'personahub-ops', logger);
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (command === 'reset-offsets') {
      const group = args.get('--group');
      const topic = args.get('--topic');
      if (typeof group !== 'string' || typeof topic !== 'string') throw new OpsError('reset-offsets needs --group and --topic');
      console.log(JSON.stringify(await resetOffsets(admin, { group, topic, to: resetTarget(args), dryRun: args.has('--dry-run') }), null, 2));
    } else {
      const archive = args.get('--archive');
      console.log(JSON.stringify(await rotateDlq(kafka, admin, { prefix: config.topicPrefix, archive: typeof archive === 'string' ? archive : undefined, copyOnly: args.has('--copy-only'), dryRun: args.has('--dry-run') }), null, 2));
    }
  } finally {
    await admin.disconnect();
  }
}

if (process.argv[1]?.endsWith('kafka-ops.ts')) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`kafka-ops: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof OpsError ? 2 : 1);
  });
}
