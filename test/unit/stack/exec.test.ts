import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../core/errors.ts';
import { lastLines, runTool, type ToolFailure, withEnv } from '../../../stack/exec.ts';

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

  it('hands each stdout line to onStdoutLine as it comes, the last one even without a newline', async () => {
    const lines: string[] = [];
    const { stdout } = await runTool('sh', ['-c', 'printf "one\\ntwo\\n"; sleep 0.05; printf "thr"; sleep 0.05; printf "ee\\nfour"'], {
      failCode: 'PH_STACK_TEST',
      what: 'counting',
      onStdoutLine: (l) => lines.push(l),
    });
    expect(lines).toEqual(['one', 'two', 'three', 'four']);
    expect(stdout).toBe('one\ntwo\nthree\nfour');
  });

  it('lets the caller raise its own error, told whether the tool was missing', async () => {
    const failures: ToolFailure[] = [];
    const error = (f: ToolFailure): ModelError => {
      failures.push(f);
      return new ModelError(f.missing ? 'PH_MODEL_PIP_MISSING' : 'PH_MODEL_DOWNLOAD', `${f.message}\nThen retry.`, { transient: !f.missing });
    };
    await expect(runTool('sh', ['-c', 'echo "no network" >&2; exit 2'], { what: 'downloading', error })).rejects.toMatchObject({
      code: 'PH_MODEL_DOWNLOAD',
      transient: true,
      message: expect.stringMatching(/^downloading: .*exited with code 2\.\n--- last output ---\nno network\nThen retry\.$/s),
    });
    await expect(runTool('personahub-no-such-tool', [], { what: 'checking', installHint: 'Install it.', error })).rejects.toMatchObject({
      code: 'PH_MODEL_PIP_MISSING',
      message: 'checking: `personahub-no-such-tool` was not found on PATH. Install it.\nThen retry.',
    });
    expect(failures.map((f) => f.missing)).toEqual([false, true]);
    expect(failures[1]?.cause).toMatchObject({ code: 'ENOENT' });
  });
});
