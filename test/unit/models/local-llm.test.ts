/**
 * Choosing the local text model: PERSONAHUB_LOCAL_LLM, the served name that follows it, and what `models fetch`
 * and `stack up` make of the choice.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { modelFetchOptions, stackOptions } from '../../../cli/wiring.ts';
import { createLogger } from '../../../core/logger.ts';

const logger = createLogger({ level: 'silent', name: 'local-llm-test' });

describe('PERSONAHUB_LOCAL_LLM', () => {
  it('defaults to Qwen2.5-Coder-1.5B-Instruct, served under its id', () => {
    const config = loadConfig({});
    expect(config.localLlm).toBe('qwen2.5-coder-1.5b');
    expect(config.llmModel).toBe('qwen2.5-coder-1.5b');
  });

  it('selects the small model, and the served name follows it', () => {
    const config = loadConfig({ PERSONAHUB_LOCAL_LLM: 'qwen2.5-coder-0.5b' });
    expect(config.localLlm).toBe('qwen2.5-coder-0.5b');
    expect(config.llmModel).toBe('qwen2.5-coder-0.5b');
  });

  it('leaves the name to PERSONAHUB_LLM_MODEL when that is set', () => {
    expect(loadConfig({ PERSONAHUB_LOCAL_LLM: 'qwen2.5-coder-0.5b', PERSONAHUB_LLM_MODEL: 'gpt-4o-mini' }).llmModel).toBe('gpt-4o-mini');
  });

  it('refuses another model naming the key and the allowed values, once', () => {
    for (const value of ['gemma-3-270m', '', 'Qwen2.5-Coder-1.5B']) {
      let message = '';
      try {
        loadConfig({ PERSONAHUB_LOCAL_LLM: value });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain(`PERSONAHUB_LOCAL_LLM=${JSON.stringify(value)}: allowed values are "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"`);
      // The bad value is reported under its own key only, not again as a bad served name.
      expect(message).not.toContain('PERSONAHUB_LLM_MODEL=');
    }
  });
});

describe('what the choice fetches and serves', () => {
  it('fetches the selected model, or none when a GGUF of one\'s own replaces it', () => {
    expect(modelFetchOptions(loadConfig({}), logger).llm).toBe('qwen2.5-coder-1.5b');
    expect(modelFetchOptions(loadConfig({ PERSONAHUB_LOCAL_LLM: 'qwen2.5-coder-0.5b' }), logger).llm).toBe('qwen2.5-coder-0.5b');
    expect(modelFetchOptions(loadConfig({ PERSONAHUB_LLM_MODEL_PATH: '/models/other.gguf' }), logger).llm).toBeNull();
  });

  it('takes the stack\'s model server as ready only when it serves the configured model', () => {
    const llm = (env: Record<string, string>) => stackOptions(loadConfig(env), logger).extraServices?.find((s) => s.name === 'llm');
    expect(llm({})?.ready.http).toBe('http://127.0.0.1:18434/v1/models/qwen2.5-coder-1.5b');
    expect(llm({ PERSONAHUB_LOCAL_LLM: 'qwen2.5-coder-0.5b' })?.ready.http).toBe('http://127.0.0.1:18434/v1/models/qwen2.5-coder-0.5b');
    expect(llm({ PERSONAHUB_LLM_MODEL: 'my model' })?.ready.http).toBe('http://127.0.0.1:18434/v1/models/my%20model');
  });
});
