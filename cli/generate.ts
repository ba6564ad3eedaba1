import { Option, type Command } from 'commander';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../core/logger.ts';
import { fidelity, fidelityByProfile, renderFidelity, type FidelityReport, type SourcedPersona } from '../analytics/fidelity.ts';
import { matches, parseWhere } from '../persona/filter.ts';
import { DEFAULT_GENERATION_TEXT, generationSeeds, newJobId } from '../persona/generate.ts';
import { listProfiles, loadProfile, ProfileError, type Profile } from '../persona/profile.ts';
import { samplePersona, samplerFor } from '../persona/sampler.ts';
import { personaFilterAttributes } from '../persona/persona-filter.ts';
import { EventSource } from '../runtime/source.ts';
import { openStore } from '../store/open.ts';
import type { Persona } from '../schemas/types.generated.ts';
import { buildKafkaClients } from './wiring.ts';

/** `personahub generate` (attribute-targeted generation) and `personahub report` (population fidelity of the store). */

function profileOrUndefined(name: string): Profile | undefined {
  try {
    return loadProfile(name);
  } catch (error) {
    if (error instanceof ProfileError) return undefined;
    throw error;
  }
}

const PAGE = 1000;

/** Whole personas of the store in id order, page by page, up to `limit`. */
async function* storedPersonas(read: (after: string | null, limit: number) => Promise<Persona[]>, limit: number): AsyncGenerator<Persona> {
  let after: string | null = null;
  let seen = 0;
  while (seen < limit) {
    const page = await read(after, Math.min(PAGE, limit - seen));
    for (const p of page) yield p;
    seen += page.length;
    const last = page[page.length - 1];
    if (!last || page.length < PAGE) return;
    after = last.id;
  }
}

export function addGenerateCommands(program: Command, positiveInt: (value: string) => number): void {
  program.command('generate')
    .description('attribute-targeted generation: N seeds whose personas are drawn from a profile conditioned on a filter (by construction, never by rejection)')
    .requiredOption('--count <n>', 'personas to generate', positiveInt)
    .addOption(new Option('--profile <name>', 'sampler profile (config/profiles/<name>.yaml); default PERSONAHUB_PROFILE').choices(listProfiles()))
    .option('--where <filter>', 'filter, e.g. "occupation=nurse,age>=30,country=Nigeria" (docs/QUALITY.md has the language)', '')
    .option('--job <id>', 'job id: the same id, profile, filter and count make the same seeds (default: a new id)')
    .option('--text <seed text>', 'the text every seed of the job carries', DEFAULT_GENERATION_TEXT)
    .option('--dry-run', 'print the attributes the draft stage will draw, one JSON line per persona, and send nothing')
    .action(async (o: { count: number; profile?: string; where: string; job?: string; text: string; dryRun?: boolean }) => {
      const config = loadConfig();
      const profile = o.profile ?? config.profile;
      const now = Date.now();
      const jobId = o.job ?? newJobId(profile, o.where, o.count, now);
      const seeds = generationSeeds({ profile, where: o.where, count: o.count, text: o.text, jobId }, now);
      if (o.dryRun) {
        for (const seed of seeds) {
          const sampler = samplerFor(profile, seed.target?.where ?? '');
          for (let index = 0; index < config.personasPerSeed; index += 1) {
            const { attributes, demographics } = samplePersona(sampler, seed.id, index);
            console.log(JSON.stringify({ seedId: seed.id, generationIndex: index, ...attributes, demographics }));
          }
        }
        return;
      }
      const logger = createLogger({ level: config.logLevel });
      const { kafka, serde } = buildKafkaClients(config, logger, 'personahub-generate');
      const source = await EventSource.open(kafka, serde, config.topicPrefix);
      try {
        await source.send(seeds.map((s) => ({ event: 'seed' as const, key: s.id, value: s })));
      } finally {
        await source.close();
      }
      console.log(JSON.stringify({ jobId, profile, where: seeds[0]?.target?.where ?? '', seeds: seeds.length, personas: seeds.length * config.personasPerSeed }));
    });

  program.command('report')
    .description('population fidelity of the stored personas: each attribute\'s marginal and each pair\'s joint against the profile they were drawn from')
    .addOption(new Option('--profile <name>', 'only personas drawn from this profile').choices(listProfiles()))
    .option('--where <filter>', 'only personas matching the filter, compared with the profile conditioned on it', '')
    .option('--limit <n>', 'personas read from the store at most', positiveInt, 200_000)
    .option('--worst <n>', 'pairs listed per profile', positiveInt, 8)
    .option('--json', 'print the reports as JSON')
    .option('--sample <n>', 'instead of the store, n personas drawn by the sampler alone (the baseline a corpus is compared with)', positiveInt)
    .action(async (o: { profile?: string; where: string; limit: number; worst: number; json?: boolean; sample?: number }) => {
      const clauses = parseWhere(o.where);
      const print = (reports: FidelityReport[]) => {
        if (o.json) console.log(JSON.stringify(reports, null, 2));
        else console.log(reports.length === 0 ? 'No stored persona was drawn from a sampler profile (related personas and records from before profiles are not compared).' : reports.map((r) => renderFidelity(r, o.worst)).join('\n\n'));
      };
      if (o.sample !== undefined) {
        const name = o.profile ?? loadConfig().profile;
        const sampler = samplerFor(name, o.where);
        const drawn = Array.from({ length: o.sample }, (_, i) => samplePersona(sampler, `report-sample-${i}`, 0));
        print([fidelity(sampler.profile, drawn.map((p) => ({ ...p.attributes, demographics: p.demographics })), clauses, o.where)]);
        return;
      }
      const store = await openStore(loadConfig());
      const personas: SourcedPersona[] = [];
      try {
        await store.migrate();
        for await (const p of storedPersonas((after, limit) => store.readPersonasAfter(after, limit), o.limit)) {
          if (o.profile !== undefined && p.provenance.samplerProfile !== o.profile) continue;
          if (!matches(personaFilterAttributes(p), clauses)) continue;
          // With --where the personas are compared with the profile conditioned on it, whatever job made them.
          personas.push({ age: p.age, occupation: p.occupation, seedRelation: p.seedRelation, demographics: p.demographics, samplerProfile: p.provenance.samplerProfile, where: o.where });
        }
      } finally {
        await store.close();
      }
      print(fidelityByProfile(personas, profileOrUndefined));
    });
}
