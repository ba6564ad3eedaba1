/**
 * The node-llama-cpp side of the model server: loading, prompt preparation, grammar-constrained
 * generation on one reused context sequence, and embeddings. Knows nothing of HTTP.
 */
import {
  getLlama,
  LlamaChat,
  LlamaCompletion,
  type ChatHistoryItem,
  type GbnfJsonSchema,
  type Llama,
  type LlamaContext,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { ModelError } from '../../core/errors.ts';
import { BOUNDED_JSON_OBJECT_GBNF } from './json-schema-grammar.ts';
import type { ChatMessage } from '../../core/chat.ts';
import { normalize } from '../../core/vector.ts';
import { FEW_SHOT_STOP_TRIGGERS, renderFewShotPrompt, toChatHistory } from './prompt.ts';

/**
 * One Llama instance for the process, with threads capped at the machine's math cores.
 *
 * Why the cap: node-llama-cpp's CPU default is at least 4 threads. On a 2-core machine llama.cpp's
 * spinning thread barriers then fight each other, and generation measured 2.5 s per token instead
 * of 16 ms (150x slower).
 */
export async function loadLlama(): Promise<Llama> {
  try {
    const llama = await getLlama({ gpu: false, build: 'never' });
    llama.maxThreads = llama.cpuMathCores;
    return llama;
  } catch (cause) {
    throw new ModelError('PH_MODEL_RUNTIME_UNAVAILABLE', 'node-llama-cpp has no prebuilt CPU binary for this platform', { cause });
  }
}

async function loadModel(llama: Llama, modelPath: string): Promise<LlamaModel> {
  try {
    return await llama.loadModel({ modelPath });
  } catch (cause) {
    throw new ModelError('PH_MODEL_LOAD_FAILED', `cannot load model ${modelPath}: ${(cause as Error).message}`, { cause });
  }
}

export type GrammarSpec =
  | { kind: 'json_schema'; schema: GbnfJsonSchema }
  | { kind: 'json_object' };

/** A prompt tokenized (or rendered) ahead of the queue, so its size is checked before it waits. */
export type PreparedPrompt =
  | { kind: 'tokens'; tokens: Token[]; tokenCount: number; stopTriggers: readonly string[] }
  | { kind: 'chat'; history: ChatHistoryItem[]; tokenCount: number };

export interface GenerateOptions {
  maxTokens: number;
  /** 0 picks the most likely token every time (greedy, deterministic). */
  temperature: number;
  topP?: number;
  seed?: number;
  stop: readonly string[];
  /** From `createGrammar`; built before queueing so a bad schema fails fast. */
  grammar?: LlamaGrammar;
  /** Aborting stops generation; `generate` then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface GenerationResult {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  /** From the start of evaluation to the first generated token; null when nothing was generated. */
  timeToFirstTokenMs: number | null;
  durationMs: number;
}

export interface LlmEngineOptions {
  modelPath: string;
  contextSize: number;
}

export class LlmEngine {
  readonly hasChatTemplate: boolean;
  private readonly model: LlamaModel;
  private readonly llama: Llama;
  private readonly context: LlamaContext;
  private readonly completion: LlamaCompletion;
  private readonly chat: LlamaChat | undefined;
  private readonly prependsBos: boolean;

  private constructor(llama: Llama, model: LlamaModel, context: LlamaContext) {
    this.llama = llama;
    this.model = model;
    this.context = context;
    // One sequence, reused by every request: the KV cache keeps whatever prefix the next prompt
    // shares with the last (the system text and few-shot examples), so only the new tail is
    // evaluated. DESIGN §8 measured time to first token 1.1 s -> 0.25 s; with the bench's
    // 136-token few-shot prompt it is 210 ms -> 35-40 ms (docs/BENCHMARKS.md).
    const sequence = context.getSequence();
    this.completion = new LlamaCompletion({ contextSequence: sequence });
    this.hasChatTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === 'string';
    // Only a model that ships a template gets the chat path. node-llama-cpp would also guess a
    // wrapper from the architecture name, which for a base model (Gemma 3 270M, say) means turn
    // markers it was never trained on. Both local Qwen2.5-Coder models ship their template.
    this.chat = this.hasChatTemplate ? new LlamaChat({ contextSequence: sequence, chatWrapper: 'auto' }) : undefined;
    // Mirrors LlamaCompletion, which prepends BOS itself when the tokenizer asks for it.
    this.prependsBos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null;
  }

  static async load(llama: Llama, options: LlmEngineOptions): Promise<LlmEngine> {
    const model = await loadModel(llama, options.modelPath);
    try {
      const context = await model.createContext({ contextSize: options.contextSize, sequences: 1, threads: llama.cpuMathCores });
      return new LlmEngine(llama, model, context);
    } catch (cause) {
      await model.dispose();
      throw new ModelError('PH_MODEL_CONTEXT_FAILED', `cannot create a ${options.contextSize}-token context for ${options.modelPath}: ${(cause as Error).message}`, { cause });
    }
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Raw text completion (`/v1/completions`). */
  prepareCompletion(prompt: string): PreparedPrompt {
    return this.prepareText(prompt, []);
  }

  /** Chat messages, through the model's template or as a few-shot transcript (see prompt.ts). */
  prepareChat(messages: readonly ChatMessage[]): PreparedPrompt {
    if (this.chat !== undefined) {
      const history = toChatHistory(messages);
      const { contextText } = this.chat.chatWrapper.generateContextState({ chatHistory: history });
      return { kind: 'chat', history, tokenCount: contextText.tokenize(this.model.tokenizer).length };
    }
    return this.prepareText(renderFewShotPrompt(messages), FEW_SHOT_STOP_TRIGGERS);
  }

  private prepareText(text: string, stopTriggers: readonly string[]): PreparedPrompt {
    // Tokenized the way LlamaCompletion would (leading space trimmed when it adds BOS), so the
    // count is the real prompt size and the tokens can be passed on as they are.
    const tokens = this.model.tokenize(text, false, this.prependsBos ? 'trimLeadingSpace' : undefined);
    return { kind: 'tokens', tokens, tokenCount: tokens.length + (this.prependsBos ? 1 : 0), stopTriggers };
  }

  async createGrammar(spec: GrammarSpec): Promise<LlamaGrammar> {
    if (spec.kind === 'json_object') return this.llama.createGrammar({ grammar: BOUNDED_JSON_OBJECT_GBNF });
    return this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(spec.schema);
  }

  /** Runs one generation. Callers serialize calls (the queue); the sequence is shared. */
  async generate(prompt: PreparedPrompt, options: GenerateOptions): Promise<GenerationResult> {
    const started = performance.now();
    let firstTokenAt: number | null = null;
    let completionTokens = 0;
    const onToken = (tokens: Token[]): void => {
      firstTokenAt ??= performance.now();
      completionTokens += tokens.length;
    };
    const common = {
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      ...(options.topP === undefined ? {} : { topP: options.topP }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.grammar === undefined ? {} : { grammar: options.grammar }),
      onToken,
    };

    let text: string;
    let stopReason: string;
    if (prompt.kind === 'chat') {
      if (this.chat === undefined) throw new ModelError('PH_MODEL_NO_CHAT_TEMPLATE', 'a chat prompt was prepared for a model without a chat template');
      const response = await this.chat.generateResponse(prompt.history, { ...common, customStopTriggers: options.stop });
      text = response.response;
      stopReason = response.metadata.stopReason;
    } else {
      const response = await this.completion.generateCompletionWithMeta(prompt.tokens, {
        ...common,
        customStopTriggers: [...prompt.stopTriggers, ...options.stop],
        // The server checked that prompt plus max_tokens fit the context. Without this,
        // node-llama-cpp would silently drop the start of an over-long prompt.
        disableContextShift: true,
        contextShiftSize: 1,
      });
      text = response.response;
      stopReason = response.metadata.stopReason;
    }
    const finished = performance.now();
    return {
      text,
      finishReason: stopReason === 'maxTokens' ? 'length' : 'stop',
      promptTokens: prompt.tokenCount,
      completionTokens,
      timeToFirstTokenMs: firstTokenAt === null ? null : firstTokenAt - started,
      durationMs: finished - started,
    };
  }

  async dispose(): Promise<void> {
    this.chat?.dispose();
    this.completion.dispose();
    await this.context.dispose();
    await this.model.dispose();
  }
}

export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

export class EmbeddingEngine {
  private readonly model: LlamaModel;
  private readonly context: LlamaEmbeddingContext;

  private constructor(model: LlamaModel, context: LlamaEmbeddingContext) {
    this.model = model;
    this.context = context;
  }

  static async load(llama: Llama, modelPath: string): Promise<EmbeddingEngine> {
    const model = await loadModel(llama, modelPath);
    try {
      const context = await model.createEmbeddingContext({ threads: llama.cpuMathCores });
      return new EmbeddingEngine(model, context);
    } catch (cause) {
      await model.dispose();
      throw new ModelError('PH_MODEL_CONTEXT_FAILED', `cannot create an embedding context for ${modelPath}: ${(cause as Error).message}`, { cause });
    }
  }

  get dimensions(): number {
    return this.model.embeddingVectorSize;
  }

  /** Longest input, in tokens, one embedding can take (the model's trained context). */
  get maxInputTokens(): number {
    return this.model.trainContextSize;
  }

  inputTokens(text: string): number {
    return this.context.calculateInputLength(text);
  }

  /**
   * Embeds each text in turn (the embedding context evaluates one input per call), checking the
   * signal between inputs so a timed-out batch stops early. Vectors are L2-normalized, as OpenAI's
   * are and as sentence-transformers' all-MiniLM-L6-v2 pipeline does (its last module), so dot
   * product and cosine agree.
   */
  async embed(texts: readonly string[], signal?: AbortSignal): Promise<EmbeddingResult> {
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const text of texts) {
      signal?.throwIfAborted();
      promptTokens += this.inputTokens(text);
      const embedding = await this.context.getEmbeddingFor(text);
      vectors.push(normalize(embedding.vector));
    }
    return { vectors, promptTokens };
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

