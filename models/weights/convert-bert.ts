/**
 * Converts a Hugging Face BERT sentence-embedding model (config.json + tokenizer.json + model.safetensors,
 * sentence-transformers pooling config) into a GGUF file of llama.cpp's `bert` architecture, which
 * node-llama-cpp's embedding context runs.
 *
 * What llama.cpp's bert loader needs, and why each piece is written the way it is:
 * - hyper-parameters under `bert.*`; `bert.attention.causal=false` (BERT attends both ways) and
 *   `bert.pooling_type` (1 mean, 2 cls) so the context pools into one sentence vector;
 * - the WordPiece vocabulary in id order in "phantom space" form: llama.cpp's WPM tokenizer prefixes each
 *   word with U+2581 and looks pieces up verbatim, so word-initial pieces get a U+2581 prefix, continuation
 *   pieces lose their "##", and control tokens ([CLS], [SEP], ...) stay as they are;
 * - the normalizer flags: llama.cpp defaults `tokenizer.ggml.normalizer.lowercase` to false, so an
 *   uncased model without it silently tokenizes "Hello" as [UNK];
 * - tensors renamed to llama.cpp's names, with ne = the row-major shape reversed (GGUF stores innermost first).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gguf, writeGguf, type GgmlWritableType, type GgufTensor, type GgufValue } from './gguf.ts';
import { SafetensorsFile } from './safetensors.ts';

/** llama.cpp `llama_token_type` values, as written to `tokenizer.ggml.token_type`. */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;
/** llama.cpp `llama_pooling_type` values. */
const POOLING_TYPE = { mean: 1, cls: 2 } as const;
/** llama.cpp `llama_ftype`: all F32, or mostly F16. */
const FILE_TYPE = { f32: 0, f16: 1 } as const;
const PHANTOM_SPACE = '\u2581';

export type BertPooling = keyof typeof POOLING_TYPE;

export interface ConvertBertOptions {
  /** Directory with config.json, tokenizer.json, model.safetensors and (for pooling) modules.json. */
  modelDir: string;
  outPath: string;
  /** general.name in the GGUF. */
  name: string;
  /** f16 halves the file; 1-D tensors (norms, biases) and the token-type table stay F32 either way. */
  fileType?: 'f32' | 'f16';
  /** Overrides the pooling found in the sentence-transformers config (required when there is none). */
  pooling?: BertPooling;
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertBertResult {
  path: string;
  bytes: number;
  tensorCount: number;
  vocabSize: number;
  embeddingLength: number;
  contextLength: number;
  blockCount: number;
  pooling: BertPooling;
  fileType: 'f32' | 'f16';
}

interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readJson(path: string): Promise<Json> {
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (!isObject(parsed)) throw new Error(`${path} is not a JSON object`);
  return parsed;
}

async function readJsonIfExists(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function positiveInt(cfg: Json, key: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`config.json: ${key} must be a positive integer`);
  return v;
}

function parseConfig(cfg: Json): BertConfig {
  if (cfg['model_type'] !== 'bert') throw new Error(`config.json: model_type is ${String(cfg['model_type'])}, expected bert`);
  // llama.cpp's bert graph uses GELU and learned absolute positions; anything else would convert but compute wrong vectors.
  const act = cfg['hidden_act'] ?? 'gelu';
  if (act !== 'gelu' && act !== 'gelu_new') throw new Error(`config.json: hidden_act ${String(act)} is not supported (gelu only)`);
  const pos = cfg['position_embedding_type'] ?? 'absolute';
  if (pos !== 'absolute') throw new Error(`config.json: position_embedding_type ${String(pos)} is not supported (absolute only)`);
  const eps = cfg['layer_norm_eps'] ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0)) throw new Error('config.json: layer_norm_eps must be a positive number');
  const config: BertConfig = {
    vocabSize: positiveInt(cfg, 'vocab_size'),
    hiddenSize: positiveInt(cfg, 'hidden_size'),
    intermediateSize: positiveInt(cfg, 'intermediate_size'),
    layers: positiveInt(cfg, 'num_hidden_layers'),
    heads: positiveInt(cfg, 'num_attention_heads'),
    maxPositions: positiveInt(cfg, 'max_position_embeddings'),
    typeVocabSize: cfg['type_vocab_size'] === undefined ? 2 : positiveInt(cfg, 'type_vocab_size'),
    layerNormEps: eps,
  };
  if (config.hiddenSize % config.heads !== 0) throw new Error('config.json: hidden_size is not a multiple of num_attention_heads');
  return config;
}

