import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { hashEmbed } from '../../../llm/embedder.ts';
import { nearDuplicate } from '../../../persona/dedup.ts';
import { bandKeys, lshParams, signatureFromBuffer, signatureOf, signatureToBuffer } from '../../../persona/minhash.ts';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/index.ts';

/**
 * The store's lattice and near-duplicate state under concurrency, on the PostgreSQL server: two stores
 * (two connection pools, as two validate or relate instances have) deciding at the same moment.
 */
const base = loadConfig();
const databases: string[] = [];
const admin = new pg.Client(base.databaseUrl);
const openFresh = async (): Promise<[Store, Store]> => {
  const name = `lattice_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  databases.push(name);
  const config = loadConfig({ PERSONAHUB_STORE: 'postgres', PERSONAHUB_DATABASE_URL: base.databaseUrl.replace(/\/[^/]+$/, `/${name}`) });
  const a = await openStore(config);
  await a.migrate();
  const b = await openStore(config);
  return [a, b];
};

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

const params = lshParams(0.9, 128);
const thresholds = { jaccard: 0.9, cosine: 0.9 };

/** What the validate stage asks the store for one description (hash embeddings: the same words, the same vector). */
function claimFor(store: Store, id: string, description: string, neighbours = 0) {
  const signature = signatureOf(description);
  const embedding = hashEmbed(description, 384);
  return store.claimNearDuplicate(
    { personaId: id, signature: signatureToBuffer(signature), bandKeys: bandKeys(signature, params), embedding, neighbours },
    (candidates) => nearDuplicate(signature, embedding, candidates.map((c) => ({ id: c.id, embedding: c.embedding, signature: c.signature && signatureFromBuffer(c.signature) })), thresholds),
  );
}

describe('near-duplicate claims across two instances', () => {
  // Each round a new pair of near twins (one word apart in 48: the pair is a candidate by its band keys, deterministically), claimed by the two stores at once.
  // Without the band locks both would find no candidate and both pass; the count below is how often
  // the race is on, and every round must end with exactly one passed.
  const ROUNDS = 300;

  it(`never passes both of two near twins decided at the same moment (${ROUNDS} rounds)`, async () => {
    const [a, b] = await openFresh();
    try {
      let bothPassed = 0;
      let onePassed = 0;
      for (let round = 0; round < ROUNDS; round += 1) {
        const words = Array.from({ length: 48 }, (_, i) => `w${round}x${i}`);
        const twin = [...words.slice(0, 47), `other${round}`];
        const [first, second] = await Promise.all([claimFor(a, `p${round}a`, words.join(' ')), claimFor(b, `p${round}b`, twin.join(' '))]);
        const passed = [first, second].filter((v) => v.duplicateOf === undefined).length;
        if (passed === 2) bothPassed += 1;
        if (passed === 1) onePassed += 1;
        // The loser names the winner.
        const loser = first.duplicateOf === undefined ? second : first;
        expect(loser.duplicateOf).toBe(first.duplicateOf === undefined ? `p${round}a` : `p${round}b`);
      }
      console.log(`[dedup race] ${ROUNDS} rounds of near twins decided concurrently by two stores: one passed ${onePassed}, both passed ${bothPassed}`);
      expect({ bothPassed, onePassed }).toEqual({ bothPassed: 0, onePassed: ROUNDS });
    } finally {
      await a.close();
      await b.close();
    }
  }, 600_000);

  it('decides claims made together in one instance (one batch) one after the other: of twins the first passes', async () => {
    const [a, b] = await openFresh();
    try {
      const text = (round: number) => Array.from({ length: 40 }, (_, i) => `v${round}y${i}`).join(' ');
      await b.close();
      expect(await claimFor(a, 'earlier', text(99), 5)).toMatchObject({ duplicateOf: undefined });
      for (let round = 0; round < 20; round += 1) {
        const twin = text(round).replace(`v${round}y39`, `twin${round}`);
        // Made in one turn of the event loop, so the store decides them as one batch, in this order.
        const verdicts = await Promise.all([
          claimFor(a, `r${round}`, text(round), 5), claimFor(a, `r${round}twin`, twin, 5),
          claimFor(a, `r${round}other`, text(round + 100), 5), claimFor(a, `r${round}`, text(round), 5),
          claimFor(a, `r${round}late`, text(99), 5),
        ]);
        expect(verdicts.map((v) => v.duplicateOf ?? ('already' in v ? 'already' : 'passed'))).toEqual(['passed', `r${round}`, 'passed', 'already', 'earlier']);
      }
    } finally {
      await a.close();
    }
  });

  it('passes a persona again when it is decided again (a redelivery), and distinct personas both', async () => {
    const [a, b] = await openFresh();
    try {
      const text = 'a retired ferry captain who restores wooden boats and teaches knots to children every saturday morning';
      expect(await claimFor(a, 'x', text)).toMatchObject({ duplicateOf: undefined });
      expect(await claimFor(b, 'x', text)).toEqual({ duplicateOf: undefined, already: true });
      expect(await claimFor(b, 'y', 'an actuary in toronto who trains for ultramarathons and keeps bees on her apartment roof')).toMatchObject({ duplicateOf: undefined });
      expect(await claimFor(a, 'z', text.replace('wooden', 'old wooden'))).toMatchObject({ duplicateOf: 'x' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('lattice budgets and edges', () => {
  it('grants a root no more than its budget, however many parents ask at once from two instances, and each parent once', async () => {
    const [a, b] = await openFresh();
    try {
      const parents = Array.from({ length: 40 }, (_, i) => `parent${i}`);
      const grants = await Promise.all(parents.map((p, i) => (i % 2 === 0 ? a : b).reserveExpansion(p, 'root', 2, 25)));
      expect(grants.reduce((x, y) => x + y, 0)).toBe(25);
      expect(grants.every((g) => g >= 0 && g <= 2)).toBe(true);
      // Asked again (a redelivery after a crash), every parent gets its first grant back.
      expect(await Promise.all(parents.map((p, i) => (i % 2 === 0 ? b : a).reserveExpansion(p, 'root', 2, 25)))).toEqual(grants);
      expect(await a.expansionGrants(parents)).toEqual(new Map(parents.map((p, i) => [p, grants[i]])));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps each edge once and gives a persona\'s neighbours to depth N in both directions', async () => {
    const [a, b] = await openFresh();
    try {
      // root → c1 → g1, root → c2; an unrelated pair elsewhere.
      for (const e of [['root', 'c1', 'colleague', 1], ['c1', 'g1', 'family', 2], ['root', 'c2', 'neighbour', 1], ['root', 'c2', 'neighbour', 1], ['x', 'y', 'rival', 1]] as const) {
        await a.addRelation({ from: e[0], to: e[1], kind: e[2], depth: e[3] });
      }
      const one = await b.neighbours('c1', 1);
      expect(one.map((e) => `${e.from}>${e.to}:${e.kind}@${e.hops}`)).toEqual(['root>c1:colleague@1', 'c1>g1:family@1']);
      const two = await b.neighbours('c1', 2);
      expect(two.map((e) => `${e.from}>${e.to}:${e.kind}@${e.hops}`)).toEqual(['root>c1:colleague@1', 'c1>g1:family@1', 'root>c2:neighbour@2']);
      const tables = await b.latticeTables({ limitEdges: 100 });
      expect(tables.edgesByKind).toEqual([{ kind: 'colleague', edges: 1 }, { kind: 'family', edges: 1 }, { kind: 'neighbour', edges: 1 }, { kind: 'rival', edges: 1 }]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
