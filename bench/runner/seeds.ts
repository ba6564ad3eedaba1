import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSeedLines } from '../../persona/seeds.ts';
import type { Seed } from '../../schemas/types.generated.ts';
import { BenchError, REPO_ROOT } from '../harness.ts';

/** The bundled seed texts (data/seeds.jsonl), without the deliberately bad lines. */
function seedTexts(): string[] {
  return readFileSync(join(REPO_ROOT, 'data', 'seeds.jsonl'), 'utf8').split('\n').flatMap((line) => {
    try {
      const text = (JSON.parse(line) as { text?: unknown }).text;
      return typeof text === 'string' && text.trim() !== '' ? [text] : [];
    } catch {
      return [];
    }
  });
}

/**
 * `n` distinct seeds from the bundled texts, made by the ingest parser itself (so they are what `personahub
 * ingest` sends), with `salt` as their source so that one run's seed ids are never another's (the store claims
 * inputs by id). Past the bundled texts, a round number keeps each text distinct. `first` numbers the first
 * text, so that slices of one long sequence, each made apart, are distinct from one another too.
 */
export function benchSeeds(salt: string, n: number, first = 0): Seed[] {
  const texts = seedTexts();
  const lines = Array.from({ length: n }, (_, k) => {
    const i = first + k;
    return JSON.stringify({ text: `${texts[i % texts.length] ?? ''}${i >= texts.length ? ` (round ${Math.floor(i / texts.length)})` : ''}` });
  });
  const { seeds } = parseSeedLines(lines, { source: `bench-${salt}`, format: 'jsonl', maxChars: 100_000, now: 1_700_000_000_000 });
  if (seeds.length !== n) throw new BenchError('PH_BENCH_SEEDS', `the ingest parser kept ${seeds.length} of ${n} bench seeds`);
  return seeds;
}
