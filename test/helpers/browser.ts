import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'chromium.sh');

/** Where the browser tests keep their screenshots: ignored by git, kept by CI as the run's artefacts. */
export const ARTEFACTS = join(ROOT, 'test', 'artefacts', 'console');

const run = promisify(execFile);

/**
 * Debian's chromium at the version scripts/chromium.sh pins, installed by that script when it is missing
 * (apt-get, so as root, as CI runs), then started headless by playwright-core. The sandbox is off because
 * Chromium refuses to run it as root, which is how CI runs.
 */
export async function launchChromium(): Promise<Browser> {
  let path: string;
  try {
    path = (await run(SCRIPT, ['path'])).stdout.trim();
  } catch {
    await run(SCRIPT, ['install'], { maxBuffer: 64 * 1024 * 1024 });
    path = (await run(SCRIPT, ['path'])).stdout.trim();
  }
  await mkdir(ARTEFACTS, { recursive: true });
  return chromium.launch({ executablePath: path, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
