import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import type { Logger } from '../core/logger.ts';
import { topicName } from '../topology/index.ts';
import { REPLAYED_FROM_HEADER, TRACE_HEADER } from './kafka.ts';
import { EventSource } from './source.ts';
import { DLQ_HEADERS } from './runner.ts';
import type { Serde } from './serde.ts';


/** One dead letter, as `personahub dlq` shows it: why, where from, and the original bytes to re-drive. */
export interface DeadLetterEntry {
  dlqPartition: number;
  dlqOffset: string;
  key: string;
  stage: string;
  code: string;
  errorClass: string;
  message: string;
  originalTopic: string;
  originalPartition: number;
  originalOffset: string;
  attempts: number;
  failedAt: number;
  originalKey: Buffer | null;
  originalValue: Buffer | null;
  traceId: string | undefined;
}

export interface DeadLetterFilter {
  stage?: string;
  code?: string;
  /** Only dead letters that failed at or after this time (epoch ms). */
  since?: number;
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.map(String).join(',') : String(v);
}

/**
 * Reads the DLQ topic from its start to its end as of now (high watermarks taken first, so a live DLQ
 * does not keep the read going) with a throw-away group that commits nothing. A record is decoded from
 * its Avro value, or, if that fails, from its headers (without the original bytes: not replayable).
 */
export async function readDeadLetters(kafka: Kafka, serde: Serde, prefix: string, filter: DeadLetterFilter = {}): Promise<DeadLetterEntry[]> {
  const topic = topicName(prefix, 'dlq');
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  const entries: DeadLetterEntry[] = [];
  if (remaining.size === 0) return entries;
  const consumer = kafka.consumer({ groupId: `${prefix}.dlq-reader.${randomUUID()}`, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const reached = (partition: number, offset: string): void => {
        if (BigInt(offset) < (ends.get(partition) ?? 0n) - 1n) return;
        remaining.delete(partition);
        if (remaining.size === 0) resolve();
      };
      // The last offsets of a transactional topic are commit markers, never handed to eachMessage; the
      // end-of-batch event still reports them, so a partition ending in markers is known to be done.
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => reached(e.payload.partition, e.payload.lastOffset));
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          if (BigInt(message.offset) < (ends.get(partition) ?? 0n)) {
            const entry = await toEntry(serde, partition, message.offset, message.key, message.value, message.headers);
            if (matches(entry, filter)) entries.push(entry);
          }
          reached(partition, message.offset);
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return entries.sort((a, b) => a.failedAt - b.failedAt);
}

async function toEntry(serde: Serde, partition: number, offset: string, key: Buffer | null, value: Buffer | null, headers: IHeaders | undefined): Promise<DeadLetterEntry> {
  const base = { dlqPartition: partition, dlqOffset: offset, key: (await serde.decodeKey(key)) ?? '', traceId: header(headers, TRACE_HEADER) };
  try {
    const v = await serde.decode('dlq', value);
    return {
      ...base, stage: v.stage, code: v.errorCode, errorClass: v.errorClass, message: v.errorMessage,
      originalTopic: v.originalTopic, originalPartition: v.originalPartition, originalOffset: v.originalOffset,
      attempts: v.attempts, failedAt: v.failedAt, originalKey: v.originalKey, originalValue: v.originalValue,
    };
  } catch {
    const failedAt = Date.parse(header(headers, DLQ_HEADERS.failedAt) ?? '');
    return {
      ...base, stage: header(headers, DLQ_HEADERS.stage) ?? '?', code: header(headers, DLQ_HEADERS.code) ?? '?', errorClass: header(headers, DLQ_HEADERS.class) ?? '?',
      message: header(headers, DLQ_HEADERS.message) ?? '', originalTopic: header(headers, DLQ_HEADERS.topic) ?? '?',
      originalPartition: Number(header(headers, DLQ_HEADERS.partition) ?? -1), originalOffset: header(headers, DLQ_HEADERS.offset) ?? '?',
      attempts: Number(header(headers, DLQ_HEADERS.attempts) ?? 0), failedAt: Number.isNaN(failedAt) ? 0 : failedAt, originalKey: null, originalValue: null,
    };
  }
}

function matches(e: DeadLetterEntry, f: DeadLetterFilter): boolean {
  return (f.stage === undefined || e.stage === f.stage) && (f.code === undefined || e.code === f.code) && (f.since === undefined || e.failedAt >= f.since);
}

export interface DeadLetterSummary {
  total: number;
  byStageAndCode: { stage: string; code: string; count: number; first: string; last: string }[];
  samples: { stage: string; code: string; key: string; originalTopic: string; originalPartition: number; originalOffset: string; failedAt: string; message: string }[];
}

/** Counts by stage and code, and a few samples of each: what `personahub dlq inspect` prints. */
export function summarize(entries: readonly DeadLetterEntry[], samplesPerClass = 2): DeadLetterSummary {
  const groups = new Map<string, DeadLetterEntry[]>();
  for (const e of entries) {
    const k = `${e.stage}\u0000${e.code}`;
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    total: entries.length,
    byStageAndCode: [...groups.values()].map((g) => ({ stage: g[0]?.stage ?? '', code: g[0]?.code ?? '', count: g.length, first: iso(g[0]?.failedAt ?? 0), last: iso(g[g.length - 1]?.failedAt ?? 0) }))
      .sort((a, b) => b.count - a.count),
    samples: [...groups.values()].flatMap((g) => g.slice(0, samplesPerClass)).map((e) => ({
      stage: e.stage, code: e.code, key: e.key, originalTopic: e.originalTopic, originalPartition: e.originalPartition, originalOffset: e.originalOffset,
      failedAt: iso(e.failedAt), message: e.message.slice(0, 300),
    })),
  };
}

/**
 * Re-drives dead letters to the topic they came from, byte for byte (key, value, trace id), with a
 * header saying which DLQ record each replays. Replaying is idempotent downstream: the stage claims
 * each input by identity, so an input that was processed meanwhile (or a replay sent twice) is skipped.
 */
export async function replayDeadLetters(kafka: Kafka, serde: Serde, prefix: string, entries: readonly DeadLetterEntry[], logger: Logger): Promise<{ replayed: number; notReplayable: number }> {
  const replayable = entries.filter((e) => e.originalValue !== null);
  const source = await EventSource.open(kafka, serde, prefix);
  try {
    const byTopic = new Map<string, { key: Buffer | null; value: Buffer; headers: IHeaders }[]>();
    for (const e of replayable) {
      const list = byTopic.get(e.originalTopic) ?? [];
      list.push({ key: e.originalKey, value: e.originalValue ?? Buffer.alloc(0), headers: { [TRACE_HEADER]: e.traceId ?? randomUUID(), [REPLAYED_FROM_HEADER]: `${e.dlqPartition}:${e.dlqOffset}` } });
      byTopic.set(e.originalTopic, list);
    }
    for (const [topic, messages] of byTopic) {
      await source.sendRecords(topic, messages);
      logger.info({ topic, count: messages.length }, 'dead letters replayed');
    }
  } finally {
    await source.close();
  }
  return { replayed: replayable.length, notReplayable: entries.length - replayable.length };
}
