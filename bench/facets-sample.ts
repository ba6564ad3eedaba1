/**
 * A handful of personas through the real draft and enrich processors against a real model, to read what
 * the prompts produce: the description, the written facets and the LLM-written modalities, with the
 * validator's verdict on the description, and the seconds and completion tokens each call took. No Kafka: the processors are
 * called as the runner calls them, with the configured endpoint (PERSONAHUB_LLM_BASE_URL) and hash
 * embeddings.
 *
 *   PERSONAHUB_LLM_BASE_URL=http://127.0.0.1:28434/v1 npx tsx bench/facets-sample.ts [--from 0] [--personas 4] [--out FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildLlm } from '../cli/wiring.ts';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../core/logger.ts';
import { hashEmbedder } from '../llm/embedder.ts';
import { checkPersona } from '../persona/coherence.ts';
import { parseSeedLines } from '../persona/seeds.ts';
import { draft } from '../processors/draft/index.ts';
import { enrich } from '../processors/enrich/index.ts';
import type { ProcessorContext } from '../runtime/processor.ts';
import { MemoryStore } from '../test/helpers/context.ts';

const { values: o } = parseArgs({ options: { from: { type: 'string', default: '0' }, personas: { type: 'string', default: '4' }, out: { type: 'string' } } });
const from = Number(o.from);
const count = Number(o.personas);

// One persona per seed, sampler profile and filter as configured; no response cache, so every answer is the model's own now.
const config = loadConfig({ ...process.env, PERSONAHUB_MODE: 'llm', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PERSONAS_PER_SEED: '1', PERSONAHUB_LLM_CACHE_DIR: '', PERSONAHUB_LLM_TIMEOUT_MS: process.env.PERSONAHUB_LLM_TIMEOUT_MS ?? '600000' });
const logger = createLogger({ level: 'warn' });
// The completion tokens of each call, which say what the facets and the modalities cost whatever the machine's load.
let tokens = 0;
const llm = buildLlm(config, logger, (e) => { tokens += e.completionTokens ?? 0; });
if (!llm) throw new Error('no LLM endpoint configured: set PERSONAHUB_LLM_BASE_URL');
const ctx: ProcessorContext = { config, logger, llm, embedder: hashEmbedder(config.embeddingDimensions), store: new MemoryStore(), now: () => Date.now(), delivery: 'facets-sample:0:0' };

const seedFile = join(fileURLToPath(new URL('..', import.meta.url)), 'data', 'seeds.jsonl');
const { seeds } = parseSeedLines(readFileSync(seedFile, 'utf8').split('\n'), { source: 'seeds.jsonl', format: 'jsonl', maxChars: config.maxSeedChars, now: Date.now() });
const lines: string[] = [];
for (const seed of seeds.slice(from, from + count)) {
  const t0 = performance.now();
  tokens = 0;
  const [drafted] = await draft.process(seed, ctx);
  const t1 = performance.now();
  const draftTokens = tokens;
  tokens = 0;
  if (!drafted) continue;
  const [enriched] = await enrich.process(drafted.value, ctx);
  const t2 = performance.now();
  if (!enriched) continue;
  const p = enriched.value;
  const verdict = checkPersona(p, { maxDescriptionChars: config.maxDescriptionChars, seedText: seed.text, dimensions: config.embeddingDimensions });
  const { embedding: _, ...modalities } = p.enrichment ?? { embedding: [] };
  const line = JSON.stringify({
    seed: seed.text.slice(0, 160), name: p.name, age: p.age, occupation: p.occupation, locale: p.locale, traits: p.traits,
    demographics: p.demographics && { sex: p.demographics.sex, maritalStatus: p.demographics.maritalStatus, household: p.demographics.household, hobbies: p.demographics.hobbies },
    description: p.description, facets: p.facets, modalities, validation: { reasons: verdict.reasons.map((r) => r.code), repaired: verdict.repaired },
    seconds: { draft: Math.round((t1 - t0) / 100) / 10, enrich: Math.round((t2 - t1) / 100) / 10 }, completionTokens: { draft: draftTokens, enrich: tokens },
  });
  console.log(line);
  lines.push(line);
}
if (o.out) writeFileSync(o.out, `${lines.join('\n')}\n`);
await llm.close();
