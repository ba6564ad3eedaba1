import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertBertToGguf, mapBertTensorName } from '../../../../models/weights/convert-bert.ts';
import { gguf, readGgufHeader, readGgufTensor } from '../../../../models/weights/gguf.ts';

/** A tiny BERT in Hugging Face layout: hidden 8, 2 heads, 2 layers, FFN 16, 12 positions, 24-token vocab. */
const H = 8;
const FF = 16;
const LAYERS = 2;
const POSITIONS = 12;
const VOCAB = 24;
const vocabList = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[unused0]', 'hello', 'world', '##ing', 'play', ',', '!'];

function shapesOf(): Map<string, number[]> {
  const shapes = new Map<string, number[]>([
    ['embeddings.position_ids', [1, POSITIONS]],
    ['embeddings.word_embeddings.weight', [VOCAB, H]],
    ['embeddings.position_embeddings.weight', [POSITIONS, H]],
    ['embeddings.token_type_embeddings.weight', [2, H]],
    ['embeddings.LayerNorm.weight', [H]],
    ['embeddings.LayerNorm.bias', [H]],
    ['pooler.dense.weight', [H, H]],
    ['pooler.dense.bias', [H]],
  ]);
  for (let l = 0; l < LAYERS; l++) {
    const p = `encoder.layer.${l}.`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      shapes.set(`${p}${n}.weight`, [H, H]);
      shapes.set(`${p}${n}.bias`, [H]);
    }
    for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      shapes.set(`${p}${n}.weight`, [H]);
      shapes.set(`${p}${n}.bias`, [H]);
    }
    shapes.set(`${p}intermediate.dense.weight`, [FF, H]);
    shapes.set(`${p}intermediate.dense.bias`, [FF]);
    shapes.set(`${p}output.dense.weight`, [H, FF]);
    shapes.set(`${p}output.dense.bias`, [H]);
  }
  return shapes;
}

/** Deterministic values that differ per tensor, so a swapped mapping cannot go unnoticed. */
function valuesFor(name: string, count: number): Float32Array {
  let seed = [...name].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7);
  return Float32Array.from({ length: count }, () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  });
}

function safetensors(skip: ReadonlySet<string> = new Set()): { file: Buffer; values: Map<string, Float32Array> } {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  const values = new Map<string, Float32Array>();
  let offset = 0;
  for (const [name, shape] of shapesOf()) {
    if (skip.has(name)) continue;
    const count = shape.reduce((a, b) => a * b, 1);
    if (name === 'embeddings.position_ids') {
      const ids = Buffer.alloc(count * 8);
      for (let i = 0; i < count; i++) ids.writeBigInt64LE(BigInt(i), i * 8);
      header[name] = { dtype: 'I64', shape, data_offsets: [offset, offset + ids.length] };
      chunks.push(ids);
      offset += ids.length;
      continue;
    }
    const v = valuesFor(name, count);
    values.set(name, v);
    const buf = Buffer.alloc(count * 4);
    v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + buf.length] };
    chunks.push(buf);
    offset += buf.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return { file: Buffer.concat([prefix, json, ...chunks]), values };
}

const config = {
  architectures: ['BertModel'],
  model_type: 'bert',
  hidden_act: 'gelu',
  hidden_size: H,
  intermediate_size: FF,
  num_hidden_layers: LAYERS,
  num_attention_heads: 2,
  max_position_embeddings: POSITIONS,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  vocab_size: VOCAB,
  position_embedding_type: 'absolute',
};

const tokenizerJson = {
  added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, i) => ({ id: i, content, special: true })),
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  model: {
    type: 'WordPiece',
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
    vocab: Object.fromEntries(vocabList.map((t, i) => [t, i])),
  },
};

