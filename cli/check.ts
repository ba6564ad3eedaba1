import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { PersonaHubError } from '../core/errors.ts';
import { CorpusError, parsePersonaLine } from '../corpus/persona-json.ts';
import type { LlmClient } from '../llm/client.ts';
import { checkPersona, type Reason } from '../persona/coherence.ts';
import { parseSeedLines } from '../persona/seeds.ts';
import { judgePersona } from '../processors/validate/judge.ts';

/**
 * `personahub check <file.jsonl>`: the validate stage's checks and repair, offered for personas made
 * elsewhere; with `--judge`, the stage's LLM judge too, on the records the checks pass. One verdict per
 * record on stdout, a summary on stderr.
 *
 * Exit codes: 0 when every record passed or was repaired, 2 when at least one was rejected, 1 when the
 * input could not be read or a line is not a persona (each such line is reported with its number and
 * skipped; the other lines are still checked).
 */
export interface Verdict {
  id: string;
  verdict: 'passed' | 'repaired' | 'rejected';
  reasons: Reason[];
  repaired: string[];
  /** The repaired text, present only when the verdict is `repaired`. */
  description?: string;
  /** With `--judge`, on a record the checks passed: `llm_judge` and each criterion's score, as the stage records them. */
  judge?: string[];
}

export interface CheckSummary {
  records: number;
  passed: number;
  repaired: number;
  rejected: number;
  malformed: number;
  byReason: Map<string, number>;
}

export const CHECK_EXIT = { ok: 0, unreadable: 1, rejected: 2 } as const;

/** Seed texts by seed id, computed as `ingest` computes them (source = the record's or the file's name). */
export async function readSeedTexts(input: NodeJS.ReadableStream, file: string, maxChars: number): Promise<Map<string, string>> {
  const lines: string[] = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) lines.push(line);
  const { seeds } = parseSeedLines(lines, { source: basename(file), format: 'jsonl', maxChars, now: 0 });
  return new Map(seeds.map((s) => [s.id, s.text]));
}

/** The file (or stdin for -), opened before any output, so a missing file is one clear error. */
export async function openInput(file: string): Promise<NodeJS.ReadableStream> {
  if (file === '-') return process.stdin;
  const stream = createReadStream(file, 'utf8');
  await new Promise<void>((resolve, reject) => {
    stream.once('ready', () => resolve());
    stream.once('error', (cause) => reject(new CorpusError('PH_CORPUS_UNREADABLE', `${file}: ${cause.message}`, { cause })));
  });
  return stream;
}

export async function checkFile(
  input: NodeJS.ReadableStream,
  opts: { maxDescriptionChars: number; seedTexts: ReadonlyMap<string, string>; judge?: { llm: LlmClient; threshold: number } },
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<CheckSummary> {
  const summary: CheckSummary = { records: 0, passed: 0, repaired: 0, rejected: 0, malformed: 0, byReason: new Map() };
  let lineNumber = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    let persona;
    try {
      persona = parsePersonaLine(line, `line ${lineNumber}`);
    } catch (error) {
      if (!(error instanceof PersonaHubError)) throw error;
      summary.malformed += 1;
      err(`personahub: ${error.code}: ${error.message}`);
      continue;
    }
    summary.records += 1;
    const seedText = opts.seedTexts.get(persona.seedId);
    const result = checkPersona(persona, { maxDescriptionChars: opts.maxDescriptionChars, seedText, requireEnrichment: false });
    const judged = opts.judge && result.reasons.length === 0 ? await judgePersona(opts.judge.llm, result.persona, opts.judge.threshold, seedText) : undefined;
    if (judged) result.reasons.push(...judged.reasons);
    const verdict: Verdict['verdict'] = result.reasons.length > 0 ? 'rejected' : result.repaired.length > 0 ? 'repaired' : 'passed';
    summary[verdict] += 1;
    for (const r of result.reasons) summary.byReason.set(r.code, (summary.byReason.get(r.code) ?? 0) + 1);
    const v: Verdict = { id: persona.id, verdict, reasons: result.reasons, repaired: result.repaired };
    if (verdict === 'repaired') v.description = result.persona.description;
    if (judged) v.judge = judged.checks;
    out(JSON.stringify(v));
  }
  return summary;
}

export function renderSummary(s: CheckSummary): string {
  const reasons = [...s.byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([code, n]) => `${code} ${n}`).join(', ');
  const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
  return `checked ${plural(s.records, 'record')}: ${s.passed} passed, ${s.repaired} repaired, ${s.rejected} rejected${s.malformed > 0 ? `; ${plural(s.malformed, 'malformed line')} skipped` : ''}${reasons ? `; reasons: ${reasons}` : ''}`;
}

export function exitCodeOf(s: CheckSummary): number {
  if (s.malformed > 0) return CHECK_EXIT.unreadable;
  return s.rejected > 0 ? CHECK_EXIT.rejected : CHECK_EXIT.ok;
}
