import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';
import { freePort } from '../../helpers/faults.ts';

/** The ```sh blocks of one README section, in order. */
export function shellBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no section "${heading}"`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

/** The JSON documents of a stream of them written back to back (curl adds no newline after a body). */
function jsonDocuments(text: string): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i += 1;
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = depth > 0;
    } else if (ch === '{') {
      if (depth === 0) start = i;
      depth += 1;
    } else if (ch === '}' && depth > 0) {
      depth -= 1;
      if (depth === 0) docs.push(JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>);
    }
  }
  return docs;
}

/**
 * The README's "Using the corpus" examples, run as written: one bash script of its ```sh blocks, with the
 * environment of a test pipeline whose stages run (so the job really goes through) and an API port of its own.
 */
describe('README: Using the corpus', () => {
  let t: TestPipeline;

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    await t.startStages();
    const seeds = t.seeds(8);
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 240_000 })).toBe(true);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('runs every curl example against a served API', async () => {
    const blocks = shellBlocks(readFileSync('README.md', 'utf8'), 'Using the corpus');
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    const script = blocks.join('\n');
    expect(script).toContain('./personahub serve &');
    // ./personahub runs `npm ci` when the lockfile changed since the last install, which would replace
    // node_modules under this very suite (and anything else running from this checkout): refuse instead.
    const lockHash = createHash('sha256').update(readFileSync('package-lock.json')).digest('hex');
    const stamp = existsSync('node_modules/.personahub-lock') ? readFileSync('node_modules/.personahub-lock', 'utf8').trim() : '';
    expect(stamp, 'node_modules is older than package-lock.json: run ./personahub once (it installs) before this test').toBe(lockHash);
    const port = await freePort();
    // Its own process group, so whatever the script leaves behind (a server it failed to stop) is stopped with it.
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: process.cwd(), detached: true,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, PERSONAHUB_API_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      process.kill(-(child.pid ?? 0), 'SIGTERM');
    } catch {
      // The group is gone: the script stopped its server itself.
    }
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr.slice(-3000)}`).toBe(0);
    // One JSON answer per curl line: search hits, a page, a persona, similar ones, a neighbourhood, stats,
    // clusters, the job twice (status, cancel or 409), the preview.
    const answers = jsonDocuments(stdout);
    expect(answers.length, stdout).toBeGreaterThanOrEqual(10);
    expect(answers[0]).toHaveProperty('items');
    expect(answers.some((a) => 'modalities' in a)).toBe(true);
    expect(answers.some((a) => 'edges' in a)).toBe(true);
    expect(answers.some((a) => typeof a.personas === 'number' && a.personas > 0)).toBe(true);
    expect(answers.some((a) => 'validated' in a)).toBe(true);
    expect(answers.some((a) => a.status === 'sent' || a.status === 'sending' || a.code === 'PH_API_JOB_SENT')).toBe(true);
  });
});
