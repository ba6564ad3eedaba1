import { copyFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultK, kmeans } from '../../../analytics/population.ts';
import { createTestApi, type TestApi } from '../../helpers/api.ts';
import { ARTEFACTS, launchChromium } from '../../helpers/browser.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

interface Summary { id: string; name: string; age: number; occupation: string }
interface Neighbours { edges: { from: string; to: string }[]; personas: Summary[] }
interface Persona extends Summary { modalities: Record<string, unknown>; versions: unknown[] }
interface Stats { personas: number; age: { histogram: unknown[] }; topOccupations: unknown[] }
interface Job { progress?: { indexed: number; rejected: number; deadLettered: number; settled: boolean; stages: { hop: string; in: number }[] } }
interface Fidelity { personas: number; marginals: { attribute: string; values: unknown[] }[]; pairs: { flagged: boolean }[] }
interface Validation { reasons: string[]; buckets: { passed: number; repaired: number; rejected: Record<string, number> }[] }

/** With PH_CONSOLE_DOCS=1 the screenshots docs/API.md shows are written into docs/ as well. */
const DOCS = process.env.PH_CONSOLE_DOCS === '1' ? resolve(import.meta.dirname, '..', '..', '..', 'docs') : undefined;
/** Upper bounds for a state the page reaches; the tests wait for the state, never for a time. */
const STATE_TIMEOUT = 60_000;

/**
 * The web console in Debian's chromium, headless, driven by playwright-core, against the API listening on a
 * free port over a prefix-isolated pipeline on the real stack (sampler mode, hash embeddings, lattice depth 1
 * so personas have relations, clustered by k-means as `personahub clusters` does). Every check compares what
 * the page shows with what the API answers; screenshots go to test/artefacts/console/.
 */
