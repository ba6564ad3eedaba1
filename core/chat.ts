/**
 * One chat message in the OpenAI chat-completions shape. The persona prompts build them, the LLM
 * client sends them and the local model server receives them: one definition, so the three agree.
 */
export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}
