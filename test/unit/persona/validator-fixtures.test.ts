import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPersona } from '../../../persona/coherence.ts';
import { checkPersona as parsePersona } from '../../../corpus/persona-json.ts';
import type { ReasonCode } from '../../../persona/checks/codes.ts';
import type { Persona } from '../../../schemas/types.generated.ts';

/**
 * The validator against 120 real outputs of the small local models, each labelled by hand
 * (test/fixtures/draft-outputs.jsonl; its header names the command that made them). An incoherent
 * output counts as caught when it is rejected, or repaired where the repair addresses every defect it
 * was labelled with; a coherent one counts as wrongly rejected when it is rejected.
 */
interface Labelled {
  model: string;
  seedText: string;
  persona: Persona;
  defects: ReasonCode[];
}

/** The repair step's record of what it fixed, by the defect it fixes. */
const REPAIRS: Partial<Record<ReasonCode, string>> = {
  AGE_CONTRADICTION: 'description.age', NAME_CONTRADICTION: 'description.name', OCCUPATION_CONTRADICTION: 'description.occupation',
  TRUNCATED: 'description.truncated', REPETITION: 'description.repetition', SPECIAL_TOKEN: 'description.leaked_tail', PROMPT_LEAK: 'description.leaked_tail',
};

const [, ...lines] = readFileSync(new URL('../../fixtures/draft-outputs.jsonl', import.meta.url), 'utf8').trim().split('\n');
const fixtures = lines.map((line, i) => {
  const raw = JSON.parse(line) as Labelled;
  return { ...raw, persona: parsePersona(raw.persona, `fixture line ${i + 2}`) };
});

const verdicts = fixtures.map((f) => {
  const r = checkPersona(f.persona, { maxDescriptionChars: 2000, seedText: f.seedText, requireEnrichment: false });
  const found = new Set(r.reasons.map((x) => x.code));
  const repairedAll = r.reasons.length === 0 && r.repaired.length > 0 && f.defects.every((d) => REPAIRS[d] !== undefined && r.repaired.includes(REPAIRS[d]));
  return { f, r, found, caught: r.reasons.length > 0 || repairedAll, rejected: r.reasons.length > 0 };
});

const pct = (n: number, d: number): string => `${((100 * n) / d).toFixed(1)}%`;

describe('the validator on hand-labelled outputs of the small models', () => {
  it('holds at least 100 outputs of both models, with coherent ones among them', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(100);
    expect(new Set(fixtures.map((f) => f.model))).toEqual(new Set(['qwen2.5-coder-1.5b', 'qwen2.5-coder-0.5b']));
    expect(fixtures.filter((f) => f.defects.length === 0).length).toBeGreaterThanOrEqual(30);
  });

  it('catches at least 95% of the incoherent outputs and wrongly rejects at most 3% of the coherent ones', () => {
    const incoherent = verdicts.filter((v) => v.f.defects.length > 0);
    const coherent = verdicts.filter((v) => v.f.defects.length === 0);
    const caught = incoherent.filter((v) => v.caught);
    const wronglyRejected = coherent.filter((v) => v.rejected);
    const codes = [...new Set(incoherent.flatMap((v) => v.f.defects))].sort();
    const recall = codes.map((code) => {
      const labelled = incoherent.filter((v) => v.f.defects.includes(code));
      const found = labelled.filter((v) => v.found.has(code) || (REPAIRS[code] !== undefined && v.r.repaired.includes(REPAIRS[code])));
      return `  ${code.padEnd(26)} ${String(found.length).padStart(3)}/${String(labelled.length).padEnd(3)} ${pct(found.length, labelled.length)}`;
    });
    console.log([
      `validator on ${verdicts.length} labelled outputs (test/fixtures/draft-outputs.jsonl):`,
      `  incoherent caught: ${caught.length}/${incoherent.length} = ${pct(caught.length, incoherent.length)}`,
      `  coherent wrongly rejected: ${wronglyRejected.length}/${coherent.length} = ${pct(wronglyRejected.length, coherent.length)}`,
      ...[...new Set(verdicts.map((v) => v.f.model))].map((model) => {
        const of = verdicts.filter((v) => v.f.model === model);
        const n = (pred: (v: (typeof of)[number]) => boolean): number => of.filter(pred).length;
        return `  ${model}: labelled coherent ${n((v) => v.f.defects.length === 0)}/${of.length}; validator passed ${n((v) => !v.rejected && v.r.repaired.length === 0)}, repaired ${n((v) => !v.rejected && v.r.repaired.length > 0)}, rejected ${n((v) => v.rejected)}`;
      }),
      'recall per labelled code (the code found, or its repair made):', ...recall,
      ...incoherent.filter((v) => !v.caught).map((v) => `  missed: [${v.f.defects.join(', ')}] ${v.f.persona.description}`),
      ...wronglyRejected.map((v) => `  wrongly rejected: ${v.r.reasons.map((x) => x.code).join(', ')}: ${v.f.persona.description}`),
    ].join('\n'));
    expect(caught.length / incoherent.length).toBeGreaterThanOrEqual(0.95);
    expect(wronglyRejected.length / coherent.length).toBeLessThanOrEqual(0.03);
  });
});