/** Pooling from sentence-transformers' modules.json → <pooling dir>/config.json. */
async function findPooling(modelDir: string): Promise<BertPooling | undefined> {
  const modules = await readJsonIfExists(join(modelDir, 'modules.json'));
  if (!Array.isArray(modules)) return undefined;
  const pooling = modules.find((m): m is Json => isObject(m) && typeof m['type'] === 'string' && m['type'].endsWith('Pooling'));
  if (pooling === undefined || typeof pooling['path'] !== 'string') return undefined;
  const cfg = await readJson(join(modelDir, pooling['path'], 'config.json'));
  if (cfg['pooling_mode_mean_tokens'] === true) return 'mean';
  if (cfg['pooling_mode_cls_token'] === true) return 'cls';
  throw new Error(`${pooling['path']}/config.json: only mean and cls pooling are supported by llama.cpp's bert models`);
}

interface Vocab {
  tokens: string[];
  types: number[];
  ids: Map<string, number>;
  unkToken: string;
  lowercase: boolean;
  stripAccents: boolean;
}

/** BertNormalizer semantics: strip_accents null means "follow lowercase". */
function normalizerFlags(normalizer: unknown): { lowercase: boolean; stripAccents: boolean } {
  const flags = { lowercase: false, stripAccents: undefined as boolean | undefined };
  const visit = (n: unknown): void => {
    if (!isObject(n)) return;
    if (n['type'] === 'BertNormalizer') {
      flags.lowercase = n['lowercase'] !== false;
      if (typeof n['strip_accents'] === 'boolean') flags.stripAccents = n['strip_accents'];
    } else if (n['type'] === 'Lowercase') {
      flags.lowercase = true;
    } else if (n['type'] === 'StripAccents') {
      flags.stripAccents = true;
    } else if (n['type'] === 'Sequence' && Array.isArray(n['normalizers'])) {
      n['normalizers'].forEach(visit);
    }
  };
  visit(normalizer);
  return { lowercase: flags.lowercase, stripAccents: flags.stripAccents ?? flags.lowercase };
}

function parseVocab(tok: Json, vocabSize: number): Vocab {
  const model = tok['model'];
  if (!isObject(model) || model['type'] !== 'WordPiece' || !isObject(model['vocab'])) {
    throw new Error('tokenizer.json: model must be a WordPiece vocabulary');
  }
  const pre = tok['pre_tokenizer'];
  // llama.cpp's WPM tokenizer always splits on whitespace and punctuation; another pre-tokenizer would disagree.
  if (!isObject(pre) || pre['type'] !== 'BertPreTokenizer') {
    throw new Error('tokenizer.json: pre_tokenizer must be BertPreTokenizer (the split llama.cpp implements)');
  }
  const prefix = typeof model['continuing_subword_prefix'] === 'string' ? model['continuing_subword_prefix'] : '##';
  const unkToken = typeof model['unk_token'] === 'string' ? model['unk_token'] : '[UNK]';

  const byId: Array<string | undefined> = new Array<string | undefined>(vocabSize).fill(undefined);
  const ids = new Map<string, number>();
  for (const [token, id] of Object.entries(model['vocab'])) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`tokenizer.json: token ${JSON.stringify(token)} has id ${String(id)} outside the model's vocab_size ${vocabSize}`);
    }
    if (byId[id] !== undefined) throw new Error(`tokenizer.json: id ${id} is used twice`);
    byId[id] = token;
    ids.set(token, id);
  }
  const added = new Map<number, boolean>();
  for (const t of Array.isArray(tok['added_tokens']) ? tok['added_tokens'] : []) {
    if (isObject(t) && typeof t['id'] === 'number') added.set(t['id'], t['special'] === true);
  }

  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const token = byId[id];
    if (token === undefined) {
      // Embedding rows without a token keep their id (the tensor has vocab_size rows) but are never produced.
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    const special = added.get(id);
    const type = special === true ? TOKEN_TYPE.CONTROL : special === false ? TOKEN_TYPE.USER_DEFINED : TOKEN_TYPE.NORMAL;
    types.push(type);
    if (type === TOKEN_TYPE.CONTROL) tokens.push(token);
    else if (token.startsWith(prefix)) tokens.push(token.slice(prefix.length));
    else tokens.push(PHANTOM_SPACE + token);
  }
  return { tokens, types, ids, unkToken, ...normalizerFlags(tok['normalizer']) };
}

