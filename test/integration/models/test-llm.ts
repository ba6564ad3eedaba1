/**
 * The local text model the suite's real-model tests use (test/integration/models/*, and the fetch in
 * test/global-setup.ts): the small Qwen2.5-Coder-0.5B-Instruct, so a cold CI run downloads 491 MB instead of
 * 1.1 GB and the tests generate about 1.5x faster than with the 1.5B default. It is an instruct model with a
 * chat template like the default, so the tests go through the same server path the main job does.
 * `PH_TEST_LOCAL_LLM=qwen2.5-coder-1.5b` runs them with the default model instead.
 */
import { isLocalLlmId, LOCAL_LLM_IDS, LOCAL_LLMS, type LocalLlmId } from '../../../models/weights/fetch.ts';

function testLocalLlm(): LocalLlmId {
  const chosen = process.env.PH_TEST_LOCAL_LLM ?? 'qwen2.5-coder-0.5b';
  if (!isLocalLlmId(chosen)) throw new Error(`PH_TEST_LOCAL_LLM=${JSON.stringify(chosen)}: expected one of ${LOCAL_LLM_IDS.join(', ')}`);
  return chosen;
}

export const TEST_LLM: LocalLlmId = testLocalLlm();
export const TEST_LLM_SPEC = LOCAL_LLMS[TEST_LLM];
/** Environment for loadConfig: the test model as the configured local model (and so as the served name). */
export const TEST_LLM_ENV = { PERSONAHUB_LOCAL_LLM: TEST_LLM } as const;