let root: string;
let counter = 0;
async function modelDir(overrides: { config?: object; tokenizer?: object; skip?: string[]; pooling?: object | null } = {}): Promise<{ dir: string; values: Map<string, Float32Array> }> {
  const dir = join(root, `model-${counter++}`);
  await mkdir(join(dir, '1_Pooling'), { recursive: true });
  const { file, values } = safetensors(new Set(overrides.skip));
  await writeFile(join(dir, 'model.safetensors'), file);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, ...overrides.config }));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ ...tokenizerJson, ...overrides.tokenizer }));
  await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify({ unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: { content: '[MASK]' } }));
  if (overrides.pooling !== null) {
    await writeFile(join(dir, 'modules.json'), JSON.stringify([
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ]));
    await writeFile(join(dir, '1_Pooling', 'config.json'), JSON.stringify(overrides.pooling ?? { pooling_mode_mean_tokens: true, pooling_mode_cls_token: false }));
  }
  return { dir, values };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'convert-bert-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('mapBertTensorName', () => {
  it('maps Hugging Face BERT names to llama.cpp names', () => {
    expect(mapBertTensorName('embeddings.word_embeddings.weight')).toBe('token_embd.weight');
    expect(mapBertTensorName('bert.embeddings.LayerNorm.gamma')).toBe('token_embd_norm.weight');
    expect(mapBertTensorName('encoder.layer.5.attention.self.key.bias')).toBe('blk.5.attn_k.bias');
    expect(mapBertTensorName('encoder.layer.0.attention.output.LayerNorm.beta')).toBe('blk.0.attn_output_norm.bias');
    expect(mapBertTensorName('encoder.layer.11.intermediate.dense.weight')).toBe('blk.11.ffn_up.weight');
    expect(mapBertTensorName('encoder.layer.3.output.dense.weight')).toBe('blk.3.ffn_down.weight');
    expect(mapBertTensorName('encoder.layer.3.output.LayerNorm.weight')).toBe('blk.3.layer_output_norm.weight');
  });

  it('drops tensors an embedding model does not use and rejects unknown ones', () => {
    expect(mapBertTensorName('embeddings.position_ids')).toBeNull();
    expect(mapBertTensorName('pooler.dense.weight')).toBeNull();
    expect(mapBertTensorName('cls.predictions.bias')).toBeNull();
    expect(() => mapBertTensorName('encoder.layer.0.attention.self.rotary.weight')).toThrow(/unexpected tensor/);
    expect(() => mapBertTensorName('lm_head.weight')).toThrow(/unexpected tensor/);
  });
});

