import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The Dockerfile's promises that need no Docker engine to check: a base pinned by digest, the artefact built
 * by the script CI tests, a non-root user, a healthcheck, one entry point for every role; and a build context
 * that holds every folder the build compiles and nothing else. Building and starting the artefact is
 * test/integration/container-artefact.test.ts; hadolint runs there too (it is fetched once).
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
const buildConfig = JSON.parse(readFileSync(path.join(ROOT, 'scripts', 'tsconfig.build.json'), 'utf8')) as { include: string[] };
const dockerignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

describe('Dockerfile', () => {
  it('pins its one base image by digest, for every stage', () => {
    const arg = /^ARG NODE_IMAGE=(node:24[\w.-]*-slim@sha256:[0-9a-f]{64})$/m.exec(dockerfile);
    expect(arg, 'ARG NODE_IMAGE=node:24...-slim@sha256:<64 hex>').not.toBeNull();
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM \$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it('builds the artefact with the script CI tests, and ships only that', () => {
    expect(instructions).toContain('RUN scripts/build-artefact.sh /app');
    const runtime = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));
    expect(runtime.filter((l) => l.startsWith('COPY'))).toEqual(['COPY --from=build /app /app']);
    expect(runtime.filter((l) => l.startsWith('RUN'))).toEqual([]);
  });

  it('runs as a non-root numeric user, with a healthcheck and one entry point for every role', () => {
    const runtime = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));
    const user = runtime.find((l) => l.startsWith('USER '));
    expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/);
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK '))).toContain('CMD ["node", "/app/healthcheck.mjs"]');
    expect(runtime).toContain('ENTRYPOINT ["node", "/app/dist/cli/main.js"]');
  });
});

describe('.dockerignore', () => {
  it('is an allowlist holding every folder the build compiles', () => {
    expect(dockerignore[0]).toBe('*');
    const allowed = dockerignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    for (const dir of buildConfig.include.map((d) => d.replace(/^\.\.\//, ''))) expect(allowed, dir).toContain(dir);
    for (const file of ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json', 'scripts/build-artefact.sh', 'scripts/tsconfig.build.json', 'scripts/healthcheck.mjs']) {
      expect(allowed, file).toContain(file);
    }
  });

  it('compiles every source folder of the layout (a new one must be added to the build and the context)', () => {
    const layout = readFileSync(path.join(ROOT, 'test', 'unit', 'layout.test.ts'), 'utf8');
    const layers = [...layout.matchAll(/^\s{2}'?([a-z/]+)'?: \{ imports:/gm)].map((m) => (m[1] ?? '').split('/')[0] ?? '');
    expect(new Set(layers).size).toBeGreaterThan(5);
    // examples/ is a consumer of the product, run by the suite, not part of the image.
    const notShipped = new Set(['examples']);
    for (const layer of new Set(layers)) if (!notShipped.has(layer)) expect(buildConfig.include, layer).toContain(`../${layer}`);
  });
});
