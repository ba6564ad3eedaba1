import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/index.ts';
import { fetchModels } from '../models/weights/fetch.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { stackStatus, stackUp, type StackOptions } from '../stack/index.ts';
import { acquireLock, liveProcess, stopProcess } from '../stack/process.ts';
import { extraService, pidFileOf, StackContext, stackPaths, type ManagedService } from '../stack/service.ts';
import { kafkaService } from '../stack/kafka.ts';
import { postgresService } from '../stack/postgres.ts';
import { registryService } from '../stack/registry.ts';
import { stackOptions } from '../cli/wiring.ts';

/** As long as stackUp itself waits for another caller's lock: a cold install plus every service's start. */
const LOCK_WAIT_MS = 20 * 60_000;

/**
 * Installs and starts what the suite runs against, once: the real stack (broker, registry,
 * database) and the local models (fetched, assembled, converted). The model server is not started
 * here; tests start the fixture LLM or a local server of their own.
 *
 * Afterwards (the returned teardown) it stops the services the suite started, and only those: a
 * service already running before the suite (a developer's `./personahub stack up`, a demo) is left
 * running, one the suite started is stopped, so a test run does not leave about 1 GB of Kafka,
 * Apicurio, PostgreSQL (or a model server) behind that nobody asked to keep. The decision rests on
 * the state recorded here, before anything started, so a test that stops and restarts services
 * (the stack test) changes nothing about it. To keep the stack between runs, start it first.
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.PH_TEST_UNIT_ONLY === 'true') return undefined;
  const config = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });
  const logger = createLogger({ level: 'info', name: 'test-setup' });
  const options = stackOptions(config, logger);
  const watched = watchedServices(options, logger);
  const runningBefore = await runningServices(watched);
  const teardown = () => stopStartedBySuite(watched, runningBefore, logger);
  try {
    await fetchModels({ modelsDir: config.modelsDir, cacheDir: config.cacheDir, logger });
    await stackUp(options);
  } catch (error) {
    // Vitest runs no teardown when setup fails: stop here what this setup got as far as starting.
    await teardown().catch((stopError: unknown) => logger.error({ err: stopError }, 'stopping the services the suite started failed'));
    throw error;
  }
  return teardown;
}

/**
 * The services a test run may start in this stack's home: the core ones, and the local model server
 * as `stack up` would start it (tests do not start it today; if one does, it is covered too).
 */
function watchedServices(options: StackOptions, logger: Logger): StackOptions {
  const withLocalLlm = stackOptions(
    loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'true', PERSONAHUB_LLM_BASE_URL: '', PERSONAHUB_MODE: 'llm' }),
    logger,
  );
  return { ...options, extraServices: [...(options.extraServices ?? []), ...(withLocalLlm.extraServices ?? []).filter((s) => s.name === 'llm')] };
}

/** Held while reading or stopping, so no stackUp of another caller is half way through meanwhile. */
async function withStackLock<T>(o: StackOptions, fn: () => Promise<T>): Promise<T> {
  const { run } = stackPaths(o.home);
  await mkdir(run, { recursive: true });
  const release = await acquireLock(path.join(run, 'stack.lock'), LOCK_WAIT_MS);
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function runningServices(o: StackOptions): Promise<ReadonlySet<string>> {
  const status = await withStackLock(o, () => stackStatus(o));
  return new Set(status.services.filter((s) => s.running).map((s) => s.name));
}

/** Stops, last started first, every watched service that runs now and did not run before the suite. */
async function stopStartedBySuite(o: StackOptions, runningBefore: ReadonlySet<string>, logger: Logger): Promise<void> {
  const ctx = new StackContext(o);
  const services: ManagedService[] = [postgresService(ctx), kafkaService(ctx), registryService(ctx), ...(o.extraServices ?? []).map(extraService)];
  const paths = stackPaths(o.home);
  await withStackLock(o, async () => {
    for (const s of [...services].reverse()) {
      if (runningBefore.has(s.name)) continue;
      const pidFile = pidFileOf(paths, s.name);
      const rec = await liveProcess(pidFile);
      if (rec === null) continue;
      logger.info(`stopping ${s.name} (pid ${rec.pid}): the test suite started it`);
      const killed = await stopProcess(rec, s.stopSignal, s.stopGraceMs);
      if (killed) logger.warn(`${s.name} did not stop within ${s.stopGraceMs / 1000} s of ${s.stopSignal}; killed it`);
      await rm(pidFile, { force: true });
    }
  });
  const kept = [...runningBefore];
  if (kept.length > 0) logger.info(`left running what was running before the suite: ${kept.join(', ')}`);
}
