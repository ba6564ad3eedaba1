import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Message } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personaId } from '../../../persona/ids.ts';
import { parseSeedLines } from '../../../persona/seeds.ts';
import type { DeadLetterSummary } from '../../../runtime/dlq.ts';
import { producerConfig } from '../../../runtime/kafka.ts';
import type { Persona, Seed } from '../../../schemas/types.generated.ts';
import { topicName, type StageName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, scrape, StageFleet, until } from '../../helpers/faults.ts';
import { seededRandom } from '../../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';
import { samplePersona } from '../../helpers/samples.ts';

/**
 * Poison mix: more than a thousand bad events of six kinds, mixed into good traffic on two topics
 * (seeds, read by the draft stage; drafts, read by the enrich stage), with every stage a process of
 * its own. Every bad event must reach the DLQ with its reason, every good one must come through, no
 * stage may stall, and the DLQ metric must agree with the DLQ topic. Then the fixable class (events
 * over PERSONAHUB_MAX_EVENT_BYTES) is re-driven the way an operator would: raise the bound, restart the
 * processes, `personahub dlq replay`, and replay it again to show that changes nothing.
 */

/** The bound while the poison flows: every legitimate event is far below it (a seed ~0.4 KB, a persona ~2.5 KB). */
const SMALL_BOUND = 8192;
const GOOD_SEEDS = 200;
const LEGIT_FFFD_SEEDS = 10;
const HANG_GUARD_MS = 600_000;

type PoisonClass = 'random' | 'magic' | 'unknownId' | 'truncated' | 'oversize' | 'utf8';
const CODE: Record<PoisonClass, string> = {
  random: 'PH_SERDE_DECODE', magic: 'PH_SERDE_DECODE', unknownId: 'PH_SERDE_DECODE', truncated: 'PH_SERDE_DECODE',
  oversize: 'PH_EVENT_TOO_LARGE', utf8: 'PH_SERDE_INVALID_UTF8',
};
/** Bad events per class, per topic: 550 seeds + 460 drafts = 1010. */
const PER_CLASS: Record<'seed' | 'draft', Record<PoisonClass, number>> = {
  seed: { random: 100, magic: 90, unknownId: 90, truncated: 90, oversize: 90, utf8: 90 },
  draft: { random: 80, magic: 80, unknownId: 80, truncated: 80, oversize: 60, utf8: 80 },
};
const STAGE_OF = { seed: 'draft', draft: 'enrich' } as const satisfies Record<'seed' | 'draft', StageName>;

/** Byte sequences no UTF-8 decoder accepts, four bytes each (the marker they replace is four ASCII bytes). */
const INVALID_UTF8 = [
  [0xc3, 0x28, 0x41, 0x42], [0x80, 0x41, 0x42, 0x43], [0xc0, 0x80, 0x41, 0x42],
  [0xed, 0xa0, 0x80, 0x41], [0xf0, 0x9f, 0x98, 0x41], [0xff, 0xfe, 0xfd, 0xfc],
];
const MARKER = '~~~~';

interface Bad {
  cls: PoisonClass;
  topic: 'seed' | 'draft';
  /** What the DLQ record's key decodes to. */
  dlqKey: string;
  message: Message;
}

interface Phase1 {
  good: Seed[];
  bad: Bad[];
  goodIds: Set<string>;
  durationMs: number;
}

