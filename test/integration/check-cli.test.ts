import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPersona as parsePersona, personaLine } from '../../corpus/persona-json.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { seedId } from '../../persona/ids.ts';
import { FIXTURE_CHAT_MODEL, startFixtureLlm } from '../helpers/fixture-llm.ts';
import { samplePersona } from '../helpers/samples.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ph-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `personahub check` as a user runs it: a real process and its real exit code (it needs no stack). */
async function personahub(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

interface Verdict {
  id: string;
  verdict: string;
  reasons: { code: string; message: string }[];
  repaired: string[];
  description?: string;
  judge?: string[];
}

const verdicts = (stdout: string): Verdict[] => stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Verdict);

/** Output number `i` of the labelled fixture (test/fixtures/draft-outputs.jsonl): real drafts of the small models. */
const fixtureLines = readFileSync(new URL('../fixtures/draft-outputs.jsonl', import.meta.url), 'utf8').trim().split('\n').slice(1);
const real = (i: number): Persona => parsePersona((JSON.parse(fixtureLines[i] ?? 'null') as { persona: unknown }).persona, `fixture ${i}`);

const coherent = samplePersona({ id: '1'.repeat(32) });
// "Minh Schmidt is a 27-year-old high school chemistry teacher in Glasgow who reads the text about freelancers ..."
const leaked = real(10);
// "... in the local newspaper. Private with a competitive spirit, she could have provided the text in person to the readers."
const leakedTail = real(46);
const cutOff = samplePersona({ id: '3'.repeat(32), description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update before her night shift. Warm and meticulous, she' });

describe('personahub check', () => {
  it('prints one verdict per record and a summary; exit 2 when a record is rejected; a malformed line is named by number and exits 1', async () => {
    const r = await personahub(['check', file('mixed.jsonl', [personaLine(coherent), personaLine(leaked), personaLine(leakedTail), personaLine(cutOff)])]);
    expect(r.code).toBe(2);
    const out = verdicts(r.stdout);
    expect(out.map((v) => [v.id, v.verdict])).toEqual([[coherent.id, 'passed'], [leaked.id, 'rejected'], [leakedTail.id, 'repaired'], [cutOff.id, 'repaired']]);
    expect(out[1]?.reasons.map((x) => x.code)).toEqual(['PROMPT_LEAK']);
    expect(out[1]?.reasons[0]?.message).toContain('"the text"');
    expect(out[2]?.repaired).toEqual(['description.leaked_tail']);
    expect(out[2]?.description).toBe('Ngozi Aziz is a 43-year-old video game designer who has written about signs of heat exhaustion in the local newspaper.');
    expect(out[3]?.repaired).toEqual(['description.truncated']);
    expect(out[3]?.description).toBe('Amara Okafor is a 34-year-old pediatric nurse in Lagos. She reads every vaccination update before her night shift.');
    expect(r.stderr).toContain('checked 4 records: 1 passed, 2 repaired, 1 rejected; reasons: PROMPT_LEAK 1');

    const bad = await personahub(['check', file('bad.jsonl', [personaLine(coherent), '{"id": "x", "age": "forty"}', 'not json'])]);
    expect(bad.code).toBe(1);
    expect(verdicts(bad.stdout).map((v) => v.verdict)).toEqual(['passed']);
    expect(bad.stderr).toContain('personahub: PH_CORPUS_RECORD: line 2: not a persona (');
    expect(bad.stderr).toContain('personahub: PH_CORPUS_RECORD: line 3: not JSON (');
    expect(bad.stderr).toContain('2 malformed lines skipped');
  });

  it('exits 0 when every record passes or is repaired, and accepts records without enrichment, validation or lineage', async () => {
    const { enrichment: _e, validation: _v, lineage: _l, ...bare } = coherent;
    const r = await personahub(['check', file('ok.jsonl', [JSON.stringify(bare), personaLine(cutOff)])]);
    expect(r.stderr).toContain('checked 2 records: 1 passed, 1 repaired, 0 rejected');
    expect(r.code).toBe(0);
  });

  it('with --judge, has the model score each record the checks pass, rejecting on a criterion below the threshold', async () => {
    const llm = await startFixtureLlm();
    try {
      // Six records the checks pass; their ids seed the judge call, so the fixture scores each differently.
      const records = ['a', 'b', 'c', 'd', 'e', 'f'].map((c) => samplePersona({ id: c.repeat(32) }));
      const input = file('judge.jsonl', records.map(personaLine));
      const env = { PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL, PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_LLM_CACHE_DIR: '' };
      const plain = await personahub(['check', input], env);
      expect(plain.code).toBe(0);
      expect(llm.requests).toHaveLength(0);

      const r = await personahub(['check', '--judge', input], env);
      const out = verdicts(r.stdout);
      expect(llm.requests.filter((q) => q.path === '/v1/chat/completions' && q.status === 200)).toHaveLength(records.length);
      expect(out.map((v) => v.id)).toEqual(records.map((p) => p.id));
      for (const v of out) {
        expect(v.judge).toHaveLength(6);
        const scores = (v.judge ?? []).slice(1).map((c) => Number(c.split('=')[1]));
        if (v.verdict === 'rejected') {
          expect(v.reasons.map((x) => x.code).every((c) => c === 'LLM_JUDGE')).toBe(true);
          expect(v.reasons).toHaveLength(scores.filter((x) => x < 3).length);
        } else {
          expect(Math.min(...scores)).toBeGreaterThanOrEqual(3);
        }
      }
      const rejected = out.filter((v) => v.verdict === 'rejected').length;
      expect(rejected).toBeGreaterThan(0);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`LLM_JUDGE`);
    } finally {
      await llm.close();
    }
  });

  it('runs the seed checks when given the seeds, and holds the description to PERSONAHUB_MAX_DESCRIPTION_CHARS', async () => {
    const seedText = 'Residents of Millbrook Road can expect overnight lane closures from Monday as crews replace a 1950s water main.';
    const seeds = file('seeds.jsonl', [JSON.stringify({ text: seedText, source: 'news-local' })]);
    const copying = samplePersona({
      id: '4'.repeat(32), seedId: seedId(seedText, 'news-local'), seedRelation: 'ENTHUSIAST',
      description: 'Amara Okafor, 34, a pediatric nurse in Lagos, says residents of Millbrook Road can expect overnight lane closures from Monday.',
    });
    const records = file('seeded.jsonl', [personaLine(copying)]);
    expect(verdicts((await personahub(['check', records])).stdout)[0]?.verdict).toBe('passed');
    const withSeeds = await personahub(['check', records, '--seeds', seeds]);
    expect(verdicts(withSeeds.stdout)[0]?.reasons.map((x) => x.code)).toEqual(['SEED_COPY']);
    const short = await personahub(['check', records], { PERSONAHUB_MAX_DESCRIPTION_CHARS: '100' });
    expect(verdicts(short.stdout)[0]?.reasons.map((x) => x.code)).toEqual(['DESCRIPTION_TOO_LONG']);
  });

  it('reads stdin for -', async () => {
    const child = run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'check', '-'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn' }, timeout: 60_000,
    });
    child.child.stdin?.end(`${personaLine(coherent)}\n`);
    const { stdout, stderr } = await child;
    expect(verdicts(stdout).map((v) => [v.id, v.verdict])).toEqual([[coherent.id, 'passed']]);
    expect(stderr).toContain('checked 1 record: 1 passed, 0 repaired, 0 rejected');
  });

  it('names an unreadable file', async () => {
    const r = await personahub(['check', join(dir, 'missing.jsonl')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('personahub: PH_CORPUS_UNREADABLE: ');
    expect(r.stderr).toContain('missing.jsonl: ENOENT');
  });
});
