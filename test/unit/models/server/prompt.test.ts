import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../../../core/chat.ts';
import { renderFewShotPrompt, toChatHistory } from '../../../../models/server/prompt.ts';

describe('renderFewShotPrompt', () => {
  it('renders system text, examples as Input/Output pairs, then the open question', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Write one persona as JSON.' },
      { role: 'user', content: 'a nurse in Manila' },
      { role: 'assistant', content: '{"name":"Maria"}' },
      { role: 'user', content: 'a farmer in Kenya ' },
      { role: 'assistant', content: '{"name":"Wanjiru"}' },
      { role: 'user', content: 'a chef in Lima' },
    ];
    expect(renderFewShotPrompt(messages)).toBe([
      'Write one persona as JSON.',
      '',
      'Input: a nurse in Manila',
      'Output:',
      '{"name":"Maria"}',
      '',
      'Input: a farmer in Kenya',
      'Output:',
      '{"name":"Wanjiru"}',
      '',
      'Input: a chef in Lima',
      'Output:',
      '',
    ].join('\n'));
  });

  it('works without system text or examples', () => {
    expect(renderFewShotPrompt([{ role: 'user', content: 'hello' }])).toBe('Input: hello\nOutput:\n');
  });

  it('keeps the same prefix when only the last message changes, so the KV cache can reuse it', () => {
    const base: ChatMessage[] = [{ role: 'system', content: 'S' }, { role: 'user', content: 'u1' }, { role: 'assistant', content: 'a1' }];
    const one = renderFewShotPrompt([...base, { role: 'user', content: 'first' }]);
    const two = renderFewShotPrompt([...base, { role: 'user', content: 'second' }]);
    const shared = renderFewShotPrompt([...base, { role: 'user', content: '' }]).replace(/\nOutput:\n$/, '');
    expect(one.startsWith(shared)).toBe(true);
    expect(two.startsWith(shared)).toBe(true);
  });

  it('requires the last message to come from the user', () => {
    expect(() => renderFewShotPrompt([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }])).toThrow(/role user/);
    expect(() => renderFewShotPrompt([])).toThrow(/role user/);
  });
});

describe('toChatHistory', () => {
  it('maps roles to node-llama-cpp items and opens the model turn', () => {
    expect(toChatHistory([
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant', content: 'a' },
      { role: 'user', content: 'v' },
    ])).toEqual([
      { type: 'system', text: 's' },
      { type: 'user', text: 'u' },
      { type: 'model', response: ['a'] },
      { type: 'user', text: 'v' },
      { type: 'model', response: [] },
    ]);
  });
});
