import { join } from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers.ts';

/**
 * Offline validation of the custom resources the chart renders (KEDA, prometheus-operator). The models
 * of @kubernetes-models/* check types and required fields (`validate()`), but accept any unknown key,
 * so a misspelled `maxReplicaCout` or `lagTreshold` would pass them and be dropped silently by the API
 * server. This module adds the missing check: every key of the object must be a property the model's
 * own type declares (read with the TypeScript compiler from the package's .d.ts files), and the free-form
 * maps KEDA leaves as `Record<string, string>` (a trigger's metadata, auth parameters) are checked
 * against the parameters the Kafka scaler knows.
 */

interface KindModel {
  module: string;
  className: string;
  iface: string;
}

export const CRD_MODELS: Record<string, KindModel> = {
  'keda.sh/v1alpha1/ScaledObject': { module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', className: 'ScaledObject', iface: 'IScaledObject' },
  'keda.sh/v1alpha1/TriggerAuthentication': { module: '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication', className: 'TriggerAuthentication', iface: 'ITriggerAuthentication' },
  'monitoring.coreos.com/v1/ServiceMonitor': { module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', className: 'ServiceMonitor', iface: 'IServiceMonitor' },
  'monitoring.coreos.com/v1/PrometheusRule': { module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', className: 'PrometheusRule', iface: 'IPrometheusRule' },
};

/** The Kafka scaler's trigger metadata (KEDA 2.x docs, "Apache Kafka" scaler). */
export const KAFKA_TRIGGER_METADATA = new Set([
  'bootstrapServers', 'consumerGroup', 'topic', 'lagThreshold', 'activationLagThreshold', 'offsetResetPolicy',
  'allowIdleConsumers', 'excludePersistentLag', 'scaleToZeroOnInvalidOffset', 'limitToPartitionsWithLag',
  'ensureEvenDistributionOfPartitions', 'partitionLimitation', 'version', 'sasl', 'tls', 'unsafeSsl',
  'bootstrapServersFromEnv', 'consumerGroupFromEnv', 'topicFromEnv',
]);
/** The Kafka scaler's authentication parameters (TriggerAuthentication secretTargetRef[].parameter). */
export const KAFKA_AUTH_PARAMETERS = new Set(['sasl', 'username', 'password', 'tls', 'ca', 'cert', 'key', 'keyPassword', 'oauthTokenEndpointUri', 'scopes', 'oauthExtensions', 'realm', 'kerberosConfig', 'serviceName', 'keytab']);

const apiKey = (m: { apiVersion?: unknown; kind?: unknown }) => `${String(m.apiVersion)}/${String(m.kind)}`;

export function isCustomResource(m: { apiVersion?: unknown; kind?: unknown }): boolean {
  return apiKey(m) in CRD_MODELS;
}

/** Types of each model interface, from one TypeScript program over the packages' declarations. */
class ModelTypes {
  private readonly checker: ts.TypeChecker;
  private readonly types = new Map<string, ts.Type>();

  constructor() {
    const virtual = join(ROOT, 'test', 'chart', '__crd_models__.ts');
    const source = Object.entries(CRD_MODELS).map(([key, m], i) => `import type { ${m.iface} as T${i} } from '${m.module}';\nexport type K${i} = T${i}; // ${key}`).join('\n');
    const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2023, strict: true, noEmit: true, skipLibCheck: true, types: [] };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (file, lang, ...rest) => (file === virtual ? ts.createSourceFile(file, source, lang) : getSourceFile(file, lang, ...rest));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (file) => file === virtual || fileExists(file);
    const program = ts.createProgram([virtual], options, host);
    this.checker = program.getTypeChecker();
    const file = program.getSourceFile(virtual);
    if (!file) throw new Error('crd-check: the virtual source did not load');
    const unresolved = ts.getPreEmitDiagnostics(program, file).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    if (unresolved.length > 0) throw new Error(`crd-check: the model packages' types do not load (npm install?): ${unresolved.join('; ')}`);
    Object.keys(CRD_MODELS).forEach((key, i) => {
      const alias = file.statements.find((s): s is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(s) && s.name.text === `K${i}`);
      if (!alias) throw new Error(`crd-check: no alias for ${key}`);
      this.types.set(key, this.checker.getTypeAtLocation(alias.name));
    });
  }

  typeOf(key: string): ts.Type {
    const t = this.types.get(key);
    if (!t) throw new Error(`crd-check: no model for ${key}`);
    return t;
  }

  /** Unknown keys of `value` against `type`, as JSON paths. */
  unknownKeys(value: unknown, type: ts.Type, path: string): string[] {
    const c = this.checker;
    if (value === null || typeof value !== 'object') return [];
    const members = (type.isUnion() ? type.types : [type]).filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
    if (Array.isArray(value)) {
      const element = members.map((t) => (c.isArrayType(t) ? c.getTypeArguments(t as ts.TypeReference)[0] : undefined)).find((t) => t !== undefined);
      return element ? value.flatMap((v, i) => this.unknownKeys(v, element, `${path}[${i}]`)) : [];
    }
    const objects = members.filter((t) => t.flags & ts.TypeFlags.Object && !c.isArrayType(t));
    if (objects.length === 0) return [];
    const indexed = objects.map((t) => c.getIndexInfoOfType(t, ts.IndexKind.String)).find((i) => i !== undefined);
    const problems: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      const prop = objects.map((t) => t.getProperty(k)).find((p) => p !== undefined);
      if (prop) problems.push(...this.unknownKeys(v, c.getTypeOfSymbol(prop), `${path}.${k}`));
      else if (indexed) problems.push(...this.unknownKeys(v, indexed.type, `${path}.${k}`));
      else problems.push(`${path}.${k}`);
    }
    return problems;
  }
}

let modelTypes: ModelTypes | undefined;

/** Problems of one custom resource: the model's validation errors, unknown keys, unknown scaler parameters. */
export async function checkCustomResource(m: Record<string, unknown>): Promise<string[]> {
  const key = apiKey(m);
  const model = CRD_MODELS[key];
  if (!model) return [`${key}: no model to check it against`];
  const name = `${String(m.kind)} ${String((m.metadata as { name?: string } | undefined)?.name)}`;
  const problems: string[] = [];
  const mod = (await import(model.module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[model.className];
  if (!Model) throw new Error(`crd-check: ${model.module} exports no ${model.className}`);
  try {
    new Model(m).validate();
  } catch (error) {
    problems.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  modelTypes ??= new ModelTypes();
  problems.push(...modelTypes.unknownKeys(m, modelTypes.typeOf(key), '').map((p) => `${name}: unknown field ${p.slice(1)} (not in the ${model.className} model)`));
  problems.push(...scalerParameters(m).map((p) => `${name}: ${p}`));
  return problems;
}

function scalerParameters(m: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const spec = (m.spec ?? {}) as Record<string, unknown>;
  if (m.kind === 'ScaledObject') {
    for (const [i, t] of ((spec.triggers ?? []) as { type?: string; metadata?: Record<string, unknown> }[]).entries()) {
      if (t.type !== 'kafka') continue;
      for (const [k, v] of Object.entries(t.metadata ?? {})) {
        if (!KAFKA_TRIGGER_METADATA.has(k)) problems.push(`unknown kafka trigger parameter spec.triggers[${i}].metadata.${k}`);
        if (typeof v !== 'string') problems.push(`spec.triggers[${i}].metadata.${k} must be a string (KEDA reads metadata as strings), got ${typeof v}`);
      }
    }
  }
  if (m.kind === 'TriggerAuthentication') {
    for (const [i, r] of ((spec.secretTargetRef ?? []) as { parameter?: string }[]).entries()) {
      if (!KAFKA_AUTH_PARAMETERS.has(r.parameter ?? '')) problems.push(`unknown kafka auth parameter spec.secretTargetRef[${i}].parameter=${String(r.parameter)}`);
    }
  }
  return problems;
}
