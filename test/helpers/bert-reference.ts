/**
 * Independent reference for the embedding model: a Hugging Face-compatible BERT WordPiece tokenizer and a plain
 * BERT forward pass with mean pooling, straight from tokenizer.json, config.json and model.safetensors.
 *
 * It deliberately shares no code with models/ (it even parses safetensors itself): the point is to check the
 * converter's tensor mapping, vocabulary and metadata plus llama.cpp's execution against a computation that
 * could not share a bug with them. It is slow (float64 loops), which is fine for a few short sentences.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** CJK Unified Ideographs blocks, as BertNormalizer's handle_chinese_chars defines them. */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const WHITESPACE = /^\p{White_Space}$/u;
/** Unicode "Other" (Cc, Cf, Cs, Co, Cn): what BertNormalizer's clean_text drops, except \t \n \r (whitespace). */
const CONTROL = /^\p{C}$/u;
const NONSPACING_MARK = /^\p{Mn}$/u;
/** BertPreTokenizer punctuation: ASCII punctuation (which includes symbols like $ + < = > ^ ` | ~) or Unicode P*. */
const PUNCTUATION = /^(?:[!-/:-@[-`{-~]|\p{P})$/u;

export class BertWordPieceTokenizer {
  private readonly vocab: Map<string, number>;
  private readonly unk: string;
  private readonly prefix: string;
  private readonly maxCharsPerWord: number;
  private readonly lowercase: boolean;
  private readonly stripAccents: boolean;
  readonly clsId: number;
  readonly sepId: number;

  constructor(tokenizerJson: unknown) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson['model']) || !isObject(tokenizerJson['model']['vocab'])) {
      throw new Error('tokenizer.json: no WordPiece model');
    }
    const model = tokenizerJson['model'];
    this.vocab = new Map(Object.entries(model['vocab'] as Record<string, number>));
    this.unk = typeof model['unk_token'] === 'string' ? model['unk_token'] : '[UNK]';
    this.prefix = typeof model['continuing_subword_prefix'] === 'string' ? model['continuing_subword_prefix'] : '##';
    this.maxCharsPerWord = typeof model['max_input_chars_per_word'] === 'number' ? model['max_input_chars_per_word'] : 100;
    const norm = tokenizerJson['normalizer'];
    this.lowercase = isObject(norm) && norm['lowercase'] !== false;
    this.stripAccents = isObject(norm) && typeof norm['strip_accents'] === 'boolean' ? norm['strip_accents'] : this.lowercase;
    this.clsId = this.idOf('[CLS]');
    this.sepId = this.idOf('[SEP]');
  }

  private idOf(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`token ${token} is not in the vocabulary`);
    return id;
  }

  /** BertNormalizer: clean text, space out CJK characters, strip accents, lowercase (in that order). */
  normalize(text: string): string {
    let out = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0) ?? 0;
      if (ch === '\t' || ch === '\n' || ch === '\r' || WHITESPACE.test(ch)) out += ' ';
      else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
      else if (isChineseChar(cp)) out += ` ${ch} `;
      else out += ch;
    }
    if (this.stripAccents) out = [...out.normalize('NFD')].filter((c) => !NONSPACING_MARK.test(c)).join('');
    return this.lowercase ? out.toLowerCase() : out;
  }

  /** BertPreTokenizer: split on whitespace, and make every punctuation character a word of its own. */
  preTokenize(normalized: string): string[] {
    const words: string[] = [];
    let current = '';
    for (const ch of normalized) {
      if (WHITESPACE.test(ch)) {
        if (current) words.push(current);
        current = '';
      } else if (PUNCTUATION.test(ch)) {
        if (current) words.push(current);
        words.push(ch);
        current = '';
      } else {
        current += ch;
      }
    }
    if (current) words.push(current);
    return words;
  }

  /** Greedy longest-match-first WordPiece; a word with any unmatchable rest becomes a single [UNK]. */
  wordPiece(word: string): string[] {
    const chars = [...word];
    if (chars.length > this.maxCharsPerWord) return [this.unk];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (end > start) {
        const candidate = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
        if (this.vocab.has(candidate)) {
          found = candidate;
          break;
        }
        end--;
      }
      if (found === undefined) return [this.unk];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  tokenize(text: string): string[] {
    return this.preTokenize(this.normalize(text)).flatMap((w) => this.wordPiece(w));
  }

  /** Token ids without special tokens. */
  encodeWords(text: string): number[] {
    return this.tokenize(text).map((t) => this.idOf(t));
  }

  /** [CLS] text [SEP], the single-sentence template of BERT's post-processor. */
  encode(text: string): number[] {
    return [this.clsId, ...this.encodeWords(text), this.sepId];
  }
}

interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Minimal safetensors read (F32 only: that is what this checkpoint holds). */
function readSafetensors(path: string): Map<string, Tensor> {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.toString('utf8', 8, 8 + headerLength)) as Record<string, unknown>;
  const base = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__' || !isObject(entry) || entry['dtype'] !== 'F32') continue;
    const [begin, end] = entry['data_offsets'] as [number, number];
    // Copy into a fresh, aligned buffer: the slice of the file buffer need not be 4-byte aligned.
    const bytes = file.subarray(base + begin, base + end);
    const data = new Float32Array(bytes.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(i * 4);
    tensors.set(name, { shape: entry['shape'] as number[], data });
  }
  return tensors;
}

/** erf by its Maclaurin series (|z| < 4; accurate to ~1e-11 there) and ±1 beyond (erfc(4) < 2e-8). */
function erf(z: number): number {
  if (Math.abs(z) >= 4) return Math.sign(z);
  let term = z;
  let sum = z;
  for (let n = 1; n < 100; n++) {
    term *= (-z * z) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** The exact (erf) GELU that Hugging Face BERT's "gelu" means. */
const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** y[t] = W x[t] + b for row-major W [out, in] (PyTorch Linear), accumulating in float64. */
function linear(x: Float64Array, tokens: number, w: Tensor, b: Tensor): Float64Array {
  const [outDim, inDim] = w.shape as [number, number];
  const y = new Float64Array(tokens * outDim);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b.data[o] ?? 0;
      const row = o * inDim;
      const xRow = t * inDim;
      for (let i = 0; i < inDim; i++) acc += (w.data[row + i] ?? 0) * (x[xRow + i] ?? 0);
      y[t * outDim + o] = acc;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, tokens: number, dim: number, g: Tensor, b: Tensor, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let t = 0; t < tokens; t++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[t * dim + i] ?? 0;
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += ((x[t * dim + i] ?? 0) - mean) ** 2;
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) y[t * dim + i] = ((x[t * dim + i] ?? 0) - mean) * inv * (g.data[i] ?? 0) + (b.data[i] ?? 0);
  }
  return y;
}

export class BertReference {
  private constructor(
    readonly tokenizer: BertWordPieceTokenizer,
    private readonly weights: Map<string, Tensor>,
    private readonly hidden: number,
    private readonly heads: number,
    private readonly layers: number,
    private readonly eps: number,
  ) {}

  /** Loads a Hugging Face BERT directory (config.json, tokenizer.json, model.safetensors). */
  static load(modelDir: string): BertReference {
    const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, number>;
    const tokenizer = new BertWordPieceTokenizer(JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')));
    return new BertReference(
      tokenizer,
      readSafetensors(join(modelDir, 'model.safetensors')),
      config['hidden_size'] ?? 0,
      config['num_attention_heads'] ?? 0,
      config['num_hidden_layers'] ?? 0,
      config['layer_norm_eps'] ?? 1e-12,
    );
  }

  private w(name: string): Tensor {
    const t = this.weights.get(name);
    if (t === undefined) throw new Error(`reference: no tensor ${name}`);
    return t;
  }

  /** Mean-pooled last hidden state of [CLS] text [SEP] (not L2-normalised; cosine does not care). */
  embed(text: string): Float64Array {
    const ids = this.tokenizer.encode(text);
    const T = ids.length;
    const H = this.hidden;
    const word = this.w('embeddings.word_embeddings.weight');
    const pos = this.w('embeddings.position_embeddings.weight');
    const type = this.w('embeddings.token_type_embeddings.weight');
    let x: Float64Array = new Float64Array(T * H);
    for (const [t, id] of ids.entries()) {
      for (let i = 0; i < H; i++) {
        // Single sentence: every token has token type 0.
        x[t * H + i] = (word.data[id * H + i] ?? 0) + (pos.data[t * H + i] ?? 0) + (type.data[i] ?? 0);
      }
    }
    x = layerNorm(x, T, H, this.w('embeddings.LayerNorm.weight'), this.w('embeddings.LayerNorm.bias'), this.eps);

    const headDim = H / this.heads;
    const scale = 1 / Math.sqrt(headDim);
    for (let l = 0; l < this.layers; l++) {
      const p = `encoder.layer.${l}.`;
      const q = linear(x, T, this.w(`${p}attention.self.query.weight`), this.w(`${p}attention.self.query.bias`));
      const k = linear(x, T, this.w(`${p}attention.self.key.weight`), this.w(`${p}attention.self.key.bias`));
      const v = linear(x, T, this.w(`${p}attention.self.value.weight`), this.w(`${p}attention.self.value.bias`));
      const context = new Float64Array(T * H);
      const scores = new Float64Array(T);
      for (let h = 0; h < this.heads; h++) {
        const off = h * headDim;
        for (let i = 0; i < T; i++) {
          let max = -Infinity;
          for (let j = 0; j < T; j++) {
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += (q[i * H + off + d] ?? 0) * (k[j * H + off + d] ?? 0);
            scores[j] = dot * scale;
            max = Math.max(max, dot * scale);
          }
          let sum = 0;
          for (let j = 0; j < T; j++) {
            scores[j] = Math.exp((scores[j] ?? 0) - max);
            sum += scores[j] ?? 0;
          }
          for (let d = 0; d < headDim; d++) {
            let acc = 0;
            for (let j = 0; j < T; j++) acc += ((scores[j] ?? 0) / sum) * (v[j * H + off + d] ?? 0);
            context[i * H + off + d] = acc;
          }
        }
      }
      const attnOut = linear(context, T, this.w(`${p}attention.output.dense.weight`), this.w(`${p}attention.output.dense.bias`));
      for (let i = 0; i < attnOut.length; i++) attnOut[i] = (attnOut[i] ?? 0) + (x[i] ?? 0);
      const x1 = layerNorm(attnOut, T, H, this.w(`${p}attention.output.LayerNorm.weight`), this.w(`${p}attention.output.LayerNorm.bias`), this.eps);
      const inter = linear(x1, T, this.w(`${p}intermediate.dense.weight`), this.w(`${p}intermediate.dense.bias`));
      for (let i = 0; i < inter.length; i++) inter[i] = gelu(inter[i] ?? 0);
      const out = linear(inter, T, this.w(`${p}output.dense.weight`), this.w(`${p}output.dense.bias`));
      for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + (x1[i] ?? 0);
      x = layerNorm(out, T, H, this.w(`${p}output.LayerNorm.weight`), this.w(`${p}output.LayerNorm.bias`), this.eps);
    }

    const pooled = new Float64Array(H);
    for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) pooled[i] = (pooled[i] ?? 0) + (x[t * H + i] ?? 0) / T;
    return pooled;
  }
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine of vectors of length ${a.length} and ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}
