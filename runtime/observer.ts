import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { PersonaHubError } from '../core/errors.ts';
import { descendsFrom, events, seedDescendsFrom, topicName, type EventName, type EventTypes } from '../topology/index.ts';
import type { Serde } from './serde.ts';

/** When the event happened, from the field each schema records it in. */
function eventTime<E extends EventName>(event: E, value: EventTypes[E]): number {
  const v = value as EventTypes[EventName];
  switch (event) {
    case 'seed': return (v as EventTypes['seed']).createdAt;
    case 'draft': return (v as EventTypes['draft']).provenance.createdAt;
    case 'enriched': return (v as EventTypes['enriched']).enrichment?.enrichedAt ?? 0;
    case 'validated': return (v as EventTypes['validated']).validation?.validatedAt ?? 0;
    case 'indexed': return (v as EventTypes['indexed']).indexedAt;
    case 'rejected': return (v as EventTypes['rejected']).rejectedAt;
    default: return (v as EventTypes['dlq']).failedAt;
  }
}

/** What the observer needs to know a lattice has stopped growing: its depth bound and the grants the relate stage recorded. */
export interface LatticeWatch {
  maxDepth: number;
  grants(parentIds: readonly string[]): Promise<Map<string, number>>;
}

export interface HopAccount {
  hop: string;
  in: number;
  out: number;
  /** Ids that entered the hop and have neither an output nor a DLQ record yet. */
  pending: string[];
}

/**
 * Reads every pipeline topic (read_committed) and keeps, per event, what has been seen, so a run
 * can be accounted for hop by hop: every seed drafted or dead-lettered, every draft enriched or
 * dead-lettered, every enriched persona validated, rejected or dead-lettered, every validated one
 * indexed or dead-lettered. Used by the main job's wait and report and by the end-to-end tests.
 */
export class PipelineObserver {
  readonly seen: { [E in EventName]: Map<string, EventTypes[E]> } = {
    seed: new Map(), draft: new Map(), enriched: new Map(), validated: new Map(), indexed: new Map(), rejected: new Map(), dlq: new Map(),
  };
  /** Records per topic including re-deliveries: a count above the distinct ids means a duplicate reached the topic. */
  readonly records: Record<EventName, number> = { seed: 0, draft: 0, enriched: 0, validated: 0, indexed: 0, rejected: 0, dlq: 0 };
  readonly undecodable: { topic: string; offset: string }[] = [];
  /** Every outcome the indexed topic announced per persona, in order: a truthful topic has one INSERTED (or UPDATED) per stored write. */
  readonly indexedOutcomes = new Map<string, string[]>();
  /** Keys of the tombstones seen per topic (records with no value: the keyed entity was deleted). */
  readonly tombstones: Record<EventName, Set<string>> = {
    seed: new Set(), draft: new Set(), enriched: new Set(), validated: new Set(), indexed: new Set(), rejected: new Set(), dlq: new Set(),
  };
  /** Headers of DLQ records by key: the why and where-from that Kafka tools show without Avro. */
  readonly dlqHeaders = new Map<string, Record<string, string>>();
  /** Consumers started after kafkajs gave up on the previous one (a coordinator lost in a broker restart). */
  consumerRestarts = 0;
  private consumer: Consumer | undefined;
  private stopped = false;
  /** One group for the observer's lifetime: a replacement consumer resumes from the committed offsets. */
  private readonly groupId: string;
  /**
   * Per topic-partition, the next offset not yet counted. A restarted consumer (by kafkajs or by
   * `restart`) fetches again from the last committed offset: those records were counted already,
   * and counting them twice would report duplicates the topics do not hold.
   */
  private readonly nextOffset = new Map<string, bigint>();

