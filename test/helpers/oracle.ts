import { loadModelDir } from '@switchyard/model';
import { createByteTokenizer, EngineLoop, resolveSamplingParams, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';

/**
 * The monolithic engine's greedy answers (EOS ignored) for byte-tokenised prompts: the oracle every
 * distributed or clustered answer must equal. Returns each request's events.
 */
export async function monolithicGreedy(
  modelDir: string,
  prompts: readonly string[],
  maxTokens: number,
): Promise<TokenEvent[][]> {
  const tokenizer = createByteTokenizer();
  const bundle = await createEngine(await loadModelDir(modelDir), {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 16,
    scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 64 },
  });
  const loop = new EngineLoop(bundle.engine);
  try {
    const params = resolveSamplingParams({ maxTokens, temperature: 0, stopAtEos: false });
    return await Promise.all(
      prompts.map((p, i) => loop.generate({ id: `oracle-${i}`, promptIds: tokenizer.encode(p), params })),
    );
  } finally {
    await loop.stop();
    await bundle.close();
  }
}