describe('convertBertToGguf', () => {
  it('writes the metadata, vocabulary and tensors llama.cpp’s bert loader expects', async () => {
    const { dir, values } = await modelDir();
    const out = join(root, 'tiny-f32.gguf');
    const progress: number[] = [];
    const result = await convertBertToGguf({ modelDir: dir, outPath: out, name: 'tiny', onProgress: (d) => progress.push(d) });
    expect(result).toMatchObject({ tensorCount: 5 + 16 * LAYERS, vocabSize: VOCAB, embeddingLength: H, contextLength: POSITIONS, blockCount: LAYERS, pooling: 'mean', fileType: 'f32' });
    expect(progress).toEqual(Array.from({ length: result.tensorCount }, (_, i) => i + 1));

    const file = await readGgufHeader(out);
    const md = file.metadata;
    expect(md.get('general.architecture')).toEqual(gguf.string('bert'));
    expect(md.get('general.name')).toEqual(gguf.string('tiny'));
    expect(md.get('general.file_type')).toEqual(gguf.uint32(0));
    expect(md.get('bert.context_length')).toEqual(gguf.uint32(POSITIONS));
    expect(md.get('bert.embedding_length')).toEqual(gguf.uint32(H));
    expect(md.get('bert.feed_forward_length')).toEqual(gguf.uint32(FF));
    expect(md.get('bert.block_count')).toEqual(gguf.uint32(LAYERS));
    expect(md.get('bert.attention.head_count')).toEqual(gguf.uint32(2));
    expect(md.get('bert.attention.layer_norm_epsilon')).toEqual(gguf.float32(Math.fround(1e-12)));
    expect(md.get('bert.attention.causal')).toEqual(gguf.bool(false));
    expect(md.get('bert.pooling_type')).toEqual(gguf.uint32(1));
    expect(md.get('tokenizer.ggml.model')).toEqual(gguf.string('bert'));
    expect(md.get('tokenizer.ggml.token_type_count')).toEqual(gguf.uint32(2));
    expect(md.get('tokenizer.ggml.normalizer.lowercase')).toEqual(gguf.bool(true));
    expect(md.get('tokenizer.ggml.normalizer.strip_accents')).toEqual(gguf.bool(true));
    expect(md.get('tokenizer.ggml.bos_token_id')).toEqual(gguf.uint32(2));
    expect(md.get('tokenizer.ggml.cls_token_id')).toEqual(gguf.uint32(2));
    expect(md.get('tokenizer.ggml.seperator_token_id')).toEqual(gguf.uint32(3));
    expect(md.get('tokenizer.ggml.unknown_token_id')).toEqual(gguf.uint32(1));
    expect(md.get('tokenizer.ggml.padding_token_id')).toEqual(gguf.uint32(0));
    expect(md.get('tokenizer.ggml.mask_token_id')).toEqual(gguf.uint32(4));

    // Phantom-space vocabulary in id order, padded to vocab_size with unused placeholders.
    const tokens = md.get('tokenizer.ggml.tokens');
    const types = md.get('tokenizer.ggml.token_type');
    expect(tokens?.kind === 'array' ? tokens.values.slice(0, 13) : []).toEqual([
      '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '▁[unused0]', '▁hello', '▁world', 'ing', '▁play', '▁,', '▁!', '[PAD12]',
    ]);
    expect(tokens?.kind === 'array' ? tokens.values.length : 0).toBe(VOCAB);
    expect(types).toEqual(gguf.numbers('int32', [3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, ...Array<number>(VOCAB - 12).fill(5)]));

    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    expect(byName.has('position_ids')).toBe(false);
    expect(byName.get('token_embd.weight')?.ne).toEqual([H, VOCAB]);
    expect(byName.get('position_embd.weight')?.ne).toEqual([H, POSITIONS]);
    expect(byName.get('token_types.weight')?.ne).toEqual([H, 2]);
    expect(byName.get('blk.1.ffn_up.weight')?.ne).toEqual([H, FF]);
    expect(byName.get('blk.1.ffn_down.weight')?.ne).toEqual([FF, H]);
    expect(byName.get('blk.0.attn_output_norm.bias')?.ne).toEqual([H]);
    expect(file.tensors.every((t) => t.type === 0)).toBe(true);

    // Values arrive unchanged under their new names (F32 is a byte copy).
    expect(await readGgufTensor(out, file, 'blk.1.attn_v.weight')).toEqual(values.get('encoder.layer.1.attention.self.value.weight'));
    expect(await readGgufTensor(out, file, 'token_embd_norm.bias')).toEqual(values.get('embeddings.LayerNorm.bias'));
    expect(await readGgufTensor(out, file, 'blk.0.layer_output_norm.weight')).toEqual(values.get('encoder.layer.0.output.LayerNorm.weight'));
  });

  it('stores matrices as F16 and keeps 1-D tensors and token types F32 in f16 mode', async () => {
    const { dir, values } = await modelDir({ pooling: { pooling_mode_cls_token: true } });
    const out = join(root, 'tiny-f16.gguf');
    const result = await convertBertToGguf({ modelDir: dir, outPath: out, name: 'tiny', fileType: 'f16' });
    expect(result.pooling).toBe('cls');
    const file = await readGgufHeader(out);
    expect(file.metadata.get('general.file_type')).toEqual(gguf.uint32(1));
    expect(file.metadata.get('bert.pooling_type')).toEqual(gguf.uint32(2));
    const typeOf = (n: string): number | undefined => file.tensors.find((t) => t.name === n)?.type;
    expect(typeOf('token_embd.weight')).toBe(1);
    expect(typeOf('blk.0.attn_q.weight')).toBe(1);
    expect(typeOf('token_types.weight')).toBe(0);
    expect(typeOf('blk.0.attn_q.bias')).toBe(0);
    const q = await readGgufTensor(out, file, 'blk.0.attn_q.weight');
    const src = values.get('encoder.layer.0.attention.self.query.weight') ?? new Float32Array();
    for (const [i, x] of src.entries()) expect(Math.abs((q[i] ?? NaN) - x)).toBeLessThanOrEqual(2 ** -12);
  });

  it('rejects checkpoints llama.cpp would run wrongly or not at all', async () => {
    const convert = (dir: string): Promise<unknown> => convertBertToGguf({ modelDir: dir, outPath: join(root, 'bad.gguf'), name: 'bad' });
    await expect(convert((await modelDir({ config: { model_type: 'roberta' } })).dir)).rejects.toThrow(/model_type is roberta/);
    await expect(convert((await modelDir({ config: { hidden_act: 'relu' } })).dir)).rejects.toThrow(/hidden_act relu/);
    await expect(convert((await modelDir({ config: { position_embedding_type: 'relative_key' } })).dir)).rejects.toThrow(/absolute only/);
    await expect(convert((await modelDir({ skip: ['encoder.layer.1.output.dense.bias'] })).dir)).rejects.toThrow(/lacks tensors llama.cpp needs: blk.1.ffn_down.bias/);
    await expect(convert((await modelDir({ config: { intermediate_size: 32 } })).dir)).rejects.toThrow(/has shape \[16, 8\], config implies \[32, 8\]/);
    await expect(convert((await modelDir({ pooling: null })).dir)).rejects.toThrow(/no sentence-transformers pooling config/);
    await expect(convert((await modelDir({ pooling: { pooling_mode_max_tokens: true } })).dir)).rejects.toThrow(/only mean and cls pooling/);
    await expect(convert((await modelDir({ tokenizer: { pre_tokenizer: { type: 'Whitespace' } } })).dir)).rejects.toThrow(/BertPreTokenizer/);
    const tooBig = { ...tokenizerJson.model, vocab: { ...tokenizerJson.model.vocab, extra: VOCAB } };
    await expect(convert((await modelDir({ tokenizer: { model: tooBig } })).dir)).rejects.toThrow(/outside the model's vocab_size/);
  });

  it('takes an explicit pooling when the model has no sentence-transformers config', async () => {
    const { dir } = await modelDir({ pooling: null });
    const result = await convertBertToGguf({ modelDir: dir, outPath: join(root, 'explicit.gguf'), name: 'tiny', pooling: 'cls' });
    expect(result.pooling).toBe('cls');
  });
});
