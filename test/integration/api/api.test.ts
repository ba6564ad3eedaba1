import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../helpers/api.ts';
import { until } from '../../helpers/faults.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

interface Summary { id: string; age: number; occupation: string; mode: string; cluster: number | null }
interface Page { items: Summary[]; nextCursor: string | null }
interface ErrorBody { statusCode: number; code: string; message: string }
interface JobBody { id: string; status: string; seeds: number; sent: number; refused?: { line: number; reason: string }[]; progress?: { indexed: number; rejected: number; settled: boolean; stages: { hop: string; in: number; out: number }[] } }

/**
 * Every route of the HTTP API against the real stack: a prefix-isolated pipeline (sampler mode, hash
 * embeddings) indexes a sample of the bundled seeds, and the API reads its store and sends to its topics.
 */
describe('HTTP API', () => {
  let t: TestPipeline;
  let api: TestApi;
  const SEEDS = 40;

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    await t.startStages();
    const seeds = t.seeds(SEEDS);
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 240_000 })).toBe(true);
    api = await createTestApi(t);
  });

  afterAll(async () => {
    await api?.close();
    await t?.close();
  });

  const get = (url: string, scope: 'read' | 'write' | null = 'read') => api.app.inject({ method: 'GET', url, headers: scope ? api.auth(scope) : {} });
  const post = (url: string, payload: object | string, scope: 'read' | 'write' | null = 'write', headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url, payload, headers: { ...(scope ? api.auth(scope) : {}), ...headers } });

  /** Every persona through the listing, page by page. */
  async function listAll(query: string, limit = 7): Promise<Summary[]> {
    const all: Summary[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`/personas?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<Page>();
      expect(page.items.length).toBeLessThanOrEqual(limit);
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }

  describe('operations', () => {
    it('serves /health, /ready and /metrics without a key', async () => {
      expect((await get('/health', null)).json()).toEqual({ status: 'ok', reasons: [] });
      expect((await get('/ready', null)).json()).toEqual({ status: 'ok', reasons: [] });
      await get('/stats');
      const metrics = await get('/metrics', null);
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/personahub_api_requests_total\{method="GET",route="\/stats",status="200"\} 1/);
    });

    it('serves its OpenAPI 3.1 document and a rendered reference', async () => {
      const doc = (await get('/openapi.json', null)).json<{ openapi: string; paths: Record<string, Record<string, { security?: unknown }>> }>();
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths).sort()).toEqual(['/clusters', '/health', '/jobs', '/jobs/{id}', '/metrics', '/personas', '/personas/{id}', '/personas/{id}/neighbours', '/personas/{id}/similar', '/preview', '/ready', '/search', '/stats', '/stats/fidelity', '/stats/validation']);
      expect(doc.paths['/personas']?.get?.security).toBeDefined();
      expect(doc.paths['/health']?.get?.security).toBeUndefined();
      const page = await api.app.inject({ method: 'GET', url: '/docs/' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
    });
  });

  describe('authentication', () => {
    it('refuses a request without a key, with an unknown key, and a write with a read key', async () => {
      const none = await get('/personas', null);
      expect(none.statusCode).toBe(401);
      expect(none.json<ErrorBody>()).toMatchObject({ code: 'PH_API_UNAUTHENTICATED', message: expect.stringContaining('Authorization: Bearer') });
      const unknown = await api.app.inject({ method: 'GET', url: '/personas', headers: { authorization: 'Bearer phk_not-a-key' } });
      expect(unknown.statusCode).toBe(401);
      expect(unknown.json<ErrorBody>().code).toBe('PH_API_KEY_UNKNOWN');
      const readOnly = await post('/jobs', { seeds: ['a text'] }, 'read');
      expect(readOnly.statusCode).toBe(403);
      expect(readOnly.json<ErrorBody>().message).toContain('write key');
    });

    it('takes the key from X-API-Key too, and stores only its hash', async () => {
      const res = await api.app.inject({ method: 'GET', url: '/stats', headers: { 'x-api-key': api.keys.read } });
      expect(res.statusCode).toBe(200);
      const stored = await api.store.corpus.findApiKey(api.keys.read);
      expect(stored).toBeUndefined();
    });
  });

  describe('personas', () => {
    it('gets one persona whole, and says 404 for an unknown id and 400 for a malformed one', async () => {
      const [first] = (await get('/personas?limit=1')).json<Page>().items;
      const res = await get(`/personas/${first?.id}`);
      expect(res.statusCode).toBe(200);
      const p = res.json<Record<string, unknown>>();
      expect(p).toMatchObject({ id: first?.id, provenance: { mode: 'SAMPLER', model: 'sampler' }, lineage: { depth: 0 } });
      expect(p.modalities).toHaveProperty('bigFive');
      expect(p.attributes).toHaveProperty('traits');
      expect(p.validation).toHaveProperty('textHash');
      const missing = await get(`/personas/${'0'.repeat(32)}`);
      expect(missing.statusCode).toBe(404);
      expect(missing.json<ErrorBody>()).toMatchObject({ code: 'PH_API_PERSONA_NOT_FOUND', message: `no persona ${'0'.repeat(32)}` });
      const malformed = await get('/personas/not-an-id');
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json<ErrorBody>().message).toContain('params/id');
    });

    it('pages through every persona once, in id order', async () => {
      const all = await listAll('');
      expect(all.length).toBe(await api.store.countPersonas());
      expect(all.length).toBeGreaterThan(SEEDS / 2);
      const ids = all.map((p) => p.id);
      expect(ids).toEqual([...new Set(ids)].sort());
    });

    it('refuses a cursor that was altered, made up, or issued for other filters', async () => {
      const page = (await get('/personas?limit=3&where=age>=20')).json<Page>();
      const cursor = page.nextCursor ?? '';
      expect(cursor).not.toBe('');
      const flipped = `${cursor.slice(0, 5)}${cursor[5] === 'A' ? 'B' : 'A'}${cursor.slice(6)}`;
      for (const [bad, why] of [[flipped, 'signature'], ['garbage', 'not a cursor'], [cursor, 'other filters']] as const) {
        const url = bad === cursor ? `/personas?limit=3&where=age>=21&cursor=${encodeURIComponent(bad)}` : `/personas?limit=3&where=age>=20&cursor=${encodeURIComponent(bad)}`;
        const res = await get(url);
        expect(res.statusCode, bad).toBe(400);
        expect(res.json<ErrorBody>()).toMatchObject({ code: 'PH_API_CURSOR', message: expect.stringContaining(why) });
      }
    });

    it('filters with the filter language, case-insensitively, and says which clause is wrong', async () => {
      const all = await listAll('', 100);
      const older = await listAll(`&where=${encodeURIComponent('age>=40')}`);
      expect(older.map((p) => p.id)).toEqual(all.filter((p) => p.age >= 40).map((p) => p.id));
      const occupation = all[0]?.occupation ?? '';
      const same = await listAll(`&where=${encodeURIComponent(`occupation=${occupation.toUpperCase()}`)}`);
      expect(same.map((p) => p.id)).toEqual(all.filter((p) => p.occupation.toLowerCase() === occupation.toLowerCase()).map((p) => p.id));
      const notSame = await listAll(`&where=${encodeURIComponent(`occupation!=${occupation}`)}`);
      expect(notSame.length + same.length).toBe(all.length);
      expect(await listAll('&mode=SAMPLER&depth=0')).toHaveLength(all.length);
      expect(await listAll('&mode=LLM')).toHaveLength(0);
      const bad = await get(`/personas?where=${encodeURIComponent('shoeSize>3')}`);
      expect(bad.statusCode).toBe(400);
      expect(bad.json<ErrorBody>()).toMatchObject({ code: 'PH_FILTER_ATTRIBUTE', message: expect.stringContaining('shoeSize') });
      const unknownParam = await get('/personas?colour=red');
      expect(unknownParam.statusCode).toBe(400);
    });
  });

  describe('modify', () => {
    it('turns a modification into the next version through the pipeline, keeping the one it replaced', async () => {
      const [target] = await listAll('', 1);
      if (!target) throw new Error('no persona');
      const before = (await get(`/personas/${target.id}`)).json<{ version: number; description: string; versions: unknown[] }>();
      expect(before.versions).toHaveLength(1);
      const description = `${before.description} On weekends this person also restores old lighthouse lenses.`;
      const res = await api.app.inject({ method: 'PATCH', url: `/personas/${target.id}`, payload: { description }, headers: api.auth('write') });
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json()).toEqual({ id: target.id, version: before.version + 1, status: 'submitted' });
      type Full = { version: number; description: string; validation: { checks: string[] } | null; versions: { version: number; description: string; replacedAt: number | null }[] };
      let after = before as Full;
      for (let i = 0; i < 240 && after.version === before.version; i += 1) {
        await new Promise((r) => setTimeout(r, 500));
        after = (await get(`/personas/${target.id}`)).json<Full>();
      }
      // Re-validated and re-indexed as the next version; the first stays retrievable.
      expect(after.version).toBe(before.version + 1);
      expect(after.description).toBe(description);
      expect(after.validation?.checks.length).toBeGreaterThan(0);
      expect(after.versions.map((v) => [v.version, v.description, v.replacedAt === null])).toEqual([
        [before.version, before.description, false], [before.version + 1, description, true],
      ]);
      // Search sees the new text: it finds the persona by it.
      const hits = (await post('/search', { text: description, limit: 1 }, 'read')).json<{ items: { id: string }[] }>().items;
      expect(hits[0]?.id).toBe(target.id);
    });

    it('refuses an empty or unknown change, an unknown persona, and a read key', async () => {
      const [target] = await listAll('', 1);
      const patch = (id: string, payload: object, scope: 'read' | 'write' = 'write') => api.app.inject({ method: 'PATCH', url: `/personas/${id}`, payload, headers: api.auth(scope) });
      expect((await patch(target?.id ?? '', {})).statusCode).toBe(400);
      expect((await patch(target?.id ?? '', { shoeSize: 44 })).json<ErrorBody>().message).toContain('shoeSize');
      expect((await patch('0'.repeat(32), { age: 40 })).statusCode).toBe(404);
      expect((await patch(target?.id ?? '', { age: 40 }, 'read')).statusCode).toBe(403);
    });
  });

  describe('delete', () => {
    it('deletes through a tombstone: gone from get, list and search, and the tombstone reaches the indexed topic', async () => {
      const all = await listAll('', 100);
      const victim = all[all.length - 1] as Summary;
      const description = (await get(`/personas/${victim.id}`)).json<{ description: string }>().description;
      const res = await api.app.inject({ method: 'DELETE', url: `/personas/${victim.id}`, headers: api.auth('write') });
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json()).toEqual({ id: victim.id, status: 'deleting' });
      let status = 200;
      for (let i = 0; i < 240 && status === 200; i += 1) {
        await new Promise((r) => setTimeout(r, 500));
        status = (await get(`/personas/${victim.id}`)).statusCode;
      }
      expect(status).toBe(404);
      expect((await listAll('', 100)).map((p) => p.id)).toEqual(all.filter((p) => p.id !== victim.id).map((p) => p.id));
      const hits = (await post('/search', { text: description, limit: 100 }, 'read')).json<{ items: { id: string }[] }>().items;
      expect(hits.map((h) => h.id)).not.toContain(victim.id);
      for (let i = 0; i < 120 && !t.observer.tombstones.indexed.has(victim.id); i += 1) await new Promise((r) => setTimeout(r, 500));
      expect(t.observer.tombstones.validated.has(victim.id)).toBe(true);
      expect(t.observer.tombstones.indexed.has(victim.id)).toBe(true);
      // Every other stage reading the validated topic passed the tombstone by: nothing dead-lettered for it.
      expect([...t.observer.seen.dlq.keys()]).not.toContain(victim.id);
      expect((await api.app.inject({ method: 'DELETE', url: `/personas/${victim.id}`, headers: api.auth('write') })).statusCode).toBe(404);
    });

    it('refuses a read key and an unknown persona', async () => {
      const [first] = await listAll('', 1);
      expect((await api.app.inject({ method: 'DELETE', url: `/personas/${first?.id}`, headers: api.auth('read') })).statusCode).toBe(403);
      expect((await api.app.inject({ method: 'DELETE', url: `/personas/${'0'.repeat(32)}`, headers: api.auth('write') })).statusCode).toBe(404);
    });
  });

  describe('retrieval', () => {
    it('finds a persona by its own text first, and applies filters inside the search', async () => {
      const all = await listAll('', 100);
      const target = all[0] as Summary;
      const description = (await get(`/personas/${target.id}`)).json<{ description: string }>().description;
      const hits = (await post('/search', { text: description, limit: 5 }, 'read')).json<{ items: (Summary & { score: number })[] }>().items;
      expect(hits[0]?.id).toBe(target.id);
      expect(hits[0]?.score).toBeCloseTo(1, 5);
      expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
      // A filter that excludes the best match: the search still fills its page from the rest, all of which pass.
      const filtered = (await post('/search', { text: description, limit: 100, where: `age!=${target.age}` }, 'read')).json<{ items: Summary[] }>().items;
      expect(filtered.map((h) => h.id)).not.toContain(target.id);
      expect(filtered).toHaveLength(all.filter((p) => p.age !== target.age).length);
      const bad = await post('/search', { text: description, where: 'age>>3' }, 'read');
      expect(bad.statusCode).toBe(400);
      expect(bad.json<ErrorBody>().code).toMatch(/^PH_FILTER_/);
    });

    it('lists the personas most similar to one, never itself; 404 for an unknown one', async () => {
      const [first] = await listAll('', 100);
      const res = await get(`/personas/${first?.id}/similar?limit=5`);
      expect(res.statusCode).toBe(200);
      const items = res.json<{ items: { id: string; score: number }[] }>().items;
      expect(items).toHaveLength(5);
      expect(items.map((i) => i.id)).not.toContain(first?.id);
      expect((await get(`/personas/${'f'.repeat(32)}/similar`)).statusCode).toBe(404);
    });

    it('walks the lattice neighbourhood to the depth asked, both directions; 404 for an unknown persona', async () => {
      const [a, b, c, d] = await listAll('', 100);
      if (!a || !b || !c || !d) throw new Error('the test needs four personas');
      // Edges as the relate stage records them: parent → derived persona.
      await api.store.addRelation({ from: a.id, to: b.id, kind: 'colleague', depth: 1 });
      await api.store.addRelation({ from: b.id, to: c.id, kind: 'family', depth: 2 });
      await api.store.addRelation({ from: c.id, to: d.id, kind: 'rival', depth: 3 });
      type Hood = { edges: { from: string; to: string; kind: string; hops: number }[]; personas: { id: string }[] };
      const one = (await get(`/personas/${b.id}/neighbours`)).json<Hood>();
      // The persona's own record lists its direct edges.
      expect((await get(`/personas/${b.id}`)).json<{ relations: { from: string; to: string }[] }>().relations.map((r) => [r.from, r.to])).toEqual([[a.id, b.id], [b.id, c.id]]);
      expect(one.edges.map((e) => [e.from, e.to, e.kind, e.hops])).toEqual([[a.id, b.id, 'colleague', 1], [b.id, c.id, 'family', 1]]);
      expect(one.personas.map((p) => p.id)).toEqual([a.id, b.id, c.id].sort());
      const two = (await get(`/personas/${a.id}/neighbours?depth=2`)).json<Hood>();
      expect(two.edges.map((e) => [e.kind, e.hops])).toEqual([['colleague', 1], ['family', 2]]);
      const alone = (await get(`/personas/${(await listAll('', 100))[5]?.id}/neighbours?depth=3`)).json<Hood>();
      expect(alone.edges).toEqual([]);
      expect(alone.personas).toHaveLength(1);
      expect((await get(`/personas/${'e'.repeat(32)}/neighbours`)).statusCode).toBe(404);
      expect((await get(`/personas/${a.id}/neighbours?depth=7`)).statusCode).toBe(400);
    });

    it('reports clusters with labels and members, and population statistics', async () => {
      const all = await listAll('', 100);
      await api.store.setClusters(all.map((p, i) => ({ id: p.id, cluster: i % 3 })));
      const clusters = (await get('/clusters?members=2')).json<{ clusters: { cluster: number; size: number; label: string; members: unknown[] }[] }>().clusters;
      expect(clusters.map((c) => c.cluster)).toEqual([0, 1, 2]);
      expect(clusters.reduce((n, c) => n + c.size, 0)).toBe(all.length);
      for (const c of clusters) {
        expect(c.label).not.toBe('');
        expect(c.members).toHaveLength(2);
      }
      const stats = (await get('/stats')).json<{ personas: number; byMode: Record<string, number>; clusters: number; age: { histogram: { count: number }[] } }>();
      expect(stats.personas).toBe(all.length);
      expect(stats.byMode).toEqual({ SAMPLER: all.length });
      expect(stats.clusters).toBe(3);
      expect(stats.age.histogram.reduce((n, b) => n + b.count, 0)).toBe(all.length);
    });
  });

  describe('jobs', () => {
    it('runs a job of seed texts through the pipeline and reports its progress per hop', async () => {
      const texts = ['A tide-pool guide in Brittany logs crab counts at dawn.', 'Notes from a night-shift baker about sourdough hydration.'];
      const res = await post('/jobs', { seeds: texts, source: 'api-test' });
      expect(res.statusCode, res.body).toBe(202);
      const job = res.json<JobBody>();
      expect(job).toMatchObject({ seeds: 2, status: 'sending' });
      let view = job;
      for (let i = 0; i < 240 && !view.progress?.settled; i += 1) {
        await new Promise((r) => setTimeout(r, 500));
        view = (await get(`/jobs/${job.id}`)).json<JobBody>();
      }
      expect(view).toMatchObject({ status: 'sent', sent: 2, progress: { settled: true } });
      // Each persona is indexed or rejected by validation (the sampler's text can fail a coherence check).
      expect((view.progress?.indexed ?? 0) + (view.progress?.rejected ?? 0)).toBe(2);
      expect(view.progress?.stages.map((s) => [s.hop, s.in, s.out])).toEqual([
        ['seed→draft', 2, 2], ['draft→enriched', 2, 2], ['enriched→validated|rejected', 2, 2],
        ['validated→indexed', 2 - (view.progress?.rejected ?? 0), 2 - (view.progress?.rejected ?? 0)],
      ]);
    });

    it('runs a sampled-attributes job: every persona drawn from the profile under the filter', async () => {
      const res = await post('/jobs', { sample: { count: 3, profile: 'global', where: 'age>=60' } });
      expect(res.statusCode, res.body).toBe(202);
      const job = res.json<JobBody>();
      expect(job.seeds).toBe(3);
      let view = job;
      for (let i = 0; i < 240 && !view.progress?.settled; i += 1) {
        await new Promise((r) => setTimeout(r, 500));
        view = (await get(`/jobs/${job.id}`)).json<JobBody>();
      }
      expect(view.progress?.settled).toBe(true);
      const seedIds = new Set([...t.observer.seen.seed.values()].filter((sd) => sd.source === `generate:${job.id}`).map((sd) => sd.id));
      const drafts = [...t.observer.seen.draft.values()].filter((d) => seedIds.has(d.seedId));
      expect(drafts.map((d) => d.age >= 60)).toEqual([true, true, true]);
      const indexed = [...t.observer.seen.indexed.values()].filter((i) => seedIds.has(i.seedId)).map((i) => i.id);
      expect(indexed.length + (view.progress?.rejected ?? 0)).toBe(3);
      for (const id of indexed) expect((await get(`/personas/${id}`)).json<{ age: number }>().age).toBeGreaterThanOrEqual(60);
      const unknown = await post('/jobs', { sample: { count: 1, profile: 'atlantis' } });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json<ErrorBody>()).toMatchObject({ code: 'PH_PROFILE_NOT_FOUND', message: expect.stringContaining('atlantis') });
      const impossible = await post('/jobs', { sample: { count: 1, where: 'age>=200' } });
      expect(impossible.statusCode).toBe(400);
      expect(impossible.json<ErrorBody>().code).toMatch(/^PH_FILTER_/);
    });

    it('takes a JSONL upload, counting the lines it refuses', async () => {
      const body = '{"text":"A retired ferry captain restores a wooden dinghy."}\nnot json\n{"text":"A beekeeper\'s forum post on varroa mites."}\n';
      const res = await post('/jobs', body, 'write', { 'content-type': 'application/x-ndjson' });
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json<JobBody>()).toMatchObject({ seeds: 2, refused: [{ line: 2, reason: 'BAD_JSON' }] });
      const nothing = await post('/jobs', 'not json\n', 'write', { 'content-type': 'application/x-ndjson' });
      expect(nothing.statusCode).toBe(400);
      expect(nothing.json<ErrorBody>()).toMatchObject({ code: 'PH_API_NO_SEEDS', message: expect.stringContaining('BAD_JSON') });
    });

    it('cancels a job between batches: what was sent stays sent, the rest is never sent', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => { release = resolve; });
      const batches: number[] = [];
      const gated = await createTestApi(t, {
        jobBatchSize: 1,
        sink: async (seeds) => {
          batches.push(seeds.length);
          if (batches.length === 2) await held;
          await t.ingest([...seeds]);
        },
      });
      try {
        const texts = ['One', 'Two', 'Three', 'Four', 'Five'].map((w) => `Cancel test seed number ${w}, about a lighthouse keeper.`);
        const job = (await gated.app.inject({ method: 'POST', url: '/jobs', payload: { seeds: texts }, headers: gated.auth('write') })).json<JobBody>();
        while (batches.length < 2) await new Promise((r) => setTimeout(r, 10));
        const cancelling = gated.app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: gated.auth('write') });
        release();
        const cancelled = await cancelling;
        expect(cancelled.statusCode, cancelled.body).toBe(200);
        expect(cancelled.json<JobBody>()).toMatchObject({ status: 'cancelled', sent: 2, seeds: 5 });
        expect(batches).toEqual([1, 1]);
        const again = await gated.app.inject({ method: 'GET', url: `/jobs/${job.id}`, headers: gated.auth('read') });
        expect(again.json<JobBody>()).toMatchObject({ status: 'cancelled', sent: 2 });
      } finally {
        await gated.close();
      }
    });

    it('refuses to cancel a job sent whole (409) or unknown (404)', async () => {
      const job = (await post('/jobs', { seeds: ['A courier who maps shortcuts through old arcades.'] })).json<JobBody>();
      let status = job.status;
      for (let i = 0; i < 100 && status === 'sending'; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await get(`/jobs/${job.id}`)).json<JobBody>().status;
      }
      const sent = await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: api.auth('write') });
      expect(sent.statusCode).toBe(409);
      expect(sent.json<ErrorBody>().code).toBe('PH_API_JOB_SENT');
      const unknown = await api.app.inject({ method: 'DELETE', url: '/jobs/00000000-0000-4000-8000-000000000000', headers: api.auth('write') });
      expect(unknown.statusCode).toBe(404);
    });

    it('previews personas from the same processors without sending or storing anything', async () => {
      // What earlier tests sent (a cancelled job's first batch among it) finishes first, so the counts below
      // change only if the preview itself sends or stores something.
      const sent = new Set(t.observer.seen.seed.keys());
      await until(() => t.observer.settled(sent), 300_000, 'the earlier tests\' seeds indexed');
      const before = await api.store.countPersonas();
      const seedsSeen = t.observer.seen.seed.size;
      const seeds = ['A hospice nurse writes about night shifts and chess by post.', 'A forum thread on repairing 1970s synthesizers.', 'A recipe blog for fermented hot sauces.'];
      const res = await post('/preview', { seeds });
      expect(res.statusCode, res.body).toBe(200);
      const preview = res.json<{ validated: { mode: string; description: string }[]; rejected: { reasons: unknown[] }[] }>();
      // One persona per seed, each either validated (the sampler's) or rejected with its reasons.
      expect(preview.validated.length + preview.rejected.length, res.body).toBe(seeds.length);
      for (const v of preview.validated) expect(v.mode).toBe('SAMPLER');
      for (const r of preview.rejected) expect(r.reasons.length).toBeGreaterThan(0);
      expect(await api.store.countPersonas()).toBe(before);
      expect(t.observer.seen.seed.size).toBe(seedsSeen);
    });
  });

  describe('bad requests', () => {
    it('answers malformed, oversize, mistyped and unknown input with a 4xx and a message', async () => {
      const malformed = await post('/search', '{"text": ', 'read', { 'content-type': 'application/json' });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json<ErrorBody>().message).not.toBe('');
      const unknownField = await post('/search', { text: 'x', colour: 'red' }, 'read');
      expect(unknownField.statusCode).toBe(400);
      expect(unknownField.json<ErrorBody>()).toMatchObject({ code: 'PH_API_VALIDATION', message: expect.stringContaining('colour') });
      const wrongType = await post('/search', { text: { words: 'x' } }, 'read');
      expect(wrongType.statusCode).toBe(400);
      const mediaType = await post('/search', 'text=x', 'read', { 'content-type': 'application/x-www-form-urlencoded' });
      expect(mediaType.statusCode).toBe(415);
      const route = await get('/nowhere');
      expect(route.statusCode).toBe(404);
      expect(route.json<ErrorBody>().code).toBe('PH_API_ROUTE_NOT_FOUND');
      const small = await createTestApi(t, { bodyLimit: 1024 });
      try {
        const big = await small.app.inject({ method: 'POST', url: '/jobs', payload: { seeds: ['x'.repeat(4096)] }, headers: small.auth('write') });
        expect(big.statusCode).toBe(413);
        expect(big.json<ErrorBody>().message).toMatch(/body/i);
      } finally {
        await small.close();
      }
    });

    it('limits the rate per key with a 429 that says when to retry', async () => {
      const limited = await createTestApi(t, { rateLimit: 2 });
      try {
        const codes: number[] = [];
        for (let i = 0; i < 3; i += 1) codes.push((await limited.app.inject({ method: 'GET', url: '/stats', headers: limited.auth('read') })).statusCode);
        expect(codes).toEqual([200, 200, 429]);
        const refused = await limited.app.inject({ method: 'GET', url: '/stats', headers: limited.auth('read') });
        expect(refused.json<ErrorBody>()).toMatchObject({ code: 'PH_API_RATE_LIMITED', message: expect.stringContaining('2 requests per minute') });
        expect(refused.headers['retry-after']).toBeDefined();
        // Another key has its own budget.
        expect((await limited.app.inject({ method: 'GET', url: '/stats', headers: limited.auth('write') })).statusCode).toBe(200);
      } finally {
        await limited.close();
      }
    });
  });

  it('answers over real HTTP', async () => {
    const address = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${address}/personas?limit=2`, { headers: api.auth('read') });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Page).items).toHaveLength(2);
    const refused = await fetch(`${address}/personas`);
    expect(refused.status).toBe(401);
  });
});
