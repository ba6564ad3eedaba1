import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersonaHubError } from '../../core/errors.ts';
import { exists, pipDownload, stampMatches, verifyChecksum, writeStamp } from '../../stack/download.ts';
import { runTool } from '../../stack/exec.ts';

const REQUIREMENTS = join(import.meta.dirname, 'requirements-pyarrow.txt');
const WHEEL = 'pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl';
const WHEEL_SHA256 = '39cb0f2418282c24bea6ceda77b03e5a8f0a5766b63a8bf194d4e2a2c423548c';
/** Tags that make pip choose the pinned CPython 3.11 wheel, whatever interpreter runs pip. */
const PIP_TARGET = ['--platform', 'manylinux_2_28_x86_64', '--python-version', '3.11', '--implementation', 'cp', '--abi', 'cp311'];

const errors = { error: (f: { message: string; cause?: unknown }) => new PersonaHubError('PH_TEST_PYARROW', f.message, { cause: f.cause }) };

/**
 * A Python 3.11 with the pinned pyarrow, in `<cacheDir>/pyarrow-venv`: the wheel through the stack's
 * hash-checked `pip download` into `<cacheDir>/wheels`, installed with no index, so nothing unpinned is
 * fetched. A stamp holding the requirements' hash makes later runs free and a re-pin rebuild the venv.
 */
export async function pyarrowPython(cacheDir: string, python = 'python3'): Promise<string> {
  const venv = join(cacheDir, 'pyarrow-venv');
  const venvPython = join(venv, 'bin', 'python');
  const stamp = join(venv, '.personahub-stamp');
  const expected = createHash('sha256').update(await readFile(REQUIREMENTS)).digest('hex');
  if ((await stampMatches(stamp, expected)) && (await exists(venvPython))) return venvPython;
  const { stdout } = await runTool(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { ...errors, what: 'checking the Python version' });
  if (stdout.trim() !== '3.11') throw new PersonaHubError('PH_TEST_PYARROW', `pyarrow is pinned for CPython 3.11, but ${python} is ${stdout.trim()}`);
  const wheels = join(cacheDir, 'wheels');
  await pipDownload({ requirementsFile: REQUIREMENTS, dest: wheels, wheels: [WHEEL], what: 'downloading pyarrow', pipTarget: PIP_TARGET, errors });
  await verifyChecksum(join(wheels, WHEEL), WHEEL_SHA256);
  await runTool(python, ['-m', 'venv', '--clear', venv], { ...errors, what: 'creating the pyarrow venv' });
  await runTool(venvPython, ['-m', 'pip', 'install', '--no-index', '--no-deps', '--disable-pip-version-check', '--no-input', join(wheels, WHEEL)], { ...errors, what: 'installing pyarrow' });
  await writeStamp(stamp, expected);
  return venvPython;
}