/** special_tokens_map.json values are either the token string or { content }. */
function specialToken(map: unknown, key: string, fallback: string): string {
  if (!isObject(map)) return fallback;
  const v = map[key];
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v['content'] === 'string') return v['content'];
  return fallback;
}

function specialIds(vocab: Vocab, map: unknown): Array<readonly [string, GgufValue]> {
  const idOf = (key: string, token: string): number => {
    const id = vocab.ids.get(token);
    if (id === undefined) throw new Error(`tokenizer.json: ${key} ${token} is not in the vocabulary`);
    return id;
  };
  const cls = idOf('cls_token', specialToken(map, 'cls_token', '[CLS]'));
  return [
    // WPM prepends the BOS token; llama.cpp's default of 101 is only right for the original BERT vocab layout.
    ['tokenizer.ggml.bos_token_id', gguf.uint32(cls)],
    ['tokenizer.ggml.unknown_token_id', gguf.uint32(idOf('unk_token', vocab.unkToken))],
    // llama.cpp spells this key "seperator".
    ['tokenizer.ggml.seperator_token_id', gguf.uint32(idOf('sep_token', specialToken(map, 'sep_token', '[SEP]')))],
    ['tokenizer.ggml.padding_token_id', gguf.uint32(idOf('pad_token', specialToken(map, 'pad_token', '[PAD]')))],
    ['tokenizer.ggml.cls_token_id', gguf.uint32(cls)],
    ['tokenizer.ggml.mask_token_id', gguf.uint32(idOf('mask_token', specialToken(map, 'mask_token', '[MASK]')))],
  ];
}

/** HF parameter name → llama.cpp tensor name; null for tensors an embedding model does not use. */
export function mapBertTensorName(hfName: string): string | null {
  let name = hfName.startsWith('bert.') ? hfName.slice(5) : hfName;
  // Old TF-ported checkpoints call LayerNorm parameters gamma/beta.
  name = name.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
  if (name === 'embeddings.position_ids' || name.startsWith('pooler.') || name.startsWith('cls.')) return null;
  const fixed: Record<string, string> = {
    'embeddings.word_embeddings.weight': 'token_embd.weight',
    'embeddings.token_type_embeddings.weight': 'token_types.weight',
    'embeddings.position_embeddings.weight': 'position_embd.weight',
    'embeddings.LayerNorm.weight': 'token_embd_norm.weight',
    'embeddings.LayerNorm.bias': 'token_embd_norm.bias',
  };
  const direct = fixed[name];
  if (direct !== undefined) return direct;
  const m = /^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m === null) throw new Error(`unexpected tensor ${hfName} in a BERT checkpoint`);
  const [, layer, part, kind] = m;
  const parts: Record<string, string> = {
    'attention.self.query': 'attn_q',
    'attention.self.key': 'attn_k',
    'attention.self.value': 'attn_v',
    'attention.output.dense': 'attn_output',
    'attention.output.LayerNorm': 'attn_output_norm',
    'intermediate.dense': 'ffn_up',
    'output.dense': 'ffn_down',
    'output.LayerNorm': 'layer_output_norm',
  };
  const target = part === undefined ? undefined : parts[part];
  if (target === undefined) throw new Error(`unexpected tensor ${hfName} in a BERT checkpoint`);
  return `blk.${layer}.${target}.${kind}`;
}

/** The tensors llama.cpp's bert loader requires (or, for the biases it treats as optional, that BERT always has). */
function requiredTensors(cfg: BertConfig): Map<string, number[]> {
  const h = cfg.hiddenSize;
  const ff = cfg.intermediateSize;
  const shapes = new Map<string, number[]>([
    ['token_embd.weight', [cfg.vocabSize, h]],
    ['token_types.weight', [cfg.typeVocabSize, h]],
    ['position_embd.weight', [cfg.maxPositions, h]],
    ['token_embd_norm.weight', [h]],
    ['token_embd_norm.bias', [h]],
  ]);
  for (let i = 0; i < cfg.layers; i++) {
    for (const p of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
      shapes.set(`blk.${i}.${p}.weight`, [h, h]);
      shapes.set(`blk.${i}.${p}.bias`, [h]);
    }
    for (const p of ['attn_output_norm', 'layer_output_norm']) {
      shapes.set(`blk.${i}.${p}.weight`, [h]);
      shapes.set(`blk.${i}.${p}.bias`, [h]);
    }
    shapes.set(`blk.${i}.ffn_up.weight`, [ff, h]);
    shapes.set(`blk.${i}.ffn_up.bias`, [ff]);
    shapes.set(`blk.${i}.ffn_down.weight`, [h, ff]);
    shapes.set(`blk.${i}.ffn_down.bias`, [h]);
  }
  return shapes;
}

