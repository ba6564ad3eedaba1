import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashId } from '../../persona/text.ts';
import { processors } from '../../processors/registry.ts';
import { EventSource } from '../../runtime/source.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { groupId } from '../../topology/index.ts';
import { StageFleet, until } from '../helpers/faults.ts';
import { fakeContext } from '../helpers/context.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * Two validate instances (processes, one input partition each) fed near twins at the same moment:
 * each pair is one persona and its copy with other punctuation (so not an exact duplicate), keyed so
 * that the two land on different partitions and are decided by different instances at once. Never
 * both may be validated and indexed.
 */
const PAIRS = 150;

describe('near-duplicate removal across validate instances', () => {
  let t: TestPipeline;
  let fleet: StageFleet;

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PARTITIONS: '2' });
    fleet = new StageFleet(t);
    await fleet.startAll(['validate', 'validate', 'index']);
  }, 300_000);

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL');
    await t?.close();
  });

  it(`never indexes both of two near twins decided by two instances at once (${PAIRS} pairs)`, async () => {
    const ctx = fakeContext({ env: { PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' } });
    const pairs: [Persona, Persona][] = [];
    for (const seed of t.seeds(PAIRS)) {
      const [drafted] = await processors.draft.process(seed, ctx);
      if (!drafted) throw new Error('no draft');
      const [enriched] = await processors.enrich.process(drafted.value, ctx);
      if (enriched?.event !== 'enriched') throw new Error('not enriched');
      const original = enriched.value;
      const twin: Persona = { ...original, id: hashId('twin', original.id), description: original.description.replace(/\.$/, '!') };
      pairs.push([original, twin]);
    }
    const source = await EventSource.open(t.pipeline.kafka, t.pipeline.serde, t.prefix);
    try {
      // Both instances must own a partition before the twins arrive, so that they race.
      await fleet.untilReady();
      const admin = t.pipeline.kafka.admin();
      await admin.connect();
      try {
        await until(async () => {
          const [group] = (await admin.describeGroups([groupId(t.prefix, 'validate')])).groups;
          return group?.state === 'Stable' && group.members.length === 2;
        }, 180_000, 'both validate instances in the group, one partition each');
      } finally {
        await admin.disconnect();
      }
      await source.send(pairs.flatMap(([a, b]) => [{ event: 'enriched' as const, key: a.id, value: a }, { event: 'enriched' as const, key: b.id, value: b }]));
    } finally {
      await source.close();
    }
    const ids = pairs.flat().map((p) => p.id);
    await until(async () => ids.every((id) => t.observer.seen.validated.has(id) || t.observer.seen.rejected.has(id)), 600_000, 'every twin decided');
    await until(async () => [...t.observer.seen.validated.keys()].every((id) => t.observer.seen.indexed.has(id)), 600_000, 'every validated twin indexed');

    const both = pairs.filter(([a, b]) => t.observer.seen.validated.has(a.id) && t.observer.seen.validated.has(b.id));
    const neither = pairs.filter(([a, b]) => !t.observer.seen.validated.has(a.id) && !t.observer.seen.validated.has(b.id));
    const rejectedNear = [...t.observer.seen.rejected.values()].filter((r) => r.reasons.some((x) => x.code === 'NEAR_DUPLICATE'));
    const stored = await t.pipeline.ctx.store.countPersonas();
    console.log(`[dedup across instances] ${PAIRS} pairs: one kept ${PAIRS - both.length - neither.length}, both kept ${both.length}, neither ${neither.length}; near-duplicate rejections ${rejectedNear.length}; stored ${stored}`);
    expect(both.map(([a]) => a.id), 'pairs with both twins validated').toEqual([]);
    expect(neither.map(([a]) => a.id), 'pairs with no twin validated').toEqual([]);
    expect(stored).toBe(PAIRS);
    // Each rejection names the twin that was kept.
    for (const r of rejectedNear) {
      const pair = pairs.find(([a, b]) => a.id === r.id || b.id === r.id);
      expect(r.duplicateOf).toBe(pair?.find((p) => p.id !== r.id)?.id);
    }
  }, 900_000);
});
