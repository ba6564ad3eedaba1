import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { events, stageTable } from '../../topology/index.ts';
import { chartTopology, syncChart, SYNC_COMMAND } from '../../scripts/chart-sync.ts';
import { checkCustomResource, isCustomResource } from './crd-check.ts';
import { byKind, CHART, helmTemplate, KUBE_VERSION, PROFILES, profileFiles, tempDir, tool, type Manifest } from './helpers.ts';

/**
 * The chart: lint and render for the default values and each profile against Kubernetes 1.34, every
 * rendered manifest validated offline (core kinds strictly by kubernetes-validate, KEDA and
 * prometheus-operator kinds by their models plus the misspelled-key check), the generated files current,
 * and a stage added to the topology appearing without a template edit.
 */
let helm: string;
let kubernetesValidate: string;

beforeAll(() => {
  helm = tool('helm');
  kubernetesValidate = tool('kubernetes-validate');
});

/** Core kinds, strictly (unknown fields are errors), against the target Kubernetes version. */
function validateCore(manifests: Manifest[]): { ok: boolean; output: string } {
  const core = manifests.filter((m) => !isCustomResource(m));
  const file = join(tempDir('ph-kv-'), 'core.yaml');
  writeFileSync(file, core.map((m) => JSON.stringify(m)).join('\n---\n'));
  const r = spawnSync(kubernetesValidate, ['--strict', '-k', KUBE_VERSION.replace(/\.0$/, ''), file], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  // Every core document must have been checked against a schema, not skipped as unknown.
  const passed = (output.match(/ passed for resource /g) ?? []).length;
  return { ok: r.status === 0 && passed === core.length && !/Couldn't find schema/.test(output), output };
}

describe('helm lint --strict and helm template', () => {
  it.each(PROFILES)('%s lints and renders for Kubernetes 1.34', (profile) => {
    const args = ['lint', '--strict', '--kube-version', KUBE_VERSION, CHART, ...profileFiles(profile).flatMap((f) => ['-f', join(CHART, f)])];
    const lint = spawnSync(helm, args, { encoding: 'utf8' });
    expect(lint.status, `${lint.stdout}${lint.stderr}`).toBe(0);
    expect(lint.stdout).toContain('0 chart(s) failed');
    const { manifests } = helmTemplate(helm, { files: profileFiles(profile) });
    expect(manifests.length).toBeGreaterThan(10);
  });
});

describe('every rendered manifest validates offline', () => {
  it.each(PROFILES)('%s: core kinds strictly, custom resources against their models', async (profile) => {
    const { manifests } = helmTemplate(helm, { files: profileFiles(profile) });
    const core = validateCore(manifests);
    expect(core.ok, core.output).toBe(true);
    const problems: string[] = [];
    for (const m of manifests.filter(isCustomResource)) problems.push(...(await checkCustomResource(m)));
    expect(problems).toEqual([]);
  });

  it('the optional parts validate too: API, HPA fallback, SASL TriggerAuthentication, persistence, existing secret', async () => {
    const { manifests } = helmTemplate(helm, {
      values: [
        'api: {enabled: true}',
        'config: {kafkaSaslMechanism: scram-sha-512, kafkaSsl: true}',
        'secrets: {kafkaSaslUsername: pipeline, kafkaSaslPassword: s3cret}',
        'modelServer: {persistence: {enabled: true}}',
      ].join('\n'),
    });
    expect(byKind(manifests, 'TriggerAuthentication')).toHaveLength(1);
    const so = byKind(manifests, 'ScaledObject')[0] as Manifest & { spec: { triggers: { metadata: Record<string, string>; authenticationRef?: { name: string } }[] } };
    expect(so.spec.triggers[0]?.metadata).toMatchObject({ sasl: 'scram_sha512', tls: 'enable' });
    expect(so.spec.triggers[0]?.authenticationRef?.name).toBe('ph-personahub-kafka-auth');
    const hpa = helmTemplate(helm, { values: 'autoscaling: {keda: {enabled: false}}\nsecrets: {existingSecret: creds}' }).manifests;
    expect(byKind(hpa, 'ScaledObject')).toHaveLength(0);
    expect(byKind(hpa, 'HorizontalPodAutoscaler')).toHaveLength(Object.keys(stageTable).length);
    expect(byKind(hpa, 'Secret')).toHaveLength(0);
    for (const set of [manifests, hpa]) {
      const core = validateCore(set);
      expect(core.ok, core.output).toBe(true);
      const problems: string[] = [];
      for (const m of set.filter(isCustomResource)) problems.push(...(await checkCustomResource(m)));
      expect(problems).toEqual([]);
    }
  });

  it('the validators are not vacuous: a misspelled or mistyped field fails each of them', async () => {
    const { manifests } = helmTemplate(helm);
    const deployment = structuredClone(byKind(manifests, 'Deployment')[0]) as Manifest & { spec: Record<string, unknown> };
    deployment.spec.replcias = 2;
    expect(validateCore([deployment]).ok).toBe(false);
    const typed = structuredClone(byKind(manifests, 'Deployment')[0]) as Manifest & { spec: Record<string, unknown> };
    typed.spec.replicas = 'two';
    expect(validateCore([typed]).ok).toBe(false);
    const so = structuredClone(byKind(manifests, 'ScaledObject')[0]) as Manifest & { spec: Record<string, unknown> & { triggers: { metadata: Record<string, unknown> }[] } };
    so.spec.maxReplicaCout = 3;
    (so.spec.triggers[0] as { metadata: Record<string, unknown> }).metadata.lagTreshold = '5';
    expect(await checkCustomResource(so)).toEqual([
      'ScaledObject ph-personahub-draft: unknown field spec.maxReplicaCout (not in the ScaledObject model)',
      'ScaledObject ph-personahub-draft: unknown kafka trigger parameter spec.triggers[0].metadata.lagTreshold',
    ]);
    const sm = structuredClone(byKind(manifests, 'ServiceMonitor')[0]) as Manifest & { spec: { endpoints: Record<string, unknown>[] } };
    (sm.spec.endpoints[0] as Record<string, unknown>).intervall = '30s';
    expect((await checkCustomResource(sm)).join('\n')).toContain('unknown field spec.endpoints[0].intervall');
    const rule = structuredClone(byKind(manifests, 'PrometheusRule')[0]) as Manifest & { spec: { groups: { rules: Record<string, unknown>[] }[] } };
    delete (rule.spec.groups[0]?.rules[0] as Record<string, unknown>).expr;
    expect((await checkCustomResource(rule)).join('\n')).toContain('must have required property expr');
  });
});

describe('what the chart renders', () => {
  it('one Deployment, Service, ScaledObject and PDB per stage, each scaling up to the partitions', () => {
    const { manifests } = helmTemplate(helm);
    const partitions = 6;
    for (const [name, s] of Object.entries(stageTable)) {
      const fullname = `ph-personahub-${name}`;
      const d = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === fullname) as Manifest & { spec: { template: { spec: { containers: { args: string[]; livenessProbe: { httpGet: { path: string } }; readinessProbe: { httpGet: { path: string } }; securityContext: Record<string, unknown> }[]; securityContext: Record<string, unknown>; volumes: { name: string; emptyDir?: unknown }[] } } } };
      expect(d, fullname).toBeDefined();
      const c = d.spec.template.spec.containers[0];
      expect(c?.args).toEqual(['processor', name]);
      expect(c?.livenessProbe.httpGet.path).toBe('/health/live');
      expect(c?.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(c?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      expect(d.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(d.spec.template.spec.volumes.find((v) => v.name === 'tmp')?.emptyDir).toBeDefined();
      const so = manifests.find((m) => m.kind === 'ScaledObject' && m.metadata.name === fullname) as Manifest & { spec: { maxReplicaCount: number; triggers: { type: string; metadata: Record<string, string> }[] } };
      expect(so.spec.maxReplicaCount).toBe(partitions);
      expect(so.spec.triggers[0]).toMatchObject({ type: 'kafka', metadata: { topic: `personahub.${s.input}.v1`, consumerGroup: `personahub.${name}` } });
      expect(manifests.some((m) => m.kind === 'PodDisruptionBudget' && m.metadata.name === fullname)).toBe(true);
      expect(manifests.some((m) => m.kind === 'Service' && m.metadata.name === fullname)).toBe(true);
    }
    const job = byKind(manifests, 'Job')[0] as Manifest & { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.containers[0]?.args).toEqual(['topics', 'init']);
    expect(byKind(manifests, 'Deployment').some((m) => m.metadata.name.endsWith('-api'))).toBe(false);
  });

  it('maxReplicas is capped at the partitions, and a stage can be switched off', () => {
    const { manifests } = helmTemplate(helm, { values: 'config: {partitions: 2}\nstageDefaults: {maxReplicas: 10}\nstages: {index: {enabled: false}}' });
    for (const so of byKind(manifests, 'ScaledObject') as (Manifest & { spec: { maxReplicaCount: number } })[]) expect(so.spec.maxReplicaCount).toBe(2);
    expect(byKind(manifests, 'Deployment').map((d) => d.metadata.name)).not.toContain('ph-personahub-index');
  });

  it('the ConfigMap holds only configuration variables and the Secret only credentials', () => {
    const { manifests } = helmTemplate(helm, { values: 'secrets: {llmApiKey: sk-test}' });
    const cm = byKind(manifests, 'ConfigMap').find((m) => m.metadata.name === 'ph-personahub');
    expect(Object.keys(cm?.data ?? {}).every((k) => k.startsWith('PERSONAHUB_'))).toBe(true);
    expect(Object.keys(cm?.data ?? {})).not.toContain('PERSONAHUB_DATABASE_URL');
    const secret = byKind(manifests, 'Secret').find((m) => m.metadata.name === 'ph-personahub') as Manifest & { stringData: Record<string, string> };
    expect(Object.keys(secret.stringData).sort()).toEqual(['PERSONAHUB_DATABASE_URL', 'PERSONAHUB_LLM_API_KEY']);
  });

  it('refuses combinations the schema cannot express, with a readable message', () => {
    expect(() => helmTemplate(helm, { values: 'modelServer: {enabled: false}\nconfig: {llmBaseUrl: ""}' })).toThrow(/config.mode is llm, but there is no LLM endpoint/);
    expect(() => helmTemplate(helm, { values: 'secrets: {databaseUrl: null}' })).toThrow(/secrets.databaseUrl is empty and no secrets.existingSecret is named/);
  });

  it('Prometheus templates in the alerts are left to Prometheus', () => {
    const { manifests } = helmTemplate(helm);
    const rules = (byKind(manifests, 'PrometheusRule')[0] as Manifest & { spec: { groups: { rules: { annotations: Record<string, string> }[] }[] } }).spec.groups.flatMap((g) => g.rules);
    expect(rules.some((r) => r.annotations.summary?.includes('{{ $value | humanize }}'))).toBe(true);
    expect(rules.every((r) => r.annotations.summary?.includes('{{ $labels.'))).toBe(true);
  });
});

describe('generated from the code', () => {
  it('files/topology.json, config-keys.json, dashboard.json, values.schema.json and README.md are current', () => {
    const stale = syncChart({ check: true });
    expect(stale, `stale: run ${SYNC_COMMAND}`).toEqual([]);
  });

  it('a stage added to the topology appears in the rendered chart with no template edited', () => {
    const chart = join(tempDir('ph-chart-'), 'personahub');
    cpSync(CHART, chart, { recursive: true });
    const templatesBefore = spawnSync('sha256sum', ['-b', ...['stages.yaml', '_helpers.tpl'].map((f) => join(chart, 'templates', f))], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]);
    const topology = {
      events: { ...events, summary: { schema: 'persona.avsc', retentionMs: 86_400_000, doc: 'One-line summaries.' } },
      stageTable: { ...stageTable, summarize: { input: 'validated', outputs: ['summary'], doc: 'Summarise each persona in one line.' } },
    };
    syncChart({ chartDir: chart, topology });
    expect(JSON.parse(readFileSync(join(chart, 'files', 'topology.json'), 'utf8'))).toEqual(chartTopology(topology));
    const templatesAfter = spawnSync('sha256sum', ['-b', ...['stages.yaml', '_helpers.tpl'].map((f) => join(chart, 'templates', f))], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]);
    expect(templatesAfter).toEqual(templatesBefore);
    const { manifests } = helmTemplate(helm, { chart, values: 'stages: {summarize: {maxReplicas: 2}}' });
    const names = (kind: string) => byKind(manifests, kind).map((m) => m.metadata.name);
    expect(names('Deployment')).toContain('ph-personahub-summarize');
    expect(names('Service')).toContain('ph-personahub-summarize');
    expect(names('PodDisruptionBudget')).toContain('ph-personahub-summarize');
    const so = byKind(manifests, 'ScaledObject').find((m) => m.metadata.name === 'ph-personahub-summarize') as Manifest & { spec: { maxReplicaCount: number; triggers: { metadata: Record<string, string> }[] } };
    expect(so.spec.maxReplicaCount).toBe(2);
    expect(so.spec.triggers[0]?.metadata).toMatchObject({ topic: 'personahub.validated.v1', consumerGroup: 'personahub.summarize' });
    const test = byKind(manifests, 'Pod')[0] as Manifest & { spec: { containers: { env: { name: string; value: string }[] }[] } };
    expect(test.spec.containers[0]?.env.find((e) => e.name === 'STAGE_URLS')?.value).toContain('ph-personahub-summarize:9464/health/ready');
    // The repo's chart knows no such stage: the schema refuses overrides for it.
    expect(() => helmTemplate(helm, { values: 'stages: {summarize: {maxReplicas: 2}}' })).toThrow(/additional properties 'summarize' not allowed/);
  });
});
