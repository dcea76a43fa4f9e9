import { describe, expect, it } from 'vitest';
import { buildLmHeadGraph, createSession, type WeightFormat } from '../src/index.ts';
import {
  getPreset,
  randomWeights,
  cosineSimilarity,
  maxAbsDiff,
  referenceLmHead,
  type ModelConfig,
} from '@switchyard/model';

async function runLmHead(config: ModelConfig, seed: number, format: WeightFormat = 'fp32') {
  const weights = randomWeights(config, seed);
  const session = await createSession(buildLmHeadGraph(config, weights, { format }), { intraOpThreads: 1 });
  const x = Float32Array.from({ length: 3 * config.hiddenSize }, (_, i) => Math.sin(i * 0.7) * 2);
  const result = await session.run({ x: { data: x, dims: [3, config.hiddenSize] } });
  await session.release();
  return { got: result['logits'], want: referenceLmHead(config, weights, x) };
}

describe('LM head graph', () => {
  it('gives RMSNorm_final(x) · W_lmᵀ with a separate lm_head weight', async () => {
    const config = getPreset('tiny');
    const { got, want } = await runLmHead(config, 31);
    expect(got?.dims).toEqual([3, config.vocabSize]);
    expect(maxAbsDiff(got?.data ?? [], want)).toBeLessThanOrEqual(1e-4);
  });

  it('multiplies by the embedding when word embeddings are tied', async () => {
    const config = getPreset('tiny', { tieWordEmbeddings: true });
    const { got, want } = await runLmHead(config, 32);
    expect(maxAbsDiff(got?.data ?? [], want)).toBeLessThanOrEqual(1e-4);
  });

  it.each<WeightFormat>(['int8', 'int8-rows'])(
    'stays close to fp32 with %s weights (cosine > 0.999)',
    async (format) => {
      const { got, want } = await runLmHead(getPreset('tiny'), 33, format);
      expect(cosineSimilarity(got?.data ?? [], want)).toBeGreaterThan(0.999);
    },
  );
});
