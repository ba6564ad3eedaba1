import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FidelityReport } from '../../analytics/fidelity.ts';
import { matches, parseWhere } from '../../persona/filter.ts';
import { generationSeeds } from '../../persona/generate.ts';
import { personaFilterAttributes } from '../../persona/persona-filter.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const run = promisify(execFile);

/**
 * Attribute-targeted generation on the real stack: `personahub generate` sends a job's seeds, every
 * stage runs, and every persona that reaches the store matches the filter and carries its
 * demographics and profile; `personahub report` then reads them back from PostgreSQL.
 */
describe('personahub generate and report', () => {
  let t: TestPipeline;

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
  });

  afterAll(async () => {
    await t?.close();
  });

  const cli = async (args: string[]) => run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env }, timeout: 120_000,
  });

  it('drafts, validates and stores only personas matching the filter, and reports their fidelity', async () => {
    const where = 'occupation=nurse,age>=30';
    const job = { profile: 'nigeria', where, count: 24, text: 'A hospital announces longer visiting hours.', jobId: `it-${t.prefix}` };
    await t.startStages();
    const sent = await cli(['generate', '--count', '24', '--profile', 'nigeria', '--where', where, '--job', job.jobId, '--text', job.text]);
    expect(JSON.parse(sent.stdout)).toEqual({ jobId: job.jobId, profile: 'nigeria', where, seeds: 24, personas: 24 });

    const seedIds = new Set(generationSeeds(job, 0).map((s) => s.id));
    expect(await t.observer.waitUntilSettled(seedIds, { timeoutMs: 240_000 })).toBe(true);
    const validated = [...t.observer.seen.validated.values()].filter((p) => seedIds.has(p.seedId));
    expect(validated.length).toBeGreaterThan(18);

    const stored = await t.pipeline.ctx.store.readPersonasAfter(null, 100);
    expect(stored.map((p) => p.id).sort()).toEqual(validated.map((p) => p.id).sort());
    for (const p of stored) {
      expect(matches(personaFilterAttributes(p), parseWhere(where))).toBe(true);
      expect(p.demographics?.country).toBe('Nigeria');
      expect(p.provenance).toMatchObject({ samplerProfile: 'nigeria', samplerProfileVersion: '1.0.0' });
    }

    const report = await cli(['report', '--where', where, '--json']);
    const reports = JSON.parse(report.stdout) as FidelityReport[];
    expect(reports.map((r) => [r.profile, r.where, r.personas])).toEqual([['nigeria', where, stored.length]]);
    expect(reports[0]?.marginals.find((m) => m.attribute === 'occupation')).toMatchObject({ tvd: 0, coverage: 1 });
    const text = await cli(['report', '--profile', 'nigeria', '--where', where]);
    expect(text.stdout).toContain(`### Population fidelity: profile \`nigeria\` 1.0.0 where \`${where}\`, ${stored.length} personas`);
  });
});
