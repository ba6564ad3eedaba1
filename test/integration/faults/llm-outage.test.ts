import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { personaId } from '../../../persona/ids.ts';
import { expectNothingLostOrDuplicated, scrape, StageFleet, until, type StageProcess } from '../../helpers/faults.ts';
import { FIXTURE_CHAT_MODEL, startFixtureLlm, type FixtureLlm, type RecordedRequest } from '../../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

/**
 * An LLM outage of more than a minute in the middle of a run, against the fixture LLM over real HTTP:
 * the endpoint answers 503 to everything for 60 s, then 429 with `Retry-After: 90` for a while, then
 * recovers. The draft stage (LLM mode) must wait it all out: no dead letter, nothing lost or duplicated,
 * not ready while its LLM breaker is open and ready again after, honouring the 90 s, and, thanks to
 * the breaker, sending only a few probes to the endpoint while it is down.
 */

const OUTAGE_503_MS = 60_000;
/** The 429 phase lasts until the stage has met a 429, and this much longer. */
const RATE_LIMITED_AFTER_FIRST_MS = 10_000;
const RETRY_AFTER_S = 90;
const HANG_GUARD_MS = 600_000;

interface Sample {
  at: number;
  status: number;
  reasons: string[];
  breaker: number;
  paused: number;
}

async function sample(p: StageProcess): Promise<Sample> {
  let status = 0;
  let reasons: string[] = [];
  try {
    const res = await fetch(`http://127.0.0.1:${p.metricsPort}/health/ready`, { signal: AbortSignal.timeout(5_000) });
    status = res.status;
    reasons = ((await res.json()) as { reasons: string[] }).reasons;
  } catch (error) {
    reasons = [`no answer: ${(error as Error).message}`];
  }
  return {
    at: Date.now(), status, reasons,
    breaker: await scrape(p.metricsPort, 'personahub_breaker_state', { stage: 'draft', dependency: 'llm' }),
    paused: await scrape(p.metricsPort, 'personahub_paused_partitions', { stage: 'draft' }),
  };
}

/**
 * The most probes a breaker can let through in `ms` of outage: open periods start at PERSONAHUB_BREAKER_OPEN_MS
 * and double up to PERSONAHUB_RETRY_MAX_DELAY_MS, each at least half its ceiling (equal jitter), one probe after each.
 */
function maxProbes(ms: number, openMs: number, capMs: number): number {
  let probes = 1;
  for (let elapsed = 0, k = 0; ; k += 1) {
    elapsed += Math.min(capMs, openMs * 2 ** k) / 2;
    if (elapsed > ms) return probes;
    probes += 1;
  }
}

/** Waits until every process of the fleet is ready, failing at once (with the exit codes) if one exits instead. */
async function allReady(fleet: StageFleet, timeoutMs = 180_000): Promise<void> {
  await until(async () => {
    if (fleet.unexpectedExits.length > 0) throw new Error(`a stage process exited: ${JSON.stringify(fleet.unexpectedExits)}`);
    const codes = await Promise.all(fleet.processes.map(async (p) => (await fetch(`http://127.0.0.1:${p.metricsPort}/health/ready`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined))?.status));
    return codes.every((c) => c === 200);
  }, timeoutMs, 'every stage process ready');
}