function hex32(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Runs `personahub <args>` as its own process with the test pipeline's environment; resolves with its exit code and output. */
function runCli(t: TestPipeline, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...t.env },
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

/** Readiness reasons of every process of the fleet (empty when ready); a process that does not answer reports why. */
async function readiness(fleet: StageFleet): Promise<string[]> {
  const reasons: string[] = [];
  for (const p of fleet.processes) {
    try {
      const res = await fetch(`http://127.0.0.1:${p.metricsPort}/health/ready`, { signal: AbortSignal.timeout(5_000) });
      if (res.status !== 200) reasons.push(...((await res.json()) as { reasons: string[] }).reasons.map((r) => `${p.stage}: ${r}`));
    } catch (error) {
      reasons.push(`${p.stage}: no answer (${(error as Error).message})`);
    }
  }
  return reasons;
}

/** Waits until every process of the fleet is ready, failing at once (with the exit codes) if one exits instead. */
async function allReady(fleet: StageFleet, timeoutMs = 180_000): Promise<void> {
  await until(async () => {
    if (fleet.unexpectedExits.length > 0) throw new Error(`a stage process exited: ${JSON.stringify(fleet.unexpectedExits)}`);
    const codes = await Promise.all(fleet.processes.map(async (p) => (await fetch(`http://127.0.0.1:${p.metricsPort}/health/ready`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined))?.status));
    return codes.every((c) => c === 200);
  }, timeoutMs, 'every stage process ready');
}

describe('poison mix: >1000 bad events of six kinds on two topics, stages as processes', () => {
  let t: TestPipeline;
  let fleet: StageFleet | undefined;
  let phase1: Promise<Phase1> | undefined;

  beforeAll(async () => {
    // Near-duplicate removal off: the oversize seeds are runs of the same corpus texts, so their sampler
    // personas share most salient terms and some pairs pass the cosine bound; the test is about dead letters
    // and their replay, and expects every replayed persona indexed.
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_NEAR_DUPLICATE_COSINE: '1' });
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await t?.close();
  });

  /** Valid seed bytes (the registry's current seed schema) and their key. */
  async function seedRecord(seed: Seed): Promise<{ key: Buffer; value: Buffer }> {
    return { key: await t.pipeline.serde.encodeKey('seed', seed.id), value: await t.pipeline.serde.encodeValue('seed', seed) };
  }

  async function draftRecord(persona: Persona): Promise<{ key: Buffer; value: Buffer }> {
    return { key: await t.pipeline.serde.encodeKey('draft', persona.id), value: await t.pipeline.serde.encodeValue('draft', persona) };
  }

  function makeSeeds(texts: string[], source: string): Seed[] {
    const parsed = parseSeedLines(texts, { source, format: 'text', maxChars: 1_000_000, now: Date.now() });
    expect(parsed.seeds).toHaveLength(texts.length);
    return parsed.seeds;
  }

  function draftPersona(name: string, description: string): Persona {
    return { ...samplePersona({ id: hex32(`${t.prefix}:persona:${name}`), seedId: hex32(`${t.prefix}:seed:${name}`), description }), enrichment: null };
  }

  /** Builds the bad events of one class on one topic. */
  async function poison(topic: 'seed' | 'draft', cls: PoisonClass, count: number, rng: () => number, corpus: string[]): Promise<Bad[]> {
    const out: Bad[] = [];
    const pick = (i: number) => corpus[i % corpus.length] ?? 'a seed';
    for (let i = 0; i < count; i += 1) {
      const name = `${topic}.${cls}.${i}`;
      let key: Buffer;
      let value: Buffer;
      let dlqKey: string;
      if (cls === 'random') {
        // Not Avro at all: random bytes with a plain-text key.
        dlqKey = `poison.${name}`;
        key = Buffer.from(dlqKey);
        value = Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 600) }, () => Math.floor(rng() * 256)));
      } else {
        const text = cls === 'oversize'
          // Over the bound, under any sane one: a long document as a seed, or a persona with an essay for a description.
          ? `${name}: ${Array.from({ length: 50 }, (_, k) => `${pick(i + k)} ${k}`).join(' ')}`
          : `${name}: ${pick(i)}${cls === 'utf8' ? ` ${MARKER}` : ''}`;
        const record = topic === 'seed' ? await seedRecord(makeSeeds([text], `${t.prefix}-poison`)[0] as Seed) : await draftRecord(draftPersona(name, text));
        key = record.key;
        value = Buffer.from(record.value);
        dlqKey = (await t.pipeline.serde.decodeKey(key)) ?? '';
        if (cls === 'magic') value[0] = 1 + (i % 255);
        if (cls === 'unknownId') value.writeUInt32BE(1_000_000_000 + i, 1);
        if (cls === 'truncated') value = value.subarray(0, 5 + Math.floor(rng() * (value.length - 5)));
        if (cls === 'oversize') expect(value.length).toBeGreaterThan(SMALL_BOUND);
        if (cls === 'utf8') {
          const at = value.lastIndexOf(Buffer.from(MARKER));
          expect(at).toBeGreaterThan(5);
          Buffer.from(INVALID_UTF8[i % INVALID_UTF8.length] ?? []).copy(value, at);
        }
      }
      out.push({ cls, topic, dlqKey, message: { key, value } });
    }
    return out;
  }

  /** Phase 1, shared by both tests (the second runs it if the first did not). */
  function runPhase1(): Promise<Phase1> {
    phase1 ??= (async () => {
      const started = Date.now();
      const rng = seededRandom(`poison:${t.prefix}`);
      const corpusSeeds = t.seeds(GOOD_SEEDS);
      expect(corpusSeeds).toHaveLength(GOOD_SEEDS);
      const corpus = corpusSeeds.map((s) => s.text);
      // Good seeds whose text holds a real U+FFFD (an OCR'd page, a lossy export): they must pass the UTF-8 check.
      const legitFffd = makeSeeds(Array.from({ length: LEGIT_FFFD_SEEDS }, (_, i) => `Scanned council minutes, page ${i + 1}: the clerk wrote "budget \uFFFD\uFFFD approved" where the ink ran; ${corpus[i] ?? ''}`), `${t.prefix}-ocr`);
      const good = [...corpusSeeds, ...legitFffd];
      const bad: Bad[] = [];
      for (const topic of ['seed', 'draft'] as const) {
        for (const [cls, count] of Object.entries(PER_CLASS[topic]) as [PoisonClass, number][]) bad.push(...(await poison(topic, cls, count, rng, corpus)));
      }
      expect(bad.length).toBeGreaterThanOrEqual(1000);
      expect(new Set(bad.map((b) => b.dlqKey)).size, 'every bad event has a DLQ key of its own').toBe(bad.length);
      // Shuffled, so every class is spread over the run and the partitions.
      for (let i = bad.length - 1; i > 0; i -= 1) {
        const j = Math.floor(rng() * (i + 1));
        [bad[i], bad[j]] = [bad[j] as Bad, bad[i] as Bad];
      }

      fleet = new StageFleet(t, { PERSONAHUB_MAX_EVENT_BYTES: String(SMALL_BOUND) });
      // Two instances of each stage that meets poison, so the DLQ metric is a sum over processes.
      await fleet.startAll(['draft', 'draft', 'enrich', 'enrich', 'validate', 'index']);
      await allReady(fleet);

      // Readiness watched all along: poison is permanent, so no breaker may open and no stage may pause.
      const notReady: string[] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          notReady.push(...(await readiness(fleet as StageFleet)));
          await new Promise((r) => setTimeout(r, 1_000));
        }
      })();

      const producer = t.pipeline.kafka.producer(producerConfig({ idempotent: true, maxInFlightRequests: 1 }));
      await producer.connect();
      try {
        // Ten rounds of good seeds, then a tenth of the poison on both topics; the last round of good seeds comes
        // after the last poison, so a stage stuck on a bad event would leave good ones behind.
        const rounds = 10;
        for (let r = 0; r <= rounds; r += 1) {
          await t.ingest(good.filter((_, i) => i % (rounds + 1) === r));
          if (r === rounds) break;
          const slice = bad.filter((_, i) => i % rounds === r);
          for (const topic of ['seed', 'draft'] as const) {
            const messages = slice.filter((b) => b.topic === topic).map((b) => b.message);
            if (messages.length > 0) await producer.send({ topic: topicName(t.prefix, topic), messages, acks: -1 });
          }
        }
      } finally {
        await producer.disconnect();
      }

      const goodIds = new Set(good.map((s) => s.id));
      const { observer } = t;
      // A bad event is done once it is dead-lettered, or (a defect the assertions below report) once it was processed as good.
      const outcome = (b: Bad): boolean => observer.seen.dlq.has(b.dlqKey) || (b.topic === 'seed' ? observer.seen.draft.has(personaId(b.dlqKey, 0)) : observer.seen.enriched.has(b.dlqKey));
      await until(() => bad.every(outcome) && observer.settled(goodIds), HANG_GUARD_MS, 'every bad event with an outcome and every good seed accounted for at every hop', async () => {
        const missing = bad.filter((b) => !outcome(b));
        return {
          missing: missing.length,
          missingByClass: Object.fromEntries([...new Set(missing.map((b) => `${b.topic}.${b.cls}`))].map((c) => [c, missing.filter((b) => `${b.topic}.${b.cls}` === c).length])),
          firstMissing: missing.slice(0, 3).map((b) => ({ key: b.dlqKey, bytes: (b.message.value as Buffer).subarray(0, 12).toString('hex'), length: (b.message.value as Buffer).length })),
          dlqRecords: observer.records.dlq,
          pending: observer.accounting(goodIds).map((h) => [h.hop, h.pending.length]),
          exits: fleet?.unexpectedExits,
          retries: await fleet?.metric('personahub_retries_total'),
          deadLettered: await fleet?.metric('personahub_events_dead_lettered_total'),
          notReady: notReady.slice(0, 5),
        };
      });
      watching = false;
      await watcher;
      expect(notReady.filter((r) => /breaker|unavailable/.test(r)), 'no breaker opened').toEqual([]);
      expect(notReady, 'every process stayed ready').toEqual([]);
      return { good, bad, goodIds, durationMs: Date.now() - started };
    })();
    return phase1;
  }

  it('dead-letters every bad event with its reason, lets every good one through, stalls no stage; the DLQ metric equals the DLQ topic', async () => {
    const { good, bad, goodIds } = await runPhase1();
    const f = fleet as StageFleet;
    const { observer } = t;

    // Every bad event in the DLQ, from the stage that reads its topic, with its class's code and where it came from.
    const missing = bad.filter((b) => observer.seen.dlq.get(b.dlqKey)?.errorCode !== CODE[b.cls]).map((b) => ({ key: b.dlqKey, cls: b.cls, code: observer.seen.dlq.get(b.dlqKey)?.errorCode }));
    expect(missing.slice(0, 5), 'bad events missing from the DLQ or with another code').toEqual([]);
    for (const b of bad) {
      const dead = observer.seen.dlq.get(b.dlqKey);
      expect({ key: b.dlqKey, stage: dead?.stage, code: dead?.errorCode, topic: dead?.originalTopic, attempts: dead?.attempts })
        .toEqual({ key: b.dlqKey, stage: STAGE_OF[b.topic], code: CODE[b.cls], topic: topicName(t.prefix, b.topic), attempts: 1 });
      // The original bytes are kept whole, so the event can be replayed.
      expect(dead?.originalValue?.equals(b.message.value as Buffer)).toBe(true);
    }
    const utf8 = bad.find((b) => b.cls === 'utf8' && b.topic === 'draft');
    expect(observer.seen.dlq.get(utf8?.dlqKey ?? '')?.errorMessage).toMatch(/not valid UTF-8 \(first U\+FFFD at description/);

    // Every good seed came through: drafted, enriched, validated or rejected, every validated one indexed; none dead-lettered,
    // including the seeds whose text holds a legitimate U+FFFD.
    await expectNothingLostOrDuplicated(t, goodIds, { dlq: bad.length });
    const personas = good.map((s) => personaId(s.id, 0));
    expect(personas.filter((id) => !observer.seen.enriched.has(id))).toEqual([]);
    expect(personas.filter((id) => !observer.seen.indexed.has(id) && !observer.seen.rejected.has(id))).toEqual([]);
    expect(personas.filter((id) => observer.seen.dlq.has(id))).toEqual([]);
    const fffd = good.filter((s) => s.text.includes('\uFFFD')).map((s) => personaId(s.id, 0));
    expect(fffd).toHaveLength(LEGIT_FFFD_SEEDS);
    expect(fffd.filter((id) => observer.seen.draft.get(id)?.seedId === undefined)).toEqual([]);
    const indexed = personas.filter((id) => observer.seen.indexed.has(id)).length;
    expect(indexed).toBeGreaterThan(good.length * 0.8);

    // The DLQ metric, summed over the six processes, equals the DLQ topic, in total and per stage and code.
    await until(async () => (await f.metric('personahub_events_dead_lettered_total')) === observer.records.dlq, 60_000, 'DLQ metric equal to the DLQ topic');
    expect(observer.records.dlq).toBe(bad.length);
    for (const topic of ['seed', 'draft'] as const) {
      for (const code of new Set(Object.values(CODE))) {
        const expected = bad.filter((b) => b.topic === topic && CODE[b.cls] === code).length;
        expect({ stage: STAGE_OF[topic], code, metric: await f.metric('personahub_events_dead_lettered_total', { stage: STAGE_OF[topic], code }) })
          .toEqual({ stage: STAGE_OF[topic], code, metric: expected });
      }
    }
    // Both instances of each poisoned stage took part, and every process is still up, ready, unpaused, with no breaker open.
    for (const p of [...f.of('draft'), ...f.of('enrich')]) expect(await scrape(p.metricsPort, 'personahub_events_consumed_total', { stage: p.stage }), `${p.stage} process on :${p.metricsPort} consumed`).toBeGreaterThan(0);
    expect(f.unexpectedExits).toEqual([]);
    expect(await readiness(f)).toEqual([]);
    expect(await f.metric('personahub_breaker_state')).toBe(0);
    expect(await f.metric('personahub_paused_partitions')).toBe(0);
    expect(await f.metric('personahub_retries_total'), 'poison is never waited out as if it were an outage').toBe(0);
    console.log(`poison phase 1: ${good.length} good seeds, ${bad.length} bad events, ${indexed} personas indexed, ${observer.seen.rejected.size} rejected, in ${Math.round((await runPhase1()).durationMs / 1000)} s`);
  }, 900_000);

  it('re-drives the fixable class with `personahub dlq replay` once the bound is raised; the rest stay put; a second replay changes nothing', async () => {
    const { bad, good, goodIds } = await runPhase1();
    const { observer } = t;
    const started = Date.now();

    // 1. `dlq inspect`, as an operator would run it: counts by stage and code, with samples.
    const expected = new Map<string, number>();
    for (const b of bad) expected.set(`${STAGE_OF[b.topic]}/${CODE[b.cls]}`, (expected.get(`${STAGE_OF[b.topic]}/${CODE[b.cls]}`) ?? 0) + 1);
    const inspect = await runCli(t, ['dlq', 'inspect']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const summary = JSON.parse(inspect.stdout) as DeadLetterSummary;
    expect(summary.total).toBe(bad.length);
    expect(new Map(summary.byStageAndCode.map((g) => [`${g.stage}/${g.code}`, g.count]))).toEqual(expected);
    expect(summary.byStageAndCode.map((g) => g.count)).toEqual([...summary.byStageAndCode.map((g) => g.count)].sort((a, b) => b - a));
    expect(summary.samples).toHaveLength(2 * expected.size);
    expect(summary.samples.find((s) => s.code === 'PH_EVENT_TOO_LARGE' && s.stage === 'draft')?.message).toMatch(/larger than PERSONAHUB_MAX_EVENT_BYTES=8192/);
    const narrow = await runCli(t, ['dlq', 'inspect', '--stage', 'enrich', '--code', 'PH_SERDE_INVALID_UTF8', '--samples', '1']);
    expect(narrow.code, narrow.stderr).toBe(0);
    const narrowSummary = JSON.parse(narrow.stdout) as DeadLetterSummary;
    expect(narrowSummary.byStageAndCode.map((g) => [g.stage, g.code, g.count])).toEqual([['enrich', 'PH_SERDE_INVALID_UTF8', PER_CLASS.draft.utf8]]);
    expect(narrowSummary.samples).toHaveLength(1);

    // 2. The fix: a larger bound, deployed by restarting every stage process with it.
    const old = fleet as StageFleet;
    const running = old.processes.length;
    expect(await old.stopAll(), 'every stage process exits 0 on SIGTERM').toEqual(Array.from({ length: running }, () => 0));
    const f = new StageFleet(t, { PERSONAHUB_MAX_EVENT_BYTES: '1000000' });
    fleet = f;
    await f.startAll(['draft', 'enrich', 'validate', 'index']);
    await allReady(f);

    // 3. `dlq replay` of the fixable class: the draft stage's oversize seeds. A dry run first says what it would send.
    const fixable = bad.filter((b) => b.topic === 'seed' && b.cls === 'oversize');
    const fixableSeeds = new Set(fixable.map((b) => b.dlqKey));
    const fixablePersonas = fixable.map((b) => personaId(b.dlqKey, 0));
    const replayArgs = ['dlq', 'replay', '--stage', 'draft', '--code', 'PH_EVENT_TOO_LARGE'];
    const dry = await runCli(t, [...replayArgs, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ replayed: 0, wouldReplay: fixable.length });
    const replay = await runCli(t, replayArgs);
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toEqual({ replayed: fixable.length, notReplayable: 0, matched: [expect.objectContaining({ stage: 'draft', code: 'PH_EVENT_TOO_LARGE', count: fixable.length })] });

    const replayedDone = () => fixablePersonas.every((id) => observer.seen.draft.has(id)) && observer.accounting(fixableSeeds).every((h) => h.pending.length === 0);
    await until(replayedDone, HANG_GUARD_MS, 'every replayed seed drafted and accounted for downstream');
    // The replayed ones are indexed now, like any good seed.
    expect(fixablePersonas.filter((id) => !observer.seen.indexed.has(id)).map((id) => [id, observer.seen.rejected.get(id)?.reasons.map((r) => r.code)])).toEqual([]);
    const stored = await Promise.all(fixablePersonas.map(async (id) => (await t.pipeline.ctx.store.getPersona(id))?.id));
    expect(stored, 'a store row for every replayed persona').toEqual(fixablePersonas);
    await until(async () => (await f.metric('personahub_dlq_replayed_total', { stage: 'draft' })) === fixable.length, 60_000, 'replays counted');

    // The others are untouched: still dead letters only, nothing of them downstream, no new dead letter.
    const others = bad.filter((b) => !fixable.includes(b));
    expect(others.filter((b) => (b.topic === 'seed' ? observer.seen.draft.has(personaId(b.dlqKey, 0)) : observer.seen.enriched.has(b.dlqKey))).map((b) => b.dlqKey)).toEqual([]);
    expect(observer.records.dlq).toBe(bad.length);
    expect(await f.metric('personahub_events_dead_lettered_total')).toBe(0);

    // 4. The same replay again: every input is already processed under the first replay's delivery, so each is skipped.
    const snapshot = () => ({
      draft: observer.records.draft, enriched: observer.records.enriched, validated: observer.records.validated,
      rejected: observer.records.rejected, indexed: observer.records.indexed, dlq: observer.records.dlq,
    });
    const before = snapshot();
    const again = await runCli(t, replayArgs);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ replayed: fixable.length, notReplayable: 0 });
    await until(async () => (await f.metric('personahub_inputs_skipped_total', { stage: 'draft' })) === fixable.length, HANG_GUARD_MS, 'the second replay skipped by the draft stage');
    expect(await f.metric('personahub_dlq_replayed_total', { stage: 'draft' })).toBe(2 * fixable.length);
    expect(await f.metric('personahub_events_produced_total', { stage: 'draft' }), 'the draft stage produced only the first replay\'s drafts').toBe(fixable.length);

    // Exactly one record per persona on every topic past the seeds (which hold each replayed seed three times now:
    // the original and two replays), one store row per validated persona, one INSERTED per indexed one.
    expect(snapshot()).toEqual(before);
    for (const event of ['draft', 'enriched', 'validated', 'rejected', 'indexed', 'dlq'] as const) {
      expect({ event, records: observer.records[event] }).toEqual({ event, records: observer.seen[event].size });
    }
    expect(observer.records.seed).toBe(observer.seen.seed.size + 2 * fixable.length);
    expect(await t.pipeline.ctx.store.countPersonas()).toBe(observer.seen.validated.size);
    expect([...observer.indexedOutcomes].filter(([, o]) => o.filter((x) => x === 'INSERTED' || x === 'UPDATED').length !== 1)).toEqual([]);
    const all = new Set([...goodIds, ...fixableSeeds]);
    expect(observer.accounting(all).map((h) => [h.hop, h.pending.length])).toEqual(observer.accounting(all).map((h) => [h.hop, 0]));
    expect(f.unexpectedExits).toEqual([]);
    console.log(`poison phase 2 (inspect, restart with a larger bound, replay ${fixable.length}, replay again): ${Math.round((Date.now() - started) / 1000)} s; ${good.length + fixable.length} seeds in all`);
  }, 900_000);
});
