import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, pipDownload, stampMatches, writeStamp } from '../stack/download.ts';
import { runTool } from '../stack/exec.ts';
import { BenchError, REPO_ROOT } from './harness.ts';

const REQUIREMENTS = join(REPO_ROOT, 'bench', 'requirements-bench.txt');

/** The wheel files bench/requirements-bench.txt pins (pip must leave exactly these). */
const WHEELS = [
  'datasketch-2.0.0-py3-none-any.whl',
  'numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
  'scipy-1.17.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
  'contourpy-1.3.3-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
  'cycler-0.12.1-py3-none-any.whl',
  'fonttools-4.68.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
  'kiwisolver-1.5.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
  'matplotlib-3.10.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
  'packaging-26.4-py3-none-any.whl',
  'pillow-13.0.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
  'pyparsing-3.3.3-py3-none-any.whl',
  'python_dateutil-4.0.0-py3-none-any.whl',
  'tzdata-2026.6-py2.py3-none-any.whl',
] as const;

/**
 * Tags that make pip choose the pinned CPython 3.11 wheels, whatever interpreter runs pip. pip 23 does not widen a
 * --platform to the older manylinux tags it implies, so the manylinux2014 wheels (matplotlib, kiwisolver) are named too.
 */
const PIP_TARGET = ['--platform', 'manylinux_2_28_x86_64', '--platform', 'manylinux2014_x86_64', '--python-version', '3.11', '--implementation', 'cp', '--abi', 'cp311'];

const errors = { error: (f: { message: string; cause?: unknown }) => new BenchError('PH_BENCH_PYTHON', f.message, { cause: f.cause }) };

/**
 * A Python 3.11 interpreter with the pinned bench packages, in `<cacheDir>/bench-venv`. The wheels go through
 * the stack's hash-checked `pip download` into `<cacheDir>/wheels`, then are installed with no index, so nothing
 * unpinned is ever fetched. A stamp holding the requirements' hash makes a second run cost nothing, and a
 * re-pin rebuild the venv.
 */
export async function benchPython(cacheDir: string, python = 'python3'): Promise<string> {
  const venv = join(cacheDir, 'bench-venv');
  const venvPython = join(venv, 'bin', 'python');
  const stamp = join(venv, '.personahub-stamp');
  const expected = createHash('sha256').update(await readFile(REQUIREMENTS)).digest('hex');
  if ((await stampMatches(stamp, expected)) && (await exists(venvPython))) return venvPython;
  const { stdout } = await runTool(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { ...errors, what: 'checking the Python version' });
  if (stdout.trim() !== '3.11') {
    throw new BenchError('PH_BENCH_PYTHON', `the bench's wheels are pinned for CPython 3.11, but ${python} is ${stdout.trim()}; pass a 3.11 interpreter with --python`);
  }
  const wheels = join(cacheDir, 'wheels');
  await pipDownload({ requirementsFile: REQUIREMENTS, dest: wheels, wheels: WHEELS, what: 'downloading the bench wheels (datasketch, matplotlib)', pipTarget: PIP_TARGET, errors });
  await runTool(python, ['-m', 'venv', '--clear', venv], { ...errors, what: 'creating the bench venv' });
  await runTool(venvPython, ['-m', 'pip', 'install', '--no-index', '--no-deps', '--disable-pip-version-check', '--no-input', ...WHEELS.map((w) => join(wheels, w))], { ...errors, what: 'installing the bench wheels' });
  await writeStamp(stamp, expected);
  return venvPython;
}

/** Runs one of the bench's Python scripts (a plot) with `args`, `input` as JSON on its stdin; fails with its stderr's tail. */
export async function runPythonScript(python: string, script: string, args: readonly string[], input: unknown): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new BenchError('PH_BENCH_PLOT', `${script} exited with ${code}: ${err.slice(-1000)}`))));
    child.stdin.end(JSON.stringify(input));
  });
}
