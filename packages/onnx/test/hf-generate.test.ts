import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  getPreset,
  importHfCheckpoint,
  loadModelDir,
  randomWeights,
  referenceForward,
  writeHfCheckpoint,
  type HfFamily,
  type ModelConfig,
} from '@switchyard/model';
import { createEngine } from '../src/create-engine.ts';
import { EngineLoop, resolveSamplingParams } from '@switchyard/engine';

const variants: Record<HfFamily, Partial<ModelConfig>> = {
  mixtral: { family: 'mixtral' },
  olmoe: { family: 'olmoe', qkNorm: 'projection', normTopKProb: false },
  qwen2_moe: {
    family: 'qwen2_moe',
    attentionBias: true,
    sharedExpertFfnSize: 48,
    sharedExpertGate: true,
    normTopKProb: false,
  },
  qwen3_moe: { family: 'qwen3_moe', qkNorm: 'head', normTopKProb: true },
};

const root = await mkdtemp(join(tmpdir(), 'switchyard-hf-'));
afterAll(() => rm(root, { recursive: true, force: true }));

/** Greedy continuation by the TypeScript reference forward. */
function referenceGreedy(
  config: ModelConfig,
  weights: Parameters<typeof referenceForward>[1],
  prompt: number[],
  n: number,
): number[] {
  const tokens = [...prompt];
  for (let i = 0; i < n; i++) {
    const { logits } = referenceForward(config, weights, tokens);
    const row = logits.subarray((tokens.length - 1) * config.vocabSize);
    let best = 0;
    for (let v = 1; v < config.vocabSize; v++) if ((row[v] ?? 0) > (row[best] ?? 0)) best = v;
    tokens.push(best);
  }
  return tokens.slice(prompt.length);
}

describe('Hugging Face checkpoints', () => {
  it.each(Object.keys(variants) as HfFamily[])(
    'a %s checkpoint imports and generates the reference tokens',
    async (family) => {
      const config = getPreset('tiny', { ...variants[family], name: `tiny-${family}` });
      const weights = randomWeights(config, 11);
      const hfDir = join(root, `hf-${family}`);
      const outDir = join(root, `out-${family}`);
      await writeHfCheckpoint(hfDir, family, config, weights, { dtype: 'f32', sharded: family === 'qwen3_moe' });
      await importHfCheckpoint(hfDir, outDir);
      const model = await loadModelDir(outDir);
      expect(model.config.family).toBe(family);
      const bundle = await createEngine(model, {
        expertDtype: 'fp32',
        denseDtype: 'fp32',
        blockSize: 4,
        scheduler: { maxBatchedTokens: 64, maxRunningSequences: 4 },
      });
      const loop = new EngineLoop(bundle.engine);
      try {
        const prompt = [5, 80, 121, 33, 7, 200];
        const events = await loop.generate({
          id: family,
          promptIds: prompt,
          params: resolveSamplingParams({ maxTokens: 5, temperature: 0, stopAtEos: false }),
        });
        expect(events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId)).toEqual(
          referenceGreedy(model.config, model.weights, prompt, 5),
        );
      } finally {
        await loop.stop();
        await bundle.close();
      }
    },
  );
});
