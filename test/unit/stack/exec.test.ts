import { describe, expect, it } from 'vitest';
import { lastLines, runTool, withEnv } from '../../../stack/exec.ts';

describe('running tools', () => {
  it('adds variables through env without dropping the inherited environment', () => {
    expect(withEnv(undefined, 'java', ['-version'])).toEqual({ command: 'java', args: ['-version'] });
    expect(withEnv({ A: '1', B: 'x y' }, 'java', ['-jar', 'a.jar'])).toEqual({ command: 'env', args: ['--', 'A=1', 'B=x y', 'java', '-jar', 'a.jar'] });
    expect(() => withEnv({ 'BAD NAME': '1' }, 'x', [])).toThrow(/invalid environment variable name/);
  });

  it('passes the variables to the child', async () => {
    const { stdout } = await runTool('sh', ['-c', 'printf "%s" "$PH_TEST_VALUE"'], { env: { PH_TEST_VALUE: 'it works' }, failCode: 'PH_STACK_TEST', what: 'echo' });
    expect(stdout).toBe('it works');
  });

  it('keeps the last lines without colour codes', () => {
    expect(lastLines('a\nb\n\u001b[1;31m[ERROR]\u001b[0m c\n\n', 2)).toBe('b\n[ERROR] c');
  });

  it('fails with the given code and the tail of the output', async () => {
    await expect(runTool('sh', ['-c', 'echo step one; echo "boom: disk full" >&2; exit 4'], { failCode: 'PH_STACK_DOWNLOAD', what: 'downloading things' })).rejects.toMatchObject({
      code: 'PH_STACK_DOWNLOAD',
      message: expect.stringMatching(/^downloading things: .*exited with code 4\.\n--- last output ---\nstep one\nboom: disk full$/s),
    });
  });

  it('says how to get a tool that is missing', async () => {
    await expect(runTool('personahub-no-such-tool', [], { failCode: 'PH_STACK_DOWNLOAD', what: 'fetching', installHint: 'Install it.' })).rejects.toMatchObject({
      code: 'PH_STACK_TOOL',
      message: 'fetching: `personahub-no-such-tool` was not found on PATH. Install it.',
    });
  });

  it('kills a tool that runs past its timeout', async () => {
    await expect(runTool('sleep', ['10'], { failCode: 'PH_STACK_DOWNLOAD', what: 'waiting', timeoutMs: 200 })).rejects.toMatchObject({
      message: expect.stringContaining('timed out after 200 ms'),
    });
  });
});
