import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { events, topicName, type EventName } from '../../topology/index.ts';
import { freePort, probe, until } from '../helpers/faults.ts';
import { createTestPipeline, personahubEnv, stopChild, testPrefix, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * What the container image holds, built as the Dockerfile builds it (scripts/build-artefact.sh: production
 * dependencies and the compiled JavaScript), and each role started from it as the image starts it
 * (`node <artefact>/dist/cli/main.js <command>`), from a folder outside the repo so nothing resolves from the
 * checkout. No Docker engine is needed: the image adds only the base (Node 24 on Debian) and a user.
 */

const REPO = path.resolve(import.meta.dirname, '..', '..');
/** Hang guards only. A cold build downloads the production dependencies (npm's cache makes later ones quick). */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const ROLE_TIMEOUT_MS = 180_000;
/** What the Dockerfile sets for every role. */
const IMAGE_ENV = { NODE_ENV: 'production', NODE_OPTIONS: '--enable-source-maps --disable-warning=TimeoutNegativeWarning' };

function run(command: string, args: string[], o: { cwd?: string; env?: Record<string, string>; timeoutMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe('the container artefact', () => {
  let out: string;
  let main: string;
  /** A folder that is neither the repo nor the artefact: the roles start from there. */
  let elsewhere: string;
  const started = Date.now();
  const log = (what: string) => console.info(`[artefact] +${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
  /** The environment a container gets: nothing of this process but PATH, the suite's PERSONAHUB_* settings, and the image's own. */
  const roleEnv = (extra: Record<string, string>): Record<string, string> => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...personahubEnv(), ...IMAGE_ENV, ...extra });

  beforeAll(async () => {
    out = await mkdtemp('/var/tmp/ph-artefact-test-');
    elsewhere = await mkdtemp('/var/tmp/ph-artefact-cwd-');
    main = path.join(out, 'dist', 'cli', 'main.js');
    const build = await run(path.join(REPO, 'scripts', 'build-artefact.sh'), [out], { timeoutMs: BUILD_TIMEOUT_MS });
    expect(build.code, build.stderr).toBe(0);
    log(`built in ${((Date.now() - started) / 1000).toFixed(1)}s: ${build.stderr.trim().split('\n').at(-1)}`);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
    if (elsewhere) await rm(elsewhere, { recursive: true, force: true });
  });

  it('holds compiled JavaScript and production dependencies only', () => {
    expect(existsSync(main)).toBe(true);
    expect(existsSync(path.join(out, 'healthcheck.mjs'))).toBe(true);
    // Read at run time, beside the compiled modules that read them.
    expect(existsSync(path.join(out, 'dist', 'schemas', 'persona.avsc'))).toBe(true);
    expect(filesUnder(path.join(out, 'dist')).filter((f) => f.endsWith('.ts'))).toEqual([]);
    // (@types/node does ship: protobufjs, under the registry client, lists it among its dependencies.)
    for (const dev of ['typescript', 'vitest', '@types/pg']) expect(existsSync(path.join(out, 'node_modules', dev)), dev).toBe(false);
    // Optional dependencies stay out, as in development: node-llama-cpp's CPU build only, not its 650 MB of GPU and ARM builds.
    expect(readdirSync(path.join(out, 'node_modules', '@node-llama-cpp'))).toEqual(['linux-x64']);
  });

  it('topics init creates the topology\'s topics and exits 0', async () => {
    const prefix = testPrefix('art');
    const r = await run(process.execPath, [main, 'topics', 'init', '--json', '--strict'], { cwd: elsewhere, env: roleEnv({ PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_LOG_LEVEL: 'warn' }), timeoutMs: ROLE_TIMEOUT_MS });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { created: string[]; differences: number; subjects: number };
    const topics = (Object.keys(events) as EventName[]).map((e) => topicName(prefix, e));
    expect(result.created.sort()).toEqual([...topics].sort());
    expect(result.differences).toBe(0);
    expect(result.subjects).toBe(2 * topics.length);
    const admin = new kafkajs.Kafka({ clientId: 'artefact-test', brokers: loadConfig().kafkaBrokers.split(','), logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics }).finally(() => admin.disconnect());
  }, ROLE_TIMEOUT_MS);

  describe('processor draft', () => {
    let t: TestPipeline;
    let child: ChildProcess | undefined;

    afterAll(async () => {
      child?.kill('SIGKILL');
      await t?.close();
    });

    it('answers its readiness probe, drafts, passes the image\'s HEALTHCHECK, and exits 0 on SIGTERM', async () => {
      t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
      const port = await freePort();
      child = spawn(process.execPath, [main, 'processor', 'draft'], {
        cwd: elsewhere,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, ...IMAGE_ENV, PERSONAHUB_METRICS_PORT: String(port) },
        stdio: ['ignore', 'ignore', process.env.PH_TEST_CHILD_LOGS === 'true' ? 'inherit' : 'ignore'],
      });
      await until(async () => (await probe(port, '/health/ready')) === 200, ROLE_TIMEOUT_MS, 'processor draft ready');
      log('processor draft ready');

      const seeds = t.seeds(5);
      await t.ingest(seeds);
      await until(() => seeds.every((s) => [...t.observer.seen.draft.values()].some((d) => d.seedId === s.id)), ROLE_TIMEOUT_MS, 'every seed drafted');

      const healthy = spawnSync(process.execPath, [path.join(out, 'healthcheck.mjs')], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: healthy.status, stdout: healthy.stdout }).toMatchObject({ status: 0, stdout: expect.stringMatching(/^healthy: processor draft .*\/health\/live on \d+ answered 200/) });

      expect(await stopChild(child)).toBe(0);
      child = undefined;
      const gone = spawnSync(process.execPath, [path.join(out, 'healthcheck.mjs')], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: gone.status, stdout: gone.stdout }).toMatchObject({ status: 1, stdout: expect.stringContaining('unhealthy: no process runs') });
    }, 2 * ROLE_TIMEOUT_MS);
  });

  it('the Dockerfile passes hadolint (pinned, installed by scripts/hadolint.sh)', async () => {
    const r = await run(path.join(REPO, 'scripts', 'hadolint.sh'), [path.join(REPO, 'Dockerfile')], { timeoutMs: ROLE_TIMEOUT_MS });
    expect({ code: r.code, findings: r.stdout }).toEqual({ code: 0, findings: '' });
  }, ROLE_TIMEOUT_MS);
});
