import type { Seed } from '../schemas/types.generated.ts';
import { seedId } from './ids.ts';

export interface IngestRejection {
  line: number;
  reason: 'EMPTY' | 'TOO_LONG' | 'BAD_JSON' | 'NO_TEXT';
  detail: string;
}

export interface IngestResult {
  seeds: Seed[];
  rejected: IngestRejection[];
  /** Lines whose seed id repeats an earlier line's (same normalized text and source). */
  duplicates: number;
}


/**
 * Parses seed lines: JSONL objects with a `text` field (and optional `source`), or plain text, one
 * seed per line. Bad lines are counted with a reason rather than stopping the whole file.
 */
export function parseSeedLines(lines: Iterable<string>, opts: { source: string; format: 'jsonl' | 'text'; maxChars: number; now: number; run?: string }): IngestResult {
  const seeds: Seed[] = [];
  const rejected: IngestRejection[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let lineNumber = 0;
  for (const raw of lines) {
    lineNumber += 1;
    let text = raw;
    let source = opts.source;
    if (opts.format === 'jsonl') {
      if (raw.trim() === '') {
        rejected.push({ line: lineNumber, reason: 'EMPTY', detail: 'blank line' });
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (error) {
        rejected.push({ line: lineNumber, reason: 'BAD_JSON', detail: (error as Error).message });
        continue;
      }
      const record = parsed as { text?: unknown; source?: unknown };
      if (typeof record.text !== 'string') {
        rejected.push({ line: lineNumber, reason: 'NO_TEXT', detail: 'object has no string field "text"' });
        continue;
      }
      text = record.text;
      if (typeof record.source === 'string' && record.source !== '') source = record.source;
    }
    // A run's name makes its seeds its own: the same line in another run is another seed (the demo).
    if (opts.run !== undefined) source = `${source}@${opts.run}`;
    const trimmed = text.trim();
    if (trimmed === '') {
      rejected.push({ line: lineNumber, reason: 'EMPTY', detail: 'no text' });
      continue;
    }
    if (trimmed.length > opts.maxChars) {
      rejected.push({ line: lineNumber, reason: 'TOO_LONG', detail: `${trimmed.length} chars > ${opts.maxChars} (PERSONAHUB_MAX_SEED_CHARS)` });
      continue;
    }
    const id = seedId(trimmed, source);
    if (seen.has(id)) {
      duplicates += 1;
      continue;
    }
    seen.add(id);
    seeds.push({ id, text: trimmed, source, lineNumber, depth: 0, parentPersonaId: null, rootSeedId: null, relationKind: null, parent: null, target: null, createdAt: opts.now });
  }
  return { seeds, rejected, duplicates };
}
