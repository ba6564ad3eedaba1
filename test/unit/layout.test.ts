import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers, checked on every source file: each folder may import only the folders listed for it
 * (its own files always), so arrows point down. `typeOnly` folders may be imported for types alone
 * (`import type`), which leave nothing behind at run time. Tests and benchmarks sit outside the
 * layers: they may reach anything, including kafkajs, to check the product from outside.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');

interface Layer {
  imports: readonly string[];
  typeOnly?: readonly string[];
  /** npm packages this layer may import, beyond Node's built-ins and the packages every layer may use. */
  packages?: readonly string[];
}

const layers: Record<string, Layer> = {
  core: { imports: [], packages: ['pino'] },
  config: { imports: ['core'], packages: ['zod'] },
  schemas: { imports: [] },
  topology: { imports: ['schemas'] },
  store: { imports: ['core', 'config', 'schemas'], packages: ['pg', '@electric-sql/pglite'] },
  stack: { imports: ['core'], packages: ['pg'] },
  persona: { imports: ['core', 'schemas'], packages: ['yaml'] },
  llm: { imports: ['core'], packages: ['openai', 'zod'] },
  runtime: { imports: ['core', 'config', 'schemas', 'topology', 'store', 'llm'], packages: ['kafkajs', '@kafkajs/confluent-schema-registry', 'avsc', 'prom-client'] },
  processors: { imports: ['core', 'schemas', 'topology', 'persona'], typeOnly: ['runtime', 'llm', 'store'], packages: ['zod'] },
  analytics: { imports: ['core', 'schemas', 'topology', 'persona'], typeOnly: ['runtime', 'store', 'llm'] },
  // Corpus files (export, import): pure file formats over whole personas; the store reaches them through narrow interfaces.
  corpus: { imports: ['core', 'schemas'], packages: ['hyparquet', 'hyparquet-writer', 'apache-arrow'] },
  // The HTTP API: a top layer like cli/ (which wires it). It runs the preview through the processors and reaches
  // Kafka only through runtime/'s ports (the seed source, the observer), metrics through runtime/api-metrics.ts.
  api: { imports: ['core', 'config', 'schemas', 'topology', 'store', 'persona', 'llm', 'processors', 'runtime', 'analytics'], packages: ['fastify', 'typebox', '@fastify/type-provider-typebox', '@fastify/swagger', '@fastify/swagger-ui', '@fastify/rate-limit', 'esbuild'] },
  // The web console: browser code, bundled by api/console.ts. It reaches the API over HTTP only, and takes the API's
  // schemas for their types (what the routes answer), never their code.
  console: { imports: [], typeOnly: ['api'], packages: ['chart.js', 'cytoscape', 'typebox'] },
  'models/server': { imports: ['core'], packages: ['fastify', 'node-llama-cpp', 'prom-client', 'zod'] },
  'models/weights': { imports: ['core', 'stack'] },
  cli: { imports: ['core', 'config', 'schemas', 'topology', 'store', 'stack', 'persona', 'llm', 'processors', 'runtime', 'analytics', 'corpus', 'api', 'models/server', 'models/weights'], packages: ['commander', 'cli-progress'] },
  // Examples are services outside the pipeline, on top of everything. They may use kafkajs and the registry client
  // directly (the exception to "kafkajs in runtime/ only"), because an outside service owns its consumer, its
  // transactions and its own topic; they still take the patched kafkajs client and the Serde from runtime/.
  examples: { imports: ['core', 'config', 'schemas', 'topology', 'llm', 'runtime'], packages: ['kafkajs', '@kafkajs/confluent-schema-registry', 'zod'] },
};

/** Packages any layer may use: none today beyond Node's built-ins. */
const EVERYWHERE: readonly string[] = [];