  /**
   * `since` (epoch ms) ignores records whose event time is older, so a run can be observed on topics
   * that hold earlier runs of the same seeds: their ids repeat, their timestamps do not.
   */
  constructor(private readonly kafka: Kafka, private readonly serde: Serde, private readonly prefix: string, readonly since = 0, private readonly lattice?: LatticeWatch) {
    this.groupId = `${prefix}.observer.${randomUUID()}`;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await (await this.startConsumer());
  }

  /** Connects, subscribes and runs a new consumer; what it returns resolves once the consumer joined its group. */
  private async startConsumer(): Promise<Promise<void>> {
    const consumer = this.kafka.consumer({ groupId: this.groupId, readUncommitted: false });
    this.consumer = consumer;
    // kafkajs restarts a consumer after retriable errors only; after the others (a group coordinator
    // not found while the broker restarts) it stops for good, and the observer would go blind.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart && !this.stopped) void this.restart(consumer);
    });
    let assigned!: () => void;
    const joined = new Promise<void>((resolve) => { assigned = resolve; });
    consumer.on(consumer.events.GROUP_JOIN, () => assigned());
    await consumer.connect();
    const byTopic = new Map((Object.keys(events) as EventName[]).map((e) => [topicName(this.prefix, e), e]));
    await consumer.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const event = byTopic.get(topic);
        if (!event) return;
        const position = `${topic}:${partition}`;
        const offset = BigInt(message.offset);
        if (offset < (this.nextOffset.get(position) ?? 0n)) return;
        await this.count(event, topic, message);
        this.nextOffset.set(position, offset + 1n);
      },
    });
    return joined;
  }

  /** Replaces a consumer kafkajs will not restart, with backoff, until one runs again or the observer stops. */
  private async restart(crashed: Consumer): Promise<void> {
    if (this.consumer !== crashed) return;
    this.consumerRestarts += 1;
    await crashed.disconnect().catch(() => {});
    for (let attempt = 0; !this.stopped && this.consumer === crashed; attempt += 1) {
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
      if (this.stopped) return;
      try {
        // A crash of the new consumer while it joins comes back through its own CRASH listener.
        await this.startConsumer();
        return;
      } catch {
        // The broker is still unreachable: connect failed. Try again with the next delay.
        await this.consumer?.disconnect().catch(() => {});
        this.consumer = crashed;
      }
    }
  }

  private async count(event: EventName, topic: string, message: KafkaMessage): Promise<void> {
    const key = (await this.serde.decodeKey(message.key)) ?? '';
    if (message.value === null) {
      // A tombstone has no event time of its own; the broker's timestamp stands in for it.
      if (Number(message.timestamp) >= this.since) this.tombstones[event].add(key);
      return;
    }
    try {
      const value = await this.serde.decode(event, message.value);
      if (eventTime(event, value) < this.since) return;
      (this.seen[event] as Map<string, unknown>).set(key, value);
      if (event === 'indexed') {
        const outcome = (value as EventTypes['indexed']).outcome;
        this.indexedOutcomes.set(key, [...(this.indexedOutcomes.get(key) ?? []), outcome]);
      }
      if (event === 'dlq') this.dlqHeaders.set(key, Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])));
      this.records[event] += 1;
    } catch (error) {
      // The registry not answering says nothing about the record: throwing makes kafkajs deliver it
      // again (the offset is not counted yet), instead of writing off a good record as undecodable.
      if (error instanceof PersonaHubError && error.transient) throw error;
      // Poison records exist only on the seed topic (or whatever a foreign producer wrote); count, don't stop.
      this.undecodable.push({ topic, offset: message.offset });
    }
  }

  /**
   * Hop-by-hop accounting. With `seedIds`, only the personas descending from those seeds count, so
   * a run can be accounted for on topics that already hold earlier runs.
   */
  accounting(seedIds?: ReadonlySet<string>): HopAccount[] {
    const seeds = [...this.seen.seed].filter(([id, seed]) => seedDescendsFrom(seedIds, id, seed)).map(([id]) => id);
    const drafts = [...this.seen.draft].filter(([, p]) => descendsFrom(seedIds, p)).map(([id]) => id);
    const enriched = [...this.seen.enriched].filter(([, p]) => descendsFrom(seedIds, p)).map(([id]) => id);
    const validated = [...this.seen.validated].filter(([, p]) => descendsFrom(seedIds, p)).map(([id]) => id);
    const draftSeedIds = new Set(drafts.map((id) => this.seen.draft.get(id)?.seedId));
    const dlq = (stage: string) => new Set([...this.seen.dlq].filter(([, v]) => v.stage === stage).map(([k]) => k));
    const [dlqDraft, dlqEnrich, dlqValidate, dlqIndex] = [dlq('draft'), dlq('enrich'), dlq('validate'), dlq('index')];
    const hop = (name: string, ins: string[], done: (id: string) => boolean): HopAccount => {
      const pending = ins.filter((id) => !done(id));
      return { hop: name, in: ins.length, out: ins.length - pending.length, pending };
    };
    return [
      hop('seed→draft', seeds, (id) => draftSeedIds.has(id) || dlqDraft.has(id)),
      hop('draft→enriched', drafts, (id) => this.seen.enriched.has(id) || dlqEnrich.has(id)),
      hop('enriched→validated|rejected', enriched, (id) => this.seen.validated.has(id) || this.seen.rejected.has(id) || dlqValidate.has(id)),
      hop('validated→indexed', validated, (id) => this.seen.indexed.has(id) || dlqIndex.has(id)),
    ];
  }

  /**
   * True once every given seed has been seen and everything descending from it (lattice expansions
   * included, as far as they have been seen) is accounted for. Whether a lattice has stopped growing
   * takes the store: see latticeSettled, which waitUntilSettled consults too.
   */
  settled(seedIds: ReadonlySet<string>, poison = 0): boolean {
    for (const id of seedIds) if (!this.seen.seed.has(id)) return false;
    const poisoned = [...this.seen.dlq.values()].filter((d) => d.errorCode === 'PH_SERDE_DECODE').length;
    return poisoned >= poison && this.accounting(seedIds).every((h) => h.pending.length === 0);
  }

  /**
   * With a lattice: whether every validated persona below the maximum depth has had its expansion
   * decided (the relate stage records each parent's grant in the store before it emits) and every
   * granted expansion seed has been seen. A persona's relate step emits nothing when its grant is 0, so
   * the topics alone cannot tell "done" from "not yet"; the store's grant can.
   */
  async latticeSettled(seedIds: ReadonlySet<string>): Promise<boolean> {
    if (!this.lattice) return true;
    const parents = [...this.seen.validated.values()].filter((p) => descendsFrom(seedIds, p) && (p.lineage?.depth ?? 0) < (this.lattice?.maxDepth ?? 0));
    if (parents.length === 0) return true;
    const grants = await this.lattice.grants(parents.map((p) => p.id));
    const expansions = new Map<string, number>();
    for (const seed of this.seen.seed.values()) if (seed.parentPersonaId !== null) expansions.set(seed.parentPersonaId, (expansions.get(seed.parentPersonaId) ?? 0) + 1);
    return parents.every((p) => grants.has(p.id) && (expansions.get(p.id) ?? 0) >= (grants.get(p.id) ?? 0));
  }

  async waitUntilSettled(seedIds: ReadonlySet<string>, opts: { timeoutMs: number; poison?: number; onTick?: (o: PipelineObserver) => void }): Promise<boolean> {
    const deadline = Date.now() + opts.timeoutMs;
    const done = async () => this.settled(seedIds, opts.poison ?? 0) && (await this.latticeSettled(seedIds)) && this.settled(seedIds, opts.poison ?? 0);
    while (Date.now() < deadline) {
      opts.onTick?.(this);
      if (await done()) return true;
      await new Promise((r) => setTimeout(r, 500));
    }
    return done();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer?.disconnect();
  }
}