describe('web console', () => {
  let t: TestPipeline;
  let api: TestApi;
  let browser: Browser;
  let base: string;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    browser = await launchChromium();
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_LATTICE_DEPTH: '1', PERSONAHUB_LATTICE_FANOUT: '2' });
    await t.startStages();
    const seeds = t.seeds(16);
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 240_000 })).toBe(true);
    api = await createTestApi(t);
    const rows = await api.store.embeddings(10_000);
    const c = kmeans(rows.map((r) => r.embedding), defaultK(rows.length), { seed: 'personahub' });
    await api.store.setClusters(rows.map((r, i) => ({ id: r.id, cluster: c.assignments[i] ?? 0 })));
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await t?.close();
  });

  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    problems = [];
    // A script error, anything the page's own policy blocked (CSP), or an asset that failed to load fails the test
    // that caused it. The API's refusals are the browser's "failed to load resource" too: those the pages show.
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400 && new URL(r.url()).pathname.startsWith('/console')) problems.push(`asset ${r.url()}: ${r.status()}`); });
    await page.goto(`${base}/`);
    await page.getByTestId('api-key').fill(api.keys.write);
    await page.getByTestId('save-key').click();
    await expect.poll(() => page.getByTestId('key-state').textContent()).toBe('key set');
  });

  afterEach(async (context) => {
    await page.screenshot({ path: join(ARTEFACTS, `${context.task.name.replace(/\W+/g, '-')}.png`), fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  const inject = async <T>(method: 'GET' | 'POST', url: string, payload?: object): Promise<T> => {
    const res = await api.app.inject({ method, url, headers: api.auth('write'), ...(payload ? { payload } : {}) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<T>();
  };
  const ready = (testid: string) => page.locator(`[data-testid="${testid}"][data-state="ready"]`).waitFor({ timeout: STATE_TIMEOUT });

  it('opens at / on the search page, and asks for a key before it shows anything', async () => {
    expect(page.url()).toBe(`${base}/console/#/search`);
    const fresh = await browser.newPage();
    await fresh.goto(`${base}/console/#/population`);
    await expect.poll(() => fresh.getByTestId('error').textContent()).toContain('enter an API key');
    await fresh.close();
  });

  it('serves its assets gzipped with an ETag and a content security policy, outside the OpenAPI document', async () => {
    const js = await api.app.inject({ method: 'GET', url: '/console/app.js', headers: { 'accept-encoding': 'gzip' } });
    expect(js.statusCode).toBe(200);
    expect(js.headers).toMatchObject({ 'content-encoding': 'gzip', 'content-type': 'text/javascript; charset=utf-8' });
    expect(js.headers['content-security-policy']).toContain("script-src 'self'");
    const again = await api.app.inject({ method: 'GET', url: '/console/app.js', headers: { 'if-none-match': String(js.headers.etag) } });
    expect(again.statusCode).toBe(304);
    const missing = await api.app.inject({ method: 'GET', url: '/console/nothing.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ code: string }>().code).toBe('PH_API_ROUTE_NOT_FOUND');
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/console'))).toEqual([]);
  });

  it('searches by meaning with a filter, shows what the API finds, and names a bad clause', async () => {
    await page.getByTestId('search-text').fill('someone who teaches and cooks');
    await page.getByTestId('search-where').fill('age>=30');
    await page.getByTestId('search-submit').click();
    await ready('search-results');
    const expected = await inject<{ items: Summary[] }>('POST', '/search', { text: 'someone who teaches and cooks', where: 'age>=30', limit: 20 });
    expect(expected.items.length).toBeGreaterThan(0);
    const names = await page.getByTestId('result').locator('td:first-child').allTextContents();
    expect(names).toEqual(expected.items.map((p) => p.name));
    const ages = (await page.getByTestId('result').locator('td:nth-child(2)').allTextContents()).map(Number);
    expect(ages.every((a) => a >= 30)).toBe(true);

    await page.getByTestId('search-where').fill('colour=red');
    await page.getByTestId('search-submit').click();
    await expect.poll(() => page.getByTestId('error').textContent()).toContain('PH_FILTER_ATTRIBUTE');
  });

  it('lists every persona when there is no text, a page at a time', async () => {
    await page.goto(`${base}/console/#/search?limit=5`);
    await ready('search-results');
    await expect.poll(() => page.getByTestId('result').count()).toBe(5);
    await page.getByTestId('more').click();
    await expect.poll(() => page.getByTestId('result').count()).toBe(10);
  });

  it('shows a persona whole, with its modalities, versions and its lattice neighbourhood as a graph', async () => {
    // A derived persona: depth 1, so it has at least the edge from the persona it was derived from.
    const derived = (await inject<{ items: Summary[] }>('GET', '/personas?depth=1&limit=1')).items[0];
    expect(derived).toBeDefined();
    const id = derived?.id ?? '';
    const persona = await inject<Persona>('GET', `/personas/${id}`);
    const lattice = await inject<Neighbours>('GET', `/personas/${id}/neighbours?depth=2`);
    expect(lattice.edges.length).toBeGreaterThan(0);

    await page.goto(`${base}/console/#/persona/${id}`);
    await ready('persona');
    expect(await page.getByTestId('persona-name').textContent()).toBe(persona.name);
    for (const name of Object.keys(persona.modalities)) await page.getByTestId(`modality-${name}`).waitFor();
    expect(Object.keys(persona.modalities).length).toBeGreaterThan(0);
    expect(await page.getByTestId('versions').locator('tbody tr').count()).toBe(persona.versions.length);
    expect(await page.getByTestId('lineage').textContent()).toContain('relationKind');

    await ready('lattice-graph');
    const graph = page.getByTestId('lattice-graph');
    expect(Number(await graph.getAttribute('data-nodes'))).toBe(lattice.personas.length);
    expect(Number(await graph.getAttribute('data-edges'))).toBe(lattice.edges.length);
    expect(await graph.locator('canvas').count()).toBeGreaterThan(0);
    await page.getByTestId('lattice').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTEFACTS, 'persona-lattice.png') });
    if (DOCS) await copyFile(join(ARTEFACTS, 'persona-lattice.png'), join(DOCS, 'console-persona.png'));

    // One hop fewer is a smaller (or equal) neighbourhood, drawn again from the API's answer.
    const near = await inject<Neighbours>('GET', `/personas/${id}/neighbours?depth=1`);
    await page.getByTestId('lattice-depth').selectOption('1');
    await expect.poll(() => graph.getAttribute('data-edges')).toBe(String(near.edges.length));
  });

  it('draws the population charts from /stats and /clusters', async () => {
    const stats = await inject<Stats>('GET', '/stats');
    const { clusters } = await inject<{ clusters: unknown[] }>('GET', '/clusters?members=0');
    expect(clusters.length).toBeGreaterThan(1);
    await page.goto(`${base}/console/#/population`);
    await ready('population');
    expect(await page.getByTestId('figure-personas').locator('strong').textContent()).toBe(String(stats.personas));
    for (const [name, bars] of [['age', stats.age.histogram.length], ['occupations', stats.topOccupations.length], ['clusters', clusters.length]] as const) {
      await ready(`chart-${name}`);
      expect(Number(await page.getByTestId(`chart-${name}`).getAttribute('data-bars')), name).toBe(bars);
    }
    for (const name of ['locales', 'mode', 'model', 'depth']) await ready(`chart-${name}`);

    // Every validated persona of the run is a bar's worth of the stacked series: passed and repaired, then one series per rejection reason.
    const validation = await inject<Validation>('GET', '/stats/validation');
    expect(validation.buckets.reduce((n, b) => n + b.passed + b.repaired, 0)).toBeGreaterThan(0);
    await ready('chart-validation');
    const stack = page.getByTestId('chart-validation');
    expect(Number(await stack.getAttribute('data-bars'))).toBe(validation.buckets.length);
    expect(Number(await stack.getAttribute('data-series'))).toBe(2 + validation.reasons.length);

    // Sampler personas are drawn from the default profile: each attribute charted observed beside target.
    const fidelity = await inject<Fidelity>('GET', '/stats/fidelity');
    expect(fidelity.personas).toBeGreaterThan(0);
    expect(fidelity.marginals.length).toBeGreaterThan(0);
    expect(await page.getByTestId('fidelity').locator('figure').count()).toBe(fidelity.marginals.length);
    for (const m of fidelity.marginals) {
      await ready(`chart-fidelity-${m.attribute}`);
      const chart = page.getByTestId(`chart-fidelity-${m.attribute}`);
      expect(Number(await chart.getAttribute('data-bars')), m.attribute).toBe(m.values.length);
      expect(Number(await chart.getAttribute('data-series'))).toBe(2);
    }
    expect(await page.getByTestId('flagged-pair').count()).toBe(fidelity.pairs.filter((p) => p.flagged).length);
    await page.screenshot({ path: join(ARTEFACTS, 'population.png'), fullPage: true });
    if (DOCS) await copyFile(join(ARTEFACTS, 'population.png'), join(DOCS, 'console-population.png'));
  });

  it('previews seeds without storing them, starts a job and watches it settle', async () => {
    const before = await api.store.countPersonas();
    const seeds = [
      `Our community garden in Leeds needs volunteers for the spring planting (${t.prefix})`,
      `Review: the new trail running shoes held up on a wet 30 km mountain route (${t.prefix})`,
    ];
    await page.goto(`${base}/console/#/generate`);
    await page.getByTestId('seeds').fill(seeds.join('\n'));
    await page.getByTestId('preview').click();
    await page.getByTestId('preview-result').waitFor({ timeout: STATE_TIMEOUT });
    const shown = (await page.getByTestId('preview-persona').count()) + (await page.getByTestId('preview-rejected').count());
    expect(shown).toBeGreaterThanOrEqual(seeds.length);
    expect(await api.store.countPersonas()).toBe(before);

    await page.getByTestId('start-job').click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/, { timeout: STATE_TIMEOUT });
    const jobId = page.url().split('/').at(-1) ?? '';
    await page.locator('[data-testid="job-settled"][data-settled="true"]').waitFor({ timeout: 180_000 });
    const job = await inject<Job>('GET', `/jobs/${jobId}`);
    expect(job.progress?.settled).toBe(true);
    expect(await page.getByTestId('job-status').textContent()).toBe('sent');
    expect(await page.getByTestId('stage').count()).toBe(job.progress?.stages.length);
    expect(await page.getByTestId('job-indexed').textContent()).toBe(String(job.progress?.indexed));
    expect(job.progress?.indexed).toBeGreaterThan(0);
    expect(await api.store.countPersonas()).toBeGreaterThan(before);
    // The totals count the personas the hops count, lattice-derived ones included (lattice depth 1 here): once
    // the derived personas have settled too, every draft of the job was indexed, rejected or dead-lettered.
    const drafts = (j: Job) => j.progress?.stages.find((s) => s.hop === 'draft→enriched')?.in ?? 0;
    await expect.poll(async () => {
      const now = await inject<Job>('GET', `/jobs/${jobId}`);
      return now.progress?.settled === true && drafts(now) > seeds.length;
    }, { timeout: STATE_TIMEOUT, interval: 250 }).toBe(true);
    const grown = await inject<Job>('GET', `/jobs/${jobId}`);
    expect((grown.progress?.indexed ?? 0) + (grown.progress?.rejected ?? 0) + (grown.progress?.deadLettered ?? 0)).toBe(drafts(grown));
  });

  it('starts a sampled-attributes job with a filter and watches it settle', async () => {
    await page.goto(`${base}/console/#/generate`);
    await page.getByTestId('sample-count').fill('3');
    await page.getByTestId('sample-where').fill('age>=40');
    await page.getByTestId('start-sample-job').click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/, { timeout: STATE_TIMEOUT });
    const jobId = page.url().split('/').at(-1) ?? '';
    await page.locator('[data-testid="job-settled"][data-settled="true"]').waitFor({ timeout: 180_000 });
    const job = await inject<Job & { seeds: number }>('GET', `/jobs/${jobId}`);
    expect(job.seeds).toBe(3);
    expect(await page.getByTestId('job-indexed').textContent()).toBe(String(job.progress?.indexed));

    // A filter no persona of the profile can satisfy is refused with the API's code, on the page.
    await page.goto(`${base}/console/#/generate`);
    await page.getByTestId('sample-where').fill('age>=500');
    await page.getByTestId('start-sample-job').click();
    await expect.poll(() => page.getByTestId('error').textContent()).toMatch(/^PH_/);
  });
});