function layerOf(root: string, file: string): string | undefined {
  const rel = relative(root, file).split(sep).join('/');
  return Object.keys(layers).filter((l) => rel.startsWith(`${l}/`)).sort((a, b) => b.length - a.length)[0];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Static imports, re-exports and dynamic `import()` calls, with whether they carry types alone. */
export function importsOf(source: string): Import[] {
  const found: Import[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\sfrom\s+'([^']+)'/gm)) found.push({ spec: m[3] ?? '', typeOnly: m[2] !== undefined });
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push({ spec: m[1] ?? '', typeOnly: false });
  for (const m of source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push({ spec: m[1] ?? '', typeOnly: false });
  return found;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
}

function violations(root = ROOT): string[] {
  const problems: string[] = [];
  for (const layer of Object.keys(layers)) {
    const rule = layers[layer] as Layer;
    let files: string[];
    try {
      files = sourceFiles(join(root, layer));
    } catch {
      continue; // a layer this tree does not have
    }
    for (const file of files) {
      const rel = relative(root, file);
      for (const imp of importsOf(readFileSync(file, 'utf8'))) {
        if (imp.spec.startsWith('.')) {
          const target = layerOf(root, resolve(file, '..', imp.spec));
          if (target === undefined || target === layer) continue;
          if (rule.imports.includes(target)) continue;
          if (imp.typeOnly && rule.typeOnly?.includes(target)) continue;
          problems.push(`${rel} imports ${imp.spec} (${target}${rule.typeOnly?.includes(target) ? ', allowed for types only' : ''})`);
        } else if (!imp.spec.startsWith('node:')) {
          const pkg = packageName(imp.spec);
          if (!rule.packages?.includes(pkg) && !EVERYWHERE.includes(pkg)) problems.push(`${rel} imports package ${pkg}`);
        }
      }
    }
  }
  return problems;
}

describe('layout', () => {
  it('every import points down the layers, and packages stay in their layer (kafkajs in runtime/ only)', () => {
    expect(violations()).toEqual([]);
  });

  it('every source folder has a layer rule', () => {
    const top = readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.') && !['node_modules', 'test', 'bench', 'docs', 'helm', 'data', 'scripts', 'models'].includes(e.name)).map((e) => e.name);
    const withTs = top.filter((d) => sourceFiles(join(ROOT, d)).length > 0);
    expect(withTs.filter((d) => !(d in layers))).toEqual([]);
    expect(readdirSync(join(ROOT, 'models'), { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.ts'))).toEqual([]);
  });

  it('refuses each kind of upward arrow in a tree built to break the rules', () => {
    const root = mkdtempSync(join(tmpdir(), 'ph-layout-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(join(root, path, '..'), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      write('core/errors.ts', "import { x } from '../config/index.ts';\n");
      write('persona/a.ts', "import { Kafka } from 'kafkajs';\nimport { s } from '../store/index.ts';\nimport type { L } from '../llm/client.ts';\n");
      write('processors/draft/index.ts', "import { StageRunner } from '../../runtime/runner.ts';\nimport type { Processor } from '../../runtime/processor.ts';\n");
      write('store/index.ts', "import type { Output } from '../runtime/processor.ts';\n");
      write('cli/main.ts', "import { Kafka } from 'kafkajs';\n");
      expect(violations(root).sort()).toEqual([
        'cli/main.ts imports package kafkajs',
        'core/errors.ts imports ../config/index.ts (config)',
        'persona/a.ts imports ../llm/client.ts (llm)',
        'persona/a.ts imports ../store/index.ts (store)',
        'persona/a.ts imports package kafkajs',
        'processors/draft/index.ts imports ../../runtime/runner.ts (runtime, allowed for types only)',
        'store/index.ts imports ../runtime/processor.ts (runtime)',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the checker sees what it must refuse', () => {
    expect(importsOf("import type { A } from '../runtime/processor.ts';")).toEqual([{ spec: '../runtime/processor.ts', typeOnly: true }]);
    expect(importsOf("import { Kafka, type Admin } from 'kafkajs';")).toEqual([{ spec: 'kafkajs', typeOnly: false }]);
    expect(importsOf("export { x } from './y.ts';\nconst m = await import('../stack/index.ts');")).toEqual([{ spec: './y.ts', typeOnly: false }, { spec: '../stack/index.ts', typeOnly: false }]);
    expect(importsOf("import {\n  a,\n  b,\n} from '../core/errors.ts';")).toEqual([{ spec: '../core/errors.ts', typeOnly: false }]);
  });
});
