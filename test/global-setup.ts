import { loadConfig } from '../config/index.ts';
import { createLogger } from '../runtime/logger.ts';
import { stackUp } from '../stack/index.ts';
import { stackOptions } from '../cli/wiring.ts';

/**
 * Brings the real stack up once for the whole suite (installing it on a fresh machine), so the
 * integration tests run against a real broker, registry and database. The model server is not
 * part of it: tests start the fixture LLM or the local server themselves.
 */
export default async function setup(): Promise<void> {
  if (process.env.PH_TEST_UNIT_ONLY === 'true') return;
  const config = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });
  const logger = createLogger({ level: 'info', name: 'test-stack' });
  await stackUp(stackOptions(config, logger));
}
