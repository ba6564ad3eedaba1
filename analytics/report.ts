import type { Persona } from '../schemas/types.generated.ts';
import { defaultK, dispersion, distinctNgramRatio, kmeans } from './population.ts';
import { fidelityByProfile, renderFidelity, type FidelityReport } from './fidelity.ts';
import { listProfiles, loadProfile } from '../persona/profile.ts';
import type { PipelineObserver } from '../runtime/observer.ts';
import { descendsFrom, seedDescendsFrom } from '../topology/index.ts';
import { latticeReport, renderLattice, type LatticeReport } from './lattice.ts';
import type { Store } from '../store/index.ts';
import type { Embedder } from '../llm/embedder.ts';

export interface RunReport {
  mode: string;
  model: string;
  embeddingModel: string;
  store: string;
  seedsIngested: number;
  ingestRejected: { reason: string; count: number }[];
  topics: Record<string, { distinct: number; records: number }>;
  hops: { hop: string; in: number; out: number; pending: number }[];
  rejectedByReason: { reason: string; count: number }[];
  repairedByField: { field: string; count: number }[];
  dlqByReason: { stage: string; code: string; count: number }[];
  modelOutcomes: { passed: number; repaired: number; rejected: number };
  elapsedSeconds: number;
  personasPerMinute: number;
  /** Indexed by this run (re-delivered personas already in the store count too: they were re-announced). */
  indexedThisRun: number;
  storedPersonas: number;
  samples: { id: string; name: string; description: string; mode: string }[];
  /** DESIGN §6 diversity of this run's validated personas. */
  diversity: { dispersion: number; distinctBigrams: number; clusters: number[]; cohesion: number; occupations: number; locales: number };
  search: { query: string; hits: { score: number; description: string }[] };
  /** The run's validated personas against the sampler profile (and generation filter) they were drawn from. */
  fidelity: FidelityReport[];
  lattice: LatticeReport;
}

function tally(items: string[]): { key: string; count: number }[] {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return [...m].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count);
}

/**
 * The report covers this run only: the seeds it ingested and what descends from them, as seen by an
 * observer that ignores records older than the run (topics may hold earlier runs of the same seeds).
 */
