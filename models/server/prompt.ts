/**
 * Chat messages → model input, for the two kinds of model the server can be given.
 *
 * A model whose GGUF carries a chat template (an instruct model) gets the messages as a chat
 * history and node-llama-cpp renders them with that template (both local Qwen2.5-Coder-Instruct
 * models). A base model (any base GGUF given through PERSONAHUB_LLM_MODEL_PATH) has no template
 * and was never trained on turns, so the messages become a few-shot transcript it can continue:
 * the system text, each user/assistant pair as an `Input:`/`Output:` example, then the last user
 * message and an open `Output:`.
 */
import type { ChatHistoryItem } from 'node-llama-cpp';

import type { ChatMessage } from '../../core/chat.ts';

export const FEW_SHOT_INPUT_LABEL = 'Input:';
export const FEW_SHOT_OUTPUT_LABEL = 'Output:';

/**
 * Where a base model, having answered, would start the next example. Used as stop triggers so
 * free-text answers end with the answer instead of inventing more turns.
 */
export const FEW_SHOT_STOP_TRIGGERS: readonly string[] = [`\n${FEW_SHOT_INPUT_LABEL}`];

/**
 * Renders messages as a few-shot completion prompt ending in an open `Output:` line. The output
 * starts on its own line so that the model's first token is the answer's first token (`{` for
 * JSON) rather than a space merged into it, the same way the examples read.
 *
 * The last message must come from the user: that is the input the answer is for.
 */
export function renderFewShotPrompt(messages: readonly ChatMessage[]): string {
  const last = messages.at(-1);
  if (last === undefined || last.role !== 'user') {
    throw new RangeError('the last message must have role user');
  }
  const system: string[] = [];
  const turns: string[] = [];
  for (const message of messages) {
    const text = message.content.trim();
    if (message.role === 'system') system.push(text);
    else if (message.role === 'user') turns.push(`${FEW_SHOT_INPUT_LABEL} ${text}`);
    // An answer closes its example with a blank line, separating it from the next one.
    else turns.push(`${FEW_SHOT_OUTPUT_LABEL}\n${text}\n`);
  }
  const header = system.length > 0 ? system.join('\n\n') + '\n\n' : '';
  return header + turns.join('\n') + `\n${FEW_SHOT_OUTPUT_LABEL}\n`;
}

/**
 * Messages as node-llama-cpp chat history, ending in the empty model turn to be generated (the
 * shape `LlamaChat.generateResponse` continues).
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
    if (message.role === 'system') return { type: 'system', text: message.content };
    if (message.role === 'user') return { type: 'user', text: message.content };
    return { type: 'model', response: [message.content] };
  });
  history.push({ type: 'model', response: [] });
  return history;
}
