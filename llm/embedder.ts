import { createHash } from 'node:crypto';
import { GroupCommit } from '../core/group-commit.ts';
import { normalize } from '../core/vector.ts';
import type { LlmClient } from './client.ts';

/** Turns texts into vectors of one model's space; the store records the model so spaces never mix. */
export interface Embedder {
  readonly model: string;
  embed(texts: string[]): Promise<number[][]>;
}

/**
 * Embeddings from the configured OpenAI-compatible endpoint (the local MiniLM server by default).
 * Concurrent calls (the enrich stage embeds each persona of a chunk on its own) go as one request: an
 * embedding server computes a batch in about the time of a few single texts.
 */
export function llmEmbedder(llm: LlmClient, model: string): Embedder {
  const requests = new GroupCommit(async (texts: string[]) => (await llm.embed(texts)).vectors, EMBED_BATCH);
  return {
    model,
    embed: (texts) => Promise.all(texts.map((t) => requests.call(t))),
  };
}

/** Texts per embedding request at most. */
const EMBED_BATCH = 64;

const TOKEN = /[\p{L}\p{N}]+/gu;

/**
 * Feature hashing of word unigrams and bigrams into a unit vector: no model, deterministic, and texts
 * that share words land close together. It is the labelled fallback for bulk sampler runs and tests,
 * not a semantic embedding; the store records its model name (`hash-bow`) so the spaces never mix.
 */
export function hashEmbedder(dimensions: number): Embedder {
  return {
    model: `hash-bow-${dimensions}`,
    async embed(texts) {
      return texts.map((t) => hashEmbed(t, dimensions));
    },
  };
}

export function hashEmbed(text: string, dimensions: number): number[] {
  const v = new Array<number>(dimensions).fill(0);
  const words = text.toLowerCase().match(TOKEN) ?? [];
  const features = [...words, ...words.slice(1).map((w, i) => `${words[i]} ${w}`)];
  for (const f of features) {
    const h = createHash('sha256').update(f).digest();
    const index = h.readUInt32LE(0) % dimensions;
    v[index] = (v[index] ?? 0) + ((h[4] ?? 0) & 1 ? 1 : -1);
  }
  return normalize(v);
}
