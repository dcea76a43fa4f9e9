/**
 * The benches' decode measurement: with `distinct` prompts a step's tokens route to different experts, as a
 * server's do; with `identical` prompts every sequence takes the same experts at every timed step, which is
 * what llama.cpp's llama-batched-bench measures (all its sequences feed token 0), so the two can be compared
 * like for like.
 */
import { describe, expect, it } from 'vitest';
import { getPreset, randomWeights } from '@switchyard/model';
import { createEngine } from '@switchyard/onnx';
import type { TokenRoutes } from '@switchyard/routing';
import { measureDecode, type DecodePrompts } from '../bench/decode-measure.ts';

const config = getPreset('tiny');
const weights = randomWeights(config, 3);
const BATCH = 4;

/** Each timed step's routing, per layer: the sorted expert ids of every token. */
async function timedRoutes(prompts: DecodePrompts): Promise<string[][][]> {
  let timing = false;
  const seen: string[][][] = [];
  const bundle = await createEngine(
    { config, weights, weightsDigest: '00'.repeat(32) },
    {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 16,
      scheduler: { maxBatchedTokens: 16 * BATCH, maxRunningSequences: BATCH },
      onRouted: (_layer, _chunks, routes: TokenRoutes) => {
        if (!timing) return;
        const perToken: string[] = [];
        for (let t = 0; t < routes.numTokens; t++) {
          const ids = Array.from(routes.expertIds.subarray(routes.offsets[t], routes.offsets[t + 1]));
          perToken.push(ids.sort((a, b) => a - b).join(','));
        }
        seen.push([perToken]);
      },
    },
  );
  try {
    const m = await measureDecode(
      bundle,
      BATCH,
      3,
      'd',
      { start: () => (timing = true), stop: () => (timing = false) },
      prompts,
    );
    expect(m.batch).toBe(BATCH);
    expect(m.tokensPerSecond).toBeGreaterThan(0);
  } finally {
    await bundle.close();
  }
  return seen;
}

describe('measureDecode prompts', () => {
  it('identical: every sequence takes the same experts at every timed step', async () => {
    const routes = await timedRoutes('identical');
    expect(routes).toHaveLength(3 * config.numLayers);
    for (const [perToken = []] of routes) {
      expect(perToken).toHaveLength(BATCH);
      expect(new Set(perToken).size).toBe(1);
    }
  });

  it('distinct: the sequences of a step route to different experts', async () => {
    const routes = await timedRoutes('distinct');
    expect(routes).toHaveLength(3 * config.numLayers);
    expect(routes.some(([perToken = []]) => new Set(perToken).size > 1)).toBe(true);
  });
});