function storageType(name: string, shape: readonly number[], fileType: 'f32' | 'f16'): GgmlWritableType {
  // The token-type row is added to activations directly (no matmul or get_rows), so it stays F32 like the 1-D tensors.
  if (fileType === 'f32' || shape.length < 2 || name === 'token_types.weight') return 'F32';
  return 'F16';
}

export async function convertBertToGguf(opts: ConvertBertOptions): Promise<ConvertBertResult> {
  const fileType = opts.fileType ?? 'f32';
  const cfg = parseConfig(await readJson(join(opts.modelDir, 'config.json')));
  const tokenizer = await readJson(join(opts.modelDir, 'tokenizer.json'));
  const vocab = parseVocab(tokenizer, cfg.vocabSize);
  const specials = specialIds(vocab, await readJsonIfExists(join(opts.modelDir, 'special_tokens_map.json')));
  const pooling = opts.pooling ?? (await findPooling(opts.modelDir));
  if (pooling === undefined) throw new Error(`${opts.modelDir}: no sentence-transformers pooling config; pass pooling explicitly`);

  const st = await SafetensorsFile.open(join(opts.modelDir, 'model.safetensors'));
  try {
    const expected = requiredTensors(cfg);
    const tensors: GgufTensor[] = [];
    for (const [hfName, info] of st.tensors) {
      const name = mapBertTensorName(hfName);
      if (name === null) continue;
      const shape = expected.get(name);
      if (shape === undefined) throw new Error(`tensor ${hfName} maps to ${name}, which this model's config does not have`);
      if (shape.join('x') !== info.shape.join('x')) {
        throw new Error(`tensor ${hfName} has shape [${info.shape.join(', ')}], config implies [${shape.join(', ')}]`);
      }
      expected.delete(name);
      tensors.push({ name, shape, type: storageType(name, shape, fileType), data: () => st.readFloat32(hfName) });
    }
    if (expected.size > 0) throw new Error(`model.safetensors lacks tensors llama.cpp needs: ${[...expected.keys()].join(', ')}`);
    // llama.cpp does not care about order; a fixed one (embeddings, then layers in order; code-unit string order, not
    // the locale's) keeps the output byte-identical on every machine, which lets fetch pin its sha256.
    const rank = (n: string): number => (n.startsWith('blk.') ? 1 + Number(n.split('.')[1]) : 0);
    tensors.sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    const arch = 'bert';
    const metadata: Array<readonly [string, GgufValue]> = [
      ['general.architecture', gguf.string(arch)],
      ['general.name', gguf.string(opts.name)],
      ['general.file_type', gguf.uint32(FILE_TYPE[fileType])],
      [`${arch}.context_length`, gguf.uint32(cfg.maxPositions)],
      [`${arch}.embedding_length`, gguf.uint32(cfg.hiddenSize)],
      [`${arch}.feed_forward_length`, gguf.uint32(cfg.intermediateSize)],
      [`${arch}.block_count`, gguf.uint32(cfg.layers)],
      [`${arch}.attention.head_count`, gguf.uint32(cfg.heads)],
      [`${arch}.attention.layer_norm_epsilon`, gguf.float32(cfg.layerNormEps)],
      [`${arch}.attention.causal`, gguf.bool(false)],
      [`${arch}.pooling_type`, gguf.uint32(POOLING_TYPE[pooling])],
      ['tokenizer.ggml.model', gguf.string('bert')],
      ['tokenizer.ggml.tokens', gguf.strings(vocab.tokens)],
      ['tokenizer.ggml.token_type', gguf.numbers('int32', vocab.types)],
      ['tokenizer.ggml.token_type_count', gguf.uint32(cfg.typeVocabSize)],
      ['tokenizer.ggml.normalizer.lowercase', gguf.bool(vocab.lowercase)],
      ['tokenizer.ggml.normalizer.strip_accents', gguf.bool(vocab.stripAccents)],
      ...specials,
    ];
    const bytes = await writeGguf(opts.outPath, { metadata, tensors }, opts.onProgress);
    return {
      path: opts.outPath,
      bytes,
      tensorCount: tensors.length,
      vocabSize: cfg.vocabSize,
      embeddingLength: cfg.hiddenSize,
      contextLength: cfg.maxPositions,
      blockCount: cfg.layers,
      pooling,
      fileType,
    };
  } finally {
    await st.close();
  }
}
