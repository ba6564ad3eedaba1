import { describe, expect, it } from 'vitest';
import { describeFound, parseJavaMajor, parseReleaseFile } from '../../../stack/java.ts';

describe('java versions', () => {
  it.each([
    ['17.0.15', 17],
    ['25.0.2', 25],
    ['21', 21],
    ['1.8.0_402', 8],
    ['11.0.2+9', 11],
  ])('%s is Java %i', (v, major) => {
    expect(parseJavaMajor(v)).toBe(major);
  });

  it('rejects what is not a version', () => {
    expect(parseJavaMajor('openjdk')).toBeNull();
  });

  it('reads JAVA_VERSION wherever it sits in a release file', () => {
    const temurin = 'IMPLEMENTOR="Eclipse Adoptium"\nIMPLEMENTOR_VERSION="Temurin-25.0.3+9"\nJAVA_RUNTIME_VERSION="25.0.3+9-LTS"\nJAVA_VERSION="25.0.3"\nJAVA_VERSION_DATE="2026-04-21"\n';
    expect(parseReleaseFile(temurin)).toBe('25.0.3');
    expect(parseReleaseFile('IMPLEMENTOR="x"\n')).toBeNull();
  });

  it('says what was found, once per installation', () => {
    const j17 = { bin: '/j17/bin/java', home: '/j17', major: 17, version: '17.0.15', source: 'java on PATH' };
    expect(describeFound([j17, { ...j17, source: '/usr/lib/jvm' }])).toBe('Java 17.0.15 at /j17 (java on PATH)');
    expect(describeFound([])).toMatch(/no java at all/);
  });
});
