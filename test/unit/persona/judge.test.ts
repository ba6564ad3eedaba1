import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { buildJudgeMessages, JUDGE_CRITERION_NAMES, JUDGE_OUTPUT_SCHEMA, judgeVerdict, type JudgeAnswer } from '../../../persona/judge.ts';
import { judgeAnswer } from '../../../processors/validate/judge.ts';
import { samplePersona } from '../../helpers/samples.ts';

const scored = (scores: Partial<Record<keyof JudgeAnswer, number>> = {}): JudgeAnswer =>
  Object.fromEntries(JUDGE_CRITERION_NAMES.map((c) => [c, { score: scores[c] ?? 5, reason: `${c} is fine` }])) as JudgeAnswer;

describe('judge prompt', () => {
  it('carries the attributes, the text, every criterion and the seed text when known', () => {
    const p = samplePersona();
    const [system, user] = buildJudgeMessages(p, 'City council approves new bike lanes downtown.');
    expect(system?.role).toBe('system');
    const text = user?.content ?? '';
    for (const c of JUDGE_CRITERION_NAMES) expect(text).toContain(`- ${c}: `);
    expect(text).toContain(`Name: ${p.name}`);
    expect(text).toContain(`Age: ${p.age}`);
    expect(text).toContain(`Occupation: ${p.occupation}`);
    expect(text).toContain(`Traits: ${p.traits.join(', ')}`);
    expect(text).toContain(`Description:\n${p.description}`);
    expect(text).toContain('Seed text:\nCity council approves new bike lanes downtown.');
    // The persona's own text comes after the instructions, as data.
    expect(text.indexOf('Description:')).toBeGreaterThan(text.indexOf('Criteria:'));
  });

  it('leaves the seed section out when the seed text is unknown (the validate stage)', () => {
    expect(buildJudgeMessages(samplePersona())[1]?.content).not.toContain('Seed text:');
  });
});

describe('judge answer schema and parser', () => {
  const validate = new Ajv({ strict: true }).compile(JUDGE_OUTPUT_SCHEMA);
  it('accepts a full answer and refuses scores outside 1-5, fractions, a missing criterion or an extra field', () => {
    expect(validate(scored())).toBe(true);
    expect(judgeAnswer.parse(scored())).toEqual(scored());
    for (const bad of [
      scored({ hygiene: 0 }), scored({ hygiene: 6 }), scored({ coherence: 3.5 }),
      { ...scored(), seed_relation: undefined }, { ...scored(), extra: { score: 3, reason: 'x' } },
    ]) {
      expect(validate(JSON.parse(JSON.stringify(bad)))).toBe(false);
    }
    expect(() => judgeAnswer.parse(scored({ hygiene: 0 }))).toThrow();
    expect(() => judgeAnswer.parse(scored({ coherence: 3.5 }))).toThrow();
    expect(() => judgeAnswer.parse({ ...scored(), seed_relation: undefined })).toThrow();
    expect(() => judgeAnswer.parse({ ...scored(), hygiene: { score: 4, reason: 'x'.repeat(400) } })).toThrow();
  });
});

describe('judge decision', () => {
  it('passes when every criterion reaches the threshold, recording each score', () => {
    const v = judgeVerdict(scored({ specificity: 3 }), 3);
    expect(v.passed).toBe(true);
    expect(v.reasons).toEqual([]);
    expect(v.checks).toEqual(['llm_judge', 'llm_judge.consistency=5', 'llm_judge.specificity=3', 'llm_judge.hygiene=5', 'llm_judge.coherence=5', 'llm_judge.seed_relation=5']);
  });

  it('rejects on the minimum: one low criterion is not outweighed by high ones (a mean of 4.2 would pass)', () => {
    const v = judgeVerdict(scored({ hygiene: 1 }), 3);
    expect(v.passed).toBe(false);
    expect(v.reasons).toEqual([{ code: 'LLM_JUDGE', message: 'hygiene scored 1 (below 3): hygiene is fine' }]);
  });

  it('gives one reason per low criterion, and threshold 1 rejects nothing', () => {
    expect(judgeVerdict(scored({ consistency: 2, coherence: 1 }), 3).reasons.map((r) => r.message.split(' ')[0])).toEqual(['consistency', 'coherence']);
    expect(judgeVerdict(scored({ consistency: 1, coherence: 1 }), 1).passed).toBe(true);
  });
});
