import { loadConfig } from '../../../config/index.ts';
import { fetchModels } from '../../../models/weights/fetch.ts';
import { buildLlmServer } from '../../../models/server/server.ts';
import { createLogger } from '../../../core/logger.ts';
import { describeOpenAiCompat } from '../../helpers/openai-compat-suite.ts';
import { TEST_LLM, TEST_LLM_ENV } from './test-llm.ts';

// The real local model server passes the same OpenAI-compatibility contract as the fixture.
describeOpenAiCompat(`local model server (${TEST_LLM} + all-MiniLM-L6-v2)`, async () => {
  const config = loadConfig({ ...process.env, ...TEST_LLM_ENV });
  const logger = createLogger({ level: 'warn', name: 'compat' });
  const models = await fetchModels({ modelsDir: config.modelsDir, cacheDir: config.cacheDir, llm: TEST_LLM, logger });
  const server = await buildLlmServer({
    llmModelPath: models.llm?.path ?? '', llmModelName: config.llmModel, embeddingModelPath: models.embedding.path, embeddingModelName: config.embeddingModel,
    contextSize: 2048, maxQueue: 8, requestTimeoutMs: 120_000, maxPromptTokens: 1536, maxTokensCap: 512, logger,
  });
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return { baseURL: `${address}/v1`, model: config.llmModel, embeddingModel: config.embeddingModel, close: () => server.close() };
});
