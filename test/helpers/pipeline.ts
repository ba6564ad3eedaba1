import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { loadConfig, type Config } from '../../config/index.ts';
import { buildPipeline, createRunner, latticeWatch, type Pipeline } from '../../cli/wiring.ts';
import { deleteByNamePrefix, initTopics } from '../../runtime/admin.ts';
import { EventSource } from '../../runtime/source.ts';
import { createLogger } from '../../core/logger.ts';
import { PipelineObserver } from '../../runtime/observer.ts';
import type { RunningStage } from '../../runtime/runner.ts';
import { parseSeedLines } from '../../persona/seeds.ts';
import { stages, type StageName } from '../../topology/index.ts';
import type { Seed } from '../../schemas/types.generated.ts';

/**
 * A pipeline on the real stack with its own topics, consumer groups, transactional ids and database,
 * so tests never see each other's events and can run against a stack that also serves the demo.
 */
export interface TestPipeline {
  config: Config;
  /** The environment that yields `config`: a child process given it runs the same pipeline. */
  env: Record<string, string>;
  prefix: string;
  pipeline: Pipeline;
  observer: PipelineObserver;
  runners: RunningStage[];
  seeds(count: number): Seed[];
  ingest(seeds: Seed[]): Promise<void>;
  startStages(names?: readonly StageName[]): Promise<void>;
  stopStages(): Promise<void>;
  close(): Promise<void>;
}

/** The surrounding PERSONAHUB_* settings, for child processes and test configs to inherit. */
export function personahubEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('PERSONAHUB_') && e[1] !== undefined));
}

const ADMIN_URL = (c: Config) => c.databaseUrl;

/**
 * Every topic prefix a test makes starts with this mark, so the suite can sweep the topics and groups of
 * runs that never got to their own clean-up (a killed run, a failed hook) from a broker it reuses.
 */
export const TEST_PREFIX_MARK = 'phtest';

/** A topic prefix no other test or run has: the mark, a tag saying which test, the time and a random part. */
export function testPrefix(tag: string): string {
  return `${TEST_PREFIX_MARK}${tag}${Date.now().toString(36)}${randomUUID().slice(0, 6)}`;
}

export async function createTestPipeline(env: Record<string, string>): Promise<TestPipeline> {
  const prefix = testPrefix('p');
  const base = loadConfig();
  // A database of its own: the store remembers its embedding space, and tests use other models than the demo.
  const database = `test_${prefix}`;
  const admin = new pg.Client(ADMIN_URL(base));
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  // The developer's or CI's PERSONAHUB_* settings (ports, dirs) carry over; the test's own come on top.
  const fullEnv: Record<string, string> = {
    ...personahubEnv(),
    PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_LOG_LEVEL: 'warn', PERSONAHUB_LLM_CACHE_DIR: '',
    PERSONAHUB_DATABASE_URL: base.databaseUrl.replace(/\/[^/]+$/, `/${database}`), ...env,
  };
  const config = loadConfig(fullEnv);
  const logger = createLogger({ level: config.logLevel, name: prefix });
  const pipeline = await buildPipeline(config, logger, prefix);
  await initTopics(pipeline.kafka, pipeline.serde, { prefix, partitions: config.partitions, logger });
  const observer = new PipelineObserver(pipeline.kafka, pipeline.serde, prefix, 0, latticeWatch(config, pipeline.ctx.store));
  await observer.start();
  const source = await EventSource.open(pipeline.kafka, pipeline.serde, prefix);
  const corpus = readFileSync('data/seeds.jsonl', 'utf8').split('\n');
  const runners: RunningStage[] = [];
  const t: TestPipeline = {
    config, env: fullEnv, prefix, pipeline, observer, runners,
    seeds(count) {
      return parseSeedLines(corpus, { source: prefix, format: 'jsonl', maxChars: config.maxSeedChars, now: Date.now() }).seeds.slice(0, count);
    },
    async ingest(seeds) {
      await source.send(seeds.map((s) => ({ event: 'seed' as const, key: s.id, value: s })));
    },
    async startStages(names = stages.map((s) => s.name)) {
      for (const name of names) {
        const r = createRunner(pipeline, name, logger);
        await r.start();
        runners.push(r);
      }
    },
    async stopStages() {
      for (const r of runners.splice(0)) await r.stop();
    },
    async close() {
      await t.stopStages();
      await source.close();
      await observer.stop();
      await pipeline.close();
      const a = new pg.Client(ADMIN_URL(base));
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await a.end();
      // Its topics and groups go too: a suite leaves thousands of partitions otherwise (the broker ran out of heap).
      await deleteByNamePrefix(pipeline.kafka, `${prefix}.`);
    },
  };
  return t;
}

/** Runs `personahub <args>` as its own process with the test pipeline's configuration. */
export function spawnCli(t: TestPipeline, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...t.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Sends `signal` and resolves with the exit code. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}
