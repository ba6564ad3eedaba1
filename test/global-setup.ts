import { loadConfig } from '../config/index.ts';
import { fetchModels } from '../models/weights/fetch.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { stackDown, stackStatus, stackUp, type StackOptions } from '../stack/index.ts';
import { stackOptions } from '../cli/wiring.ts';
import { deleteByNamePrefix } from '../runtime/admin.ts';
import { createKafka } from '../runtime/kafka.ts';
import { TEST_PREFIX_MARK } from './helpers/pipeline.ts';
import { TEST_LLM } from './integration/models/test-llm.ts';

/**
 * Installs and starts what the suite runs against, once: the real stack (broker, registry,
 * database) and the local models the tests use (fetched, assembled, converted). The model server is not started
 * here; tests start the fixture LLM or a local server of their own.
 *
 * Afterwards (the returned teardown) it stops the services the suite started, and only those: a
 * service already running before the suite (a developer's `./personahub stack up`, a demo) is left
 * running, one the suite started is stopped, so a test run does not leave about 1 GB of Kafka,
 * Apicurio, PostgreSQL (or a model server) behind that nobody asked to keep. The decision rests on
 * the state recorded here, before anything started, so a test that stops and restarts services
 * (the stack test) changes nothing about it. To keep the stack between runs, start it first.
 *
 * Before the tests and after them it deletes every topic and group a test made (their prefixes carry
 * TEST_PREFIX_MARK), whichever run made them: a broker kept or reused between runs otherwise collects a
 * suite's worth of partitions each time (CI ran out of broker heap at about 10,000).
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.PH_TEST_UNIT_ONLY === 'true') return undefined;
  const config = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });
  const logger = createLogger({ level: 'info', name: 'test-setup' });
  const options = stackOptions(config, logger);
  const watched = watchedServices(options, logger);
  const runningBefore = await runningServices(watched);
  const sweep = async () => {
    const swept = await deleteByNamePrefix(createKafka(config, 'test-setup', logger), TEST_PREFIX_MARK);
    logger.info(swept, 'deleted the topics and groups of test runs');
  };
  const teardown = async () => {
    try {
      if ((await stackStatus(options)).services.find((s) => s.name === 'kafka')?.running) await sweep();
    } finally {
      await stopStartedBySuite(watched, runningBefore, logger);
    }
  };
  try {
    // What the tests use: the small local text model the real-model tests run (not the configured default,
    // which would add 1.1 GB to a cold CI run) and the embedding model.
    await fetchModels({ modelsDir: config.modelsDir, cacheDir: config.cacheDir, llm: TEST_LLM, logger });
    await stackUp(options);
    await sweep();
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

async function runningServices(o: StackOptions): Promise<ReadonlySet<string>> {
  const status = await stackStatus(o);
  return new Set(status.services.filter((s) => s.running).map((s) => s.name));
}

/** Stops, last started first, every watched service that runs now and did not run before the suite. */
async function stopStartedBySuite(o: StackOptions, runningBefore: ReadonlySet<string>, logger: Logger): Promise<void> {
  const started = (await stackStatus(o)).services.filter((s) => s.running && !runningBefore.has(s.name)).map((s) => s.name);
  if (started.length > 0) logger.info(`stopping what the test suite started: ${started.join(', ')}`);
  await stackDown(o, started);
  const kept = [...runningBefore];
  if (kept.length > 0) logger.info(`left running what was running before the suite: ${kept.join(', ')}`);
}