describe('LLM outage: 60 s of 503, then 429 with Retry-After: 90, then healthy', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;
  let fleet: StageFleet | undefined;

  beforeAll(async () => {
    llm = await startFixtureLlm();
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL, PERSONAHUB_EMBEDDER: 'hash',
      // The draft stage is the endpoint's only caller here, so the 429 the test waits for is one the draft
      // stage met (with model-written modalities, the enrich stage's calls would meet it first).
      PERSONAHUB_MODALITIES: 'sampler',
    });
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await t?.close();
    await llm?.close();
  });

  it('waits the outage out: no dead letter, nothing lost or duplicated, not ready while down, few probes, Retry-After honoured', async () => {
    const started = Date.now();
    const config = loadConfig(t.env);
    const f = new StageFleet(t);
    fleet = f;
    await f.startAll(['draft', 'enrich', 'validate', 'index']);
    await allReady(f);
    const [draft] = f.of('draft');
    if (!draft) throw new Error('no draft process');

    const seeds = t.seeds(90);
    expect(seeds).toHaveLength(90);
    const [wave1, wave2] = [seeds.slice(0, 45), seeds.slice(45)];
    const { observer } = t;
    const drafted = (ids: readonly string[]) => ids.filter((id) => observer.seen.draft.has(personaId(id, 0))).length;

    // Healthy first: the run is under way when the endpoint goes down.
    await t.ingest(wave1);
    await until(() => drafted(wave1.map((s) => s.id)) >= 10, 120_000, 'ten drafts before the outage');

    const samples: Sample[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        samples.push(await sample(draft));
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();

    // 1. Down: 503 to every request for 60 s. The rest of the seeds arrive meanwhile.
    const outageStart = Date.now();
    const firstOutageRequest = llm.requests.length;
    llm.setFaults({ sequence: [{ status: 503 }], repeat: true });
    await t.ingest(wave2);
    await new Promise((r) => setTimeout(r, OUTAGE_503_MS));
    const requests503 = llm.requests.slice(firstOutageRequest);
    const rateLimitStart = Date.now();

    // 2. Rate limited: 429 with Retry-After: 90, until the stage has met it, and a while longer.
    const first429Request = llm.requests.length;
    llm.setFaults({ sequence: [{ status: 429, retryAfterSeconds: RETRY_AFTER_S }], repeat: true });
    await until(() => llm.requests.slice(first429Request).some((r) => r.status === 429), 120_000, 'the stage meets a 429');
    await new Promise((r) => setTimeout(r, RATE_LIMITED_AFTER_FIRST_MS));
    llm.setFaults(undefined);
    const healthyAt = Date.now();
    const requests429 = llm.requests.slice(first429Request);

    // 3. Healthy again: everything comes through.
    const ids = new Set(seeds.map((s) => s.id));
    await until(() => observer.settled(ids), HANG_GUARD_MS, 'every seed accounted for at every hop after the outage');
    await allReady(f);
    samples.push(await sample(draft));
    watching = false;
    await watcher;

    // No dead letter, nothing lost, nothing duplicated; every draft written by the LLM.
    await expectNothingLostOrDuplicated(t, ids, { dlq: 0 });
    expect([...observer.seen.draft.values()].filter((p) => p.provenance.mode !== 'LLM')).toEqual([]);
    expect(await f.metric('personahub_events_dead_lettered_total')).toBe(0);
    expect(f.unexpectedExits).toEqual([]);

    // The metrics tell the story: transient failures waited out (503s, then 429s), failed LLM calls, the breaker opened and closed.
    const retries503 = await scrape(draft.metricsPort, 'personahub_retries_total', { stage: 'draft', reason: 'process:PH_LLM_SERVER_ERROR' });
    const retries429 = await scrape(draft.metricsPort, 'personahub_retries_total', { stage: 'draft', reason: 'process:PH_LLM_RATE_LIMITED' });
    const llmErrors = await scrape(draft.metricsPort, 'personahub_llm_requests_total', { kind: 'chat', status: 'error' });
    expect(retries503).toBeGreaterThan(0);
    expect(retries429).toBeGreaterThan(0);
    expect(llmErrors).toBeGreaterThanOrEqual(retries503 + retries429);
    expect(await scrape(draft.metricsPort, 'personahub_llm_requests_total', { kind: 'chat', status: 'ok' })).toBeGreaterThanOrEqual(seeds.length);
    const during = samples.filter((s) => s.at >= outageStart && s.at <= healthyAt);
    expect(Math.max(...during.map((s) => s.breaker)), 'breaker open (2) during the outage').toBe(2);
    expect(Math.max(...during.map((s) => s.paused)), 'fetching paused during the outage').toBeGreaterThan(0);
    expect(await f.metric('personahub_breaker_state')).toBe(0);
    expect(await f.metric('personahub_paused_partitions')).toBe(0);

    // Readiness: 503 with the reason while the breaker was open, 200 again after.
    const notReady = during.filter((s) => s.status === 503);
    expect(notReady.length).toBeGreaterThan(0);
    expect(notReady.some((s) => s.reasons.includes('draft: llm unavailable (breaker open)'))).toBe(true);
    expect(samples.at(-1)).toMatchObject({ status: 200, reasons: [], breaker: 0, paused: 0 });

    // Retry-After honoured: after the last 429, the stage asked nothing for 90 s (a lower bound: a slow machine only waits longer).
    const served429 = requests429.filter((r) => r.status === 429);
    expect(served429, 'one probe met the rate limit, then the stage waited its 90 s').toHaveLength(1);
    const last429 = served429.at(-1) as RecordedRequest;
    const next = llm.requests.find((r) => r.index > last429.index);
    const quietMs = (next?.receivedAt ?? 0) - (last429.respondedAt ?? last429.receivedAt);
    expect(quietMs).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000 - 1_000);

    // Few probes: while the endpoint answered 503, the stage sent at most what was in flight when it went down
    // (partitions in process x events per chunk, each with the client's retries) plus one event's retries per probe.
    const attemptsPerEvent = config.llmMaxRetries + 1;
    const inFlightAtStart = config.partitionConcurrency * config.maxInFlight;
    const probes = maxProbes(rateLimitStart - outageStart, config.breakerOpenMs, config.retryMaxDelayMs);
    expect(requests503.length).toBeGreaterThan(0);
    expect(requests503.length).toBeLessThanOrEqual((inFlightAtStart + probes) * attemptsPerEvent);
    const openedAt = during.find((s) => s.breaker === 2)?.at ?? outageStart;
    const whileOpen = requests503.filter((r: RecordedRequest) => r.receivedAt > openedAt).length;
    console.log([
      `LLM outage: ${Math.round((rateLimitStart - outageStart) / 1000)} s of 503 (${requests503.length} requests to the fixture, ${whileOpen} of them after the breaker was seen open;`,
      `a breaker-bounded ceiling of ${(inFlightAtStart + probes) * attemptsPerEvent}),`,
      `${Math.round((healthyAt - rateLimitStart) / 1000)} s of 429 + Retry-After: ${RETRY_AFTER_S} (${requests429.length} requests, ${served429.length} answered 429),`,
      `quiet for ${Math.round(quietMs / 1000)} s after the 429; retries: ${retries503} for 503, ${retries429} for 429; chat calls failed: ${llmErrors};`,
      `not ready in ${notReady.length} of ${during.length} samples; ${observer.seen.indexed.size} indexed, ${observer.seen.rejected.size} rejected; test ${Math.round((Date.now() - started) / 1000)} s`,
    ].join(' '));
  }, 900_000);
});
