import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Persona } from '../../schemas/types.generated.ts';
import { stages } from '../../topology/index.ts';
import { expectNothingLostOrDuplicated, StageFleet, until } from '../helpers/faults.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import { metricsText, metricSum } from '../helpers/transactions.ts';

/**
 * Persona-to-Persona on the real stack, each stage its own process: the lattice stays inside its depth
 * and per-root budget, the relate stage killed with SIGKILL mid-run and started again expands no persona
 * twice, every derived persona's lineage leads back to its root seed, and every edge is in the store.
 */
const DEPTH = 2;
const FANOUT = 2;
const BUDGET = 3;
const SEEDS = 40;

describe('the persona lattice', () => {
  let t: TestPipeline;
  let fleet: StageFleet;

  beforeAll(async () => {
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_SESSION_TIMEOUT_MS: '6000',
      PERSONAHUB_LATTICE_DEPTH: String(DEPTH), PERSONAHUB_LATTICE_FANOUT: String(FANOUT), PERSONAHUB_LATTICE_BUDGET: String(BUDGET),
    });
    fleet = new StageFleet(t);
    await fleet.startAll(stages.map((s) => s.name));
  }, 300_000);

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL');
    await t?.close();
  });

  it('grows within its bounds, survives a kill -9 of the relate stage without expanding twice, and keeps lineage and edges', async () => {
    const seeds = t.seeds(SEEDS);
    const ingested = new Set(seeds.map((s) => s.id));
    await t.ingest(seeds);

    // Kill relate once it has emitted expansions and still has work: mid-run, with a chunk in hand if the moment allows.
    const [relate] = fleet.of('relate');
    if (!relate) throw new Error('no relate process');
    await until(async () => {
      const m = await metricsText(relate.metricsPort);
      return metricSum(m, 'personahub_events_produced_total') > 0;
    }, 300_000, 'relate emitting expansion seeds');
    const held = metricSum(await metricsText(relate.metricsPort), 'personahub_events_consumed_total');
    await fleet.stop(relate, 'SIGKILL');
    console.log(`[lattice] relate killed after consuming ${held} validated personas; ${[...t.observer.seen.seed.values()].filter((s) => s.parentPersonaId !== null).length} expansion seeds seen so far`);
    await fleet.start('relate');

    expect(await t.observer.waitUntilSettled(ingested, { timeoutMs: 600_000 }), 'settled, lattice included').toBe(true);
    await expectNothingLostOrDuplicated(t, ingested, { dlq: 0 });

    const expansions = [...t.observer.seen.seed.values()].filter((s) => s.parentPersonaId !== null);
    const validated = [...t.observer.seen.validated.values()];
    const byId = new Map<string, Persona>(validated.map((p) => [p.id, p]));
    const derived = validated.filter((p) => (p.lineage?.depth ?? 0) > 0);

    // Depth and budget.
    expect(Math.max(...expansions.map((s) => s.depth))).toBe(DEPTH);
    const perRoot = new Map<string, number>();
    for (const s of expansions) perRoot.set(s.rootSeedId ?? '', (perRoot.get(s.rootSeedId ?? '') ?? 0) + 1);
    expect([...perRoot.keys()].every((root) => ingested.has(root)), 'every expansion rooted in an ingested seed').toBe(true);
    expect(Math.max(...perRoot.values())).toBe(BUDGET);
    expect(derived.length).toBeGreaterThan(SEEDS);

    // Expanded once: each parent's expansion seeds are exactly its one recorded grant (the seed topic
    // holds no duplicate, checked above), and no parent at the maximum depth expanded.
    const perParent = new Map<string, number>();
    for (const s of expansions) perParent.set(s.parentPersonaId ?? '', (perParent.get(s.parentPersonaId ?? '') ?? 0) + 1);
    const grants = await t.pipeline.ctx.store.expansionGrants([...byId.keys()]);
    for (const [parent, count] of perParent) expect({ parent, count }).toEqual({ parent, count: grants.get(parent) });
    expect(validated.filter((p) => (p.lineage?.depth ?? 0) >= DEPTH && grants.has(p.id))).toEqual([]);

    // Lineage: every derived persona's parents lead, a depth at a time, to a depth-0 persona of its root seed.
    for (const p of derived) {
      let node: Persona | undefined = p;
      const path: string[] = [];
      while (node && (node.lineage?.depth ?? 0) > 0) {
        path.push(node.id);
        const parent: Persona | undefined = byId.get(node.lineage?.parentPersonaId ?? '');
        expect(parent?.lineage?.depth, `parent of ${node.id} one level up`).toBe((node.lineage?.depth ?? 0) - 1);
        node = parent;
      }
      expect(node?.seedId, `root of ${path.join(' ← ')}`).toBe(p.lineage?.rootSeedId);
    }

    // Edges: each indexed derived persona is reachable from its parent, with the relation's kind.
    for (const p of derived) {
      const edges = await t.pipeline.ctx.store.neighbours(p.id, 1);
      expect(edges).toContainEqual(expect.objectContaining({ from: p.lineage?.parentPersonaId, to: p.id, kind: p.lineage?.relationKind, depth: p.lineage?.depth, hops: 1 }));
    }
    const tables = await t.pipeline.ctx.store.latticeTables({ limitEdges: 10_000 });
    expect(tables.personasByDepth.map((d) => d.depth)).toEqual([0, 1, 2]);
    console.log(`[lattice] ${SEEDS} seeds: ${validated.length} validated personas (${tables.personasByDepth.map((d) => `depth ${d.depth}: ${d.personas}`).join(', ')}), ${expansions.length} expansion seeds, edges by kind ${tables.edgesByKind.map((k) => `${k.kind} ${k.edges}`).join(', ')}`);
  }, 900_000);
});
