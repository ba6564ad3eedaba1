import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../core/errors.ts';
import { checksumMismatchMessage, exists, sha256File, stampMatches, verifyChecksum, writeStamp } from '../../../stack/download.ts';

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

async function sha256OfText(text: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
}
