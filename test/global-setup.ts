import { loadConfig } from '../config/index.ts';
import { fetchModels } from '../models/weights/fetch.ts';
import { createLogger } from '../core/logger.ts';
import { stackUp } from '../stack/index.ts';
import { stackOptions } from '../cli/wiring.ts';

/**
 * Installs and starts what the suite runs against, once: the real stack (broker, registry,
 * database) and the local models (fetched, assembled, converted). The model server is not started
 * here; tests start the fixture LLM or a local server of their own.
 */
export default async function setup(): Promise<void> {
  if (process.env.PH_TEST_UNIT_ONLY === 'true') return;
  const config = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });
  const logger = createLogger({ level: 'info', name: 'test-setup' });
  await fetchModels({ modelsDir: config.modelsDir, cacheDir: config.cacheDir, logger });
  await stackUp(stackOptions(config, logger));
}
