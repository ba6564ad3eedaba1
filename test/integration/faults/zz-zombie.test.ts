import pg from 'pg';
import { AssignerProtocol } from 'kafkajs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { groupId, stages, topicName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, StageFleet, until } from '../../helpers/faults.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';
import { committedLogObserver, metricsText, metricSum, OffsetProbe, pipelineTopics, readLog, seedRange } from '../../helpers/transactions.ts';

let t: TestPipeline;
let fleet: StageFleet;
beforeAll(async () => {
  t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PARTITIONS: '3', PERSONAHUB_SESSION_TIMEOUT_MS: '6000' });
  fleet = new StageFleet(t);
  await fleet.startAll(stages.map((s) => s.name));
});
afterAll(async () => { await fleet?.stopAll('SIGKILL'); await t?.close(); });

async function members(t: TestPipeline) {
  const admin = t.pipeline.kafka.admin(); await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId(t.prefix, 'enrich')]);
    const g = groups[0];
    return { state: g?.state, members: (g?.members ?? []).map((m) => ({ id: m.memberId, parts: AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[topicName(t.prefix, 'draft')] ?? [] })) };
  } finally { await admin.disconnect(); }
}

it('zombie window', async () => {
  const ingested = new Set<string>();
  let next = 0;
  const wave = async (n = 100) => { const w = seedRange(t, next, n); next += n; for (const s of w) ingested.add(s.id); await t.ingest(w); };
  const held = (m: string) => metricSum(m, 'personahub_events_consumed_total') - metricSum(m, 'personahub_events_produced_total') - metricSum(m, 'personahub_inputs_skipped_total');
  const lagParts = (m: string) => new Set(m.split('\n').filter((l) => l.startsWith('personahub_consumer_lag{')).map((l) => /partition="(\d+)"/.exec(l)?.[1])).size;
  await wave();
  const [a] = fleet.of('enrich');
  if (!a) throw new Error('no a');
  const enriched = topicName(t.prefix, 'enriched');
  const probe = await OffsetProbe.open(t.pipeline.kafka, [enriched]);
  let open: { partition: number; from: number; to: number }[] = [];
  await until(async () => {
    if (t.observer.settled(ingested)) await wave();
    const m = await metricsText(a.metricsPort);
    if (!(held(m) > 0 && lagParts(m) === 3)) return false;
    a.child.kill('SIGSTOP');
    open = (await probe.ends()).filter((e) => e.lso < e.hw).map((e) => ({ partition: e.partition, from: e.lso, to: e.hw }));
    if (open.length > 0) return true;
    a.child.kill('SIGCONT');
    return false;
  }, 300_000, 'A frozen in an open transaction');
  await probe.close();
  console.log('A frozen with open', open);
  // Hold the new owner before its first commit: lock enrich's claims.
  const db = new pg.Client(t.config.databaseUrl); await db.connect();
  await db.query('BEGIN');
  const locked = await db.query("SELECT identity FROM input_claims WHERE stage = 'enrich' FOR UPDATE");
  console.log('locked claims', locked.rowCount);
  const b = await fleet.start('enrich');
  await until(async () => { const g = await members(t); return g.state === 'Stable' && g.members.length === 1 && g.members[0]!.parts.length === 3; }, 120_000, 'B owns everything');
  console.log('group', JSON.stringify(await members(t)));
  await until(async () => held(await metricsText(b.metricsPort)) > 0, 120_000, 'B holding a chunk');
  console.log('B held', held(await metricsText(b.metricsPort)), 'B produced', metricSum(await metricsText(b.metricsPort), 'personahub_events_produced_total'));
  a.child.kill('SIGCONT');
  await until(async () => {
    const log = (await readLog(t.pipeline.kafka, [enriched])).get(enriched) ?? [];
    const inRange = log.filter((r) => open.some((o) => o.partition === r.partition && Number(r.offset) >= o.from && Number(r.offset) < o.to));
    return inRange.length > 0 && inRange.every((r) => r.state !== 'open');
  }, 120_000, 'A\'s transaction ended');
  const log = (await readLog(t.pipeline.kafka, [enriched])).get(enriched) ?? [];
  const inRange = log.filter((r) => open.some((o) => o.partition === r.partition && Number(r.offset) >= o.from && Number(r.offset) < o.to));
  console.log('A txn records states', inRange.map((r) => r.state).join(','));
  await fleet.stop(a, 'SIGKILL');
  await db.query('COMMIT'); await db.end();
  while (next < 600) await wave();
  await t.observer.waitUntilSettled(ingested, { timeoutMs: 300_000 });
  let audit = await committedLogObserver(t);
  await until(async () => (audit = await committedLogObserver(t)).settled(ingested), 300_000, 'settled');
  console.log('records', JSON.stringify(audit.records), 'seen enriched', audit.seen.enriched.size);
  expect(await fleet.stopAll('SIGTERM')).toEqual([0, 0, 0, 0]);
  audit = await committedLogObserver(t);
  await expectNothingLostOrDuplicated({ ...t, observer: audit }, ingested, { dlq: 0 });
}, 900_000);