export async function buildReport(o: { observer: PipelineObserver; seedIds: ReadonlySet<string>; store: Store; embedder: Embedder; mode: string; model: string; startedAt: number; ingestRejected: string[]; searchQuery: string }): Promise<RunReport> {
  const { observer: obs, seedIds } = o;
  const scoped = <T extends Pick<Persona, 'seedId' | 'lineage'>>(m: Map<string, T>): T[] => [...m.values()].filter((v) => descendsFrom(seedIds, v));
  const validated = scoped(obs.seen.validated);
  // Rejected and indexed records carry no lineage: they are the run's when the persona was drafted in it.
  const drafted = scoped(obs.seen.draft);
  const draftedIds = new Map(drafted.map((p) => [p.id, p]));
  const rejected = [...obs.seen.rejected.values()].filter((r) => draftedIds.has(r.id));
  const indexed = [...obs.seen.indexed.values()].filter((r) => draftedIds.has(r.id));
  const dlq = [...obs.seen.dlq.values()];
  const lastIndexedAt = Math.max(o.startedAt, ...indexed.map((i) => i.indexedAt));
  const elapsed = Math.max(0.001, (lastIndexedAt - o.startedAt) / 1000);
  const queryVector = (await o.embedder.embed([o.searchQuery]))[0] ?? [];
  const hits = queryVector.length > 0 ? await o.store.search(queryVector, 3) : [];
  const samples = validated.slice(0, 3).map((p) => ({ id: p.id, name: p.name, description: p.description, mode: p.provenance.mode }));
  const repairedFields = validated.flatMap((p) => p.validation?.repaired ?? []);
  const vectors = validated.map((p) => p.enrichment?.embedding ?? []).filter((v) => v.length > 0);
  const clustering = kmeans(vectors, defaultK(vectors.length), { seed: 'report' });
  return {
    mode: o.mode, model: o.model, embeddingModel: o.embedder.model, store: o.store.kind,
    seedsIngested: seedIds.size,
    ingestRejected: tally(o.ingestRejected).map(({ key, count }) => ({ reason: key, count })),
    topics: {
      seed: { distinct: [...obs.seen.seed].filter(([k, v]) => seedDescendsFrom(seedIds, k, v)).length, records: obs.records.seed },
      draft: { distinct: drafted.length, records: obs.records.draft },
      enriched: { distinct: scoped(obs.seen.enriched).length, records: obs.records.enriched },
      validated: { distinct: validated.length, records: obs.records.validated },
      indexed: { distinct: indexed.length, records: obs.records.indexed },
      rejected: { distinct: rejected.length, records: obs.records.rejected },
      dlq: { distinct: dlq.length, records: obs.records.dlq },
    },
    hops: obs.accounting(seedIds).map((h) => ({ hop: h.hop, in: h.in, out: h.out, pending: h.pending.length })),
    rejectedByReason: tally(rejected.flatMap((r) => r.reasons.map((x) => x.code))).map(({ key, count }) => ({ reason: key, count })),
    repairedByField: tally(repairedFields).map(({ key, count }) => ({ field: key, count })),
    dlqByReason: tally(dlq.map((d) => `${d.stage}\u0000${d.errorCode}`)).map(({ key, count }) => {
      const [stage = '', code = ''] = key.split('\u0000');
      return { stage, code, count };
    }),
    modelOutcomes: {
      passed: validated.filter((p) => (p.validation?.repaired.length ?? 0) === 0).length,
      repaired: validated.filter((p) => (p.validation?.repaired.length ?? 0) > 0).length,
      rejected: rejected.length,
    },
    elapsedSeconds: Math.round(elapsed * 10) / 10,
    personasPerMinute: Math.round((indexed.length / elapsed) * 60 * 10) / 10,
    indexedThisRun: indexed.length,
    storedPersonas: await o.store.countPersonas(),
    samples,
    diversity: {
      dispersion: round3(dispersion(vectors)),
      distinctBigrams: round3(distinctNgramRatio(validated.map((p) => p.description))),
      clusters: [...clustering.sizes].sort((a, b) => b - a),
      cohesion: round3(clustering.cohesion),
      occupations: new Set(validated.map((p) => p.occupation)).size,
      locales: new Set(validated.map((p) => p.locale)).size,
    },
    search: { query: o.searchQuery, hits: hits.map((h) => ({ score: Math.round(h.score * 1000) / 1000, description: h.description })) },
    fidelity: fidelityByProfile(validated.map((p) => ({
      age: p.age, occupation: p.occupation, seedRelation: p.seedRelation, demographics: p.demographics,
      samplerProfile: p.provenance.samplerProfile, where: obs.seen.seed.get(p.seedId)?.target?.where ?? '',
    })), (name) => (listProfiles().includes(name) ? loadProfile(name) : undefined)),
    lattice: latticeReport(await o.store.latticeTables({ limitEdges: 100_000 }), [
      ...validated.map((p) => ({ depth: p.lineage?.depth ?? 0, duplicate: false })),
      ...rejected.map((r) => ({ depth: draftedIds.get(r.id)?.lineage?.depth ?? 0, duplicate: r.reasons.some((x) => x.code === 'DUPLICATE' || x.code === 'NEAR_DUPLICATE') })),
    ]),
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function renderReport(r: RunReport): string {
  const lines: string[] = [];
  lines.push('# PersonaHub Stream run report', '');
  lines.push(`Mode: **${r.mode}**${r.mode === 'sampler' ? ' (no LLM: personas composed from sampled attributes and seed terms)' : ''} · text model: \`${r.model}\` · embeddings: \`${r.embeddingModel}\` · store: ${r.store}`, '');
  lines.push(`Seeds ingested: ${r.seedsIngested}; lines refused at ingest: ${r.ingestRejected.map((x) => `${x.reason} ${x.count}`).join(', ') || 'none'}`, '');
  lines.push('| topic | ids from this run | records from this run (a re-delivery counts twice) |', '|---|---|---|');
  for (const [t, c] of Object.entries(r.topics)) lines.push(`| ${t} | ${c.distinct} | ${c.records} |`);
  lines.push('', '| hop | in | out | unaccounted |', '|---|---|---|---|');
  for (const h of r.hops) lines.push(`| ${h.hop} | ${h.in} | ${h.out} | ${h.pending} |`);
  lines.push('', `Validation: ${r.modelOutcomes.passed} passed as written, ${r.modelOutcomes.repaired} passed after repair, ${r.modelOutcomes.rejected} rejected.`);
  if (r.rejectedByReason.length) lines.push(`Rejections by reason: ${r.rejectedByReason.map((x) => `${x.reason} ${x.count}`).join(', ')}`);
  if (r.repairedByField.length) lines.push(`Repairs by field: ${r.repairedByField.map((x) => `${x.field} ${x.count}`).join(', ')}`);
  lines.push(`DLQ: ${r.dlqByReason.map((x) => `${x.stage}/${x.code} ${x.count}`).join(', ') || 'empty'}`);
  lines.push('', `Throughput: ${r.indexedThisRun} personas indexed in ${r.elapsedSeconds} s = **${r.personasPerMinute} personas/min**; ${r.storedPersonas} personas in the store.`, '');
  const d = r.diversity;
  lines.push('## Diversity', '');
  lines.push(`Embedding dispersion (mean pairwise cosine distance) ${d.dispersion}; distinct bigram ratio ${d.distinctBigrams}; ${d.occupations} occupations and ${d.locales} locales; ${d.clusters.length} clusters by spherical k-means, sizes ${d.clusters.join(', ') || '-'} (cohesion ${d.cohesion}). \`./personahub clusters\` clusters the whole store.`, '');
  lines.push(...renderLattice(r.lattice), '');
  if (r.fidelity.length > 0) lines.push('## Population fidelity', '', ...r.fidelity.map((f) => `${renderFidelity(f)}\n`), '`./personahub report` compares the whole store.', '');
  lines.push('## Sample personas', '');
  for (const s of r.samples) lines.push(`- **${s.name}** (${s.mode}, ${s.id}): ${s.description}`);
  lines.push('', `## Semantic search: "${r.search.query}"`, '');
  for (const h of r.search.hits) lines.push(`- ${h.score.toFixed(3)}  ${h.description}`);
  if (r.mode === 'sampler') lines.push('', 'For model-written personas run `./personahub demo` (local Qwen2.5-Coder-1.5B-Instruct) or point it at any OpenAI-compatible endpoint with `--llm-base-url <url>` (and PERSONAHUB_LLM_API_KEY, PERSONAHUB_LLM_MODEL).');
  else lines.push('', 'For better prose, point the pipeline at a larger model: `./personahub demo --llm-base-url <url>` with PERSONAHUB_LLM_API_KEY and PERSONAHUB_LLM_MODEL, or serve a larger GGUF locally with PERSONAHUB_LLM_MODEL_PATH.');
  lines.push('', 'Search yourself: `./personahub search "a retired teacher who loves gardening"`. Stop the stack: `./personahub stack down`.');
  return lines.join('\n');
}
