/**
 * The near-duplicate cosine threshold, swept over the planted-duplicates set
 * (test/helpers/planted-duplicates.ts): every persona embedded by the local all-MiniLM-L6-v2 (the
 * GGUF the local server serves), then the validate stage's decision replayed in process for each
 * threshold, distinct personas first and then the duplicates, as the integration test feeds them:
 * the exact text hash, LSH band candidates over the name-free words and the nearest passed personas
 * (exact search here, HNSW in the store), decided by persona/dedup.ts. Prints, per threshold, the
 * distinct personas wrongly rejected and the duplicates that survive by kind, and the cosine of each
 * kind of duplicate to its original.
 *
 *   node --import tsx bench/dedup/planted-sweep.ts [--distinct 600] [--duplicates 480] [--neighbours 5]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama } from 'node-llama-cpp';
import { loadConfig } from '../../config/index.ts';
import { dot, normalize } from '../../core/vector.ts';
import { EMBEDDING_MODEL } from '../../models/weights/fetch.ts';
import { dedupText, nearDuplicate } from '../../persona/dedup.ts';
import { textHash } from '../../persona/ids.ts';
import { bandKeys, lshParams, signatureOf } from '../../persona/minhash.ts';
import { DUPLICATE_KINDS, plantDuplicates } from '../../test/helpers/planted-duplicates.ts';

const { values } = parseArgs({ options: { distinct: { type: 'string', default: '600' }, duplicates: { type: 'string', default: '480' }, neighbours: { type: 'string', default: '5' } } });
const config = loadConfig();
const neighbours = Number(values.neighbours);
const set = plantDuplicates({ distinct: Number(values.distinct), duplicates: Number(values.duplicates) });
const all = [...set.distinct, ...set.duplicates];

const llama = await getLlama({ gpu: false, build: 'never' });
const model = await llama.loadModel({ modelPath: join(config.modelsDir, EMBEDDING_MODEL.file) });
// One thread: ggml's worker threads spin, and on a busy 2-core machine more threads are slower.
const context = await model.createEmbeddingContext({ threads: 1 });
const vectors = new Map<string, number[]>();
for (const { persona } of all) vectors.set(persona.id, normalize([...(await context.getEmbeddingFor(persona.description)).vector]));
await context.dispose();
await model.dispose();

const lsh = lshParams(config.dedupJaccard, config.minhashPermutations);
const minhash = { permutations: config.minhashPermutations, shingleSize: config.minhashShingle, seed: 1 };
const signatures = new Map(all.map(({ persona: p }) => [p.id, signatureOf(dedupText(p.description, p.name), minhash)]));
const vectorOf = (id: string): number[] => vectors.get(id) ?? [];

function replay(cosine: number): { wronglyRejected: number; survivors: Map<string, number> } {
  const passed: string[] = [];
  const bands = new Map<bigint, string[]>();
  const hashes = new Set<string>();
  const rejected = new Set<string>();
  for (const { persona: p } of all) {
    const hash = textHash(p.description);
    if (hashes.has(hash)) {
      rejected.add(p.id);
      continue;
    }
    hashes.add(hash);
    const signature = signatures.get(p.id) ?? new Uint32Array();
    const keys = bandKeys(signature, lsh);
    const candidates = new Set(keys.flatMap((k) => bands.get(k) ?? []));
    const v = vectorOf(p.id);
    for (const [id] of passed.map((id) => [id, dot(v, vectorOf(id))] as const).sort((a, b) => b[1] - a[1]).slice(0, neighbours)) candidates.add(id);
    const verdict = nearDuplicate(signature, v, [...candidates].map((id) => ({ id, signature: signatures.get(id), embedding: vectorOf(id) })), { jaccard: config.dedupJaccard, cosine });
    if (verdict.duplicateOf !== undefined) {
      rejected.add(p.id);
      continue;
    }
    passed.push(p.id);
    for (const k of keys) bands.set(k, [...(bands.get(k) ?? []), p.id]);
  }
  // As the integration test counts them: a duplicate survives when it passes beside its original.
  const survivors = new Map(DUPLICATE_KINDS.map((k) => [k, set.duplicates.filter((d) => d.label.kind === k && !rejected.has(d.persona.id) && !rejected.has(d.label.duplicateOf)).length]));
  return { wronglyRejected: set.distinct.filter((d) => rejected.has(d.persona.id)).length, survivors };
}

console.log(`${set.distinct.length} distinct personas, ${set.duplicates.length} planted duplicates, ${neighbours} neighbours, Jaccard ${config.dedupJaccard}`);
for (const kind of DUPLICATE_KINDS) {
  const cosines = set.duplicates.flatMap((d) => (d.label.kind === kind ? [dot(vectorOf(d.persona.id), vectorOf(d.label.duplicateOf))] : [])).sort((a, b) => a - b);
  console.log(`cosine of a ${kind} to its original: min ${cosines[0]?.toFixed(3)}, median ${cosines[cosines.length >> 1]?.toFixed(3)}, max ${cosines.at(-1)?.toFixed(3)}`);
}
const nearestDistinct = set.distinct.map((d) => Math.max(...set.distinct.filter((o) => o !== d).map((o) => dot(vectorOf(d.persona.id), vectorOf(o.persona.id))))).sort((a, b) => b - a);
console.log(`highest cosine between two distinct personas: ${nearestDistinct[0]?.toFixed(3)}`);
console.log('| cosine | distinct wrongly rejected | duplicates surviving | by kind |\n|---|---|---|---|');
for (const cosine of [0.9, 0.88, 0.86, 0.85, 0.84, 0.83, 0.82]) {
  const r = replay(cosine);
  const surviving = [...r.survivors.values()].reduce((a, b) => a + b, 0);
  console.log(`| ${cosine} | ${r.wronglyRejected}/${set.distinct.length} | ${surviving}/${set.duplicates.length} | ${[...r.survivors].map(([k, n]) => `${k} ${n}`).join(', ')} |`);
}
