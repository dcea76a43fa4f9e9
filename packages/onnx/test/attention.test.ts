import { afterAll, describe, expect, it } from 'vitest';
import { buildAttentionGraph, createSession, type OnnxSession, type TensorResult } from '../src/index.ts';
import {
  getPreset,
  randomWeights,
  maxAbsDiff,
  referenceAttention,
  type ModelConfig,
  type WeightMap,
} from '@switchyard/model';

const TOLERANCE = 1e-4;
const LAYER = 1;

const sessions: OnnxSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

async function attentionSession(config: ModelConfig, weights: WeightMap): Promise<OnnxSession> {
  const session = await createSession(buildAttentionGraph(config, weights, LAYER), { intraOpThreads: 1 });
  sessions.push(session);
  return session;
}

function residual(config: ModelConfig, numTokens: number, seed: number): Float32Array {
  return Float32Array.from({ length: numTokens * config.hiddenSize }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
}

function runAttention(
  session: OnnxSession,
  config: ModelConfig,
  x: Float32Array,
  positions: readonly number[],
  past: { k: Float32Array; v: Float32Array } = { k: new Float32Array(0), v: new Float32Array(0) },
): Promise<Record<string, TensorResult>> {
  const kvDims = [config.numKvHeads, config.headDim];
  const numPast = past.k.length / (config.numKvHeads * config.headDim);
  return session.run({
    x: { data: x, dims: [positions.length, config.hiddenSize] },
    positions: { data: BigInt64Array.from(positions.map((p) => BigInt(p))), dims: [positions.length] },
    past_k: { data: past.k, dims: [numPast, ...kvDims] },
    past_v: { data: past.v, dims: [numPast, ...kvDims] },
  });
}

function output(result: Record<string, TensorResult>, name: string): Float32Array {
  const t = result[name];
  if (t === undefined) throw new Error(`missing output ${name}`);
  return t.data;
}

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

const VARIANTS: readonly [string, Partial<ModelConfig>][] = [
  ['grouped KV heads (4 query heads share 2 KV heads)', {}],
  ['multi-head attention (as many KV heads as query heads)', { numKvHeads: 4 }],
  ['multi-query attention (one KV head)', { numKvHeads: 1 }],
  ['Q/K RMSNorm over the whole projection (OLMoE)', { qkNorm: 'projection' }],
  ['Q/K RMSNorm per head (Qwen3-MoE)', { qkNorm: 'head' }],
  ['Q/K/V biases (Qwen2-MoE)', { attentionBias: true }],
  ['a gated shared expert', { sharedExpertFfnSize: 32, sharedExpertGate: true }],
];

describe('attention graph', () => {
  describe.each(VARIANTS)('with %s', (_name, overrides) => {
    const config = getPreset('tiny', overrides);
    const weights = randomWeights(config, 11);

    it('matches the reference on a 6-token prompt (every output within 1e-4)', async () => {
      const session = await attentionSession(config, weights);
      const x = residual(config, 6, 1);
      const positions = range(0, 6);
      const got = await runAttention(session, config, x, positions);
      const want = referenceAttention(config, weights, LAYER, x, positions, new Float32Array(0), new Float32Array(0));
      expect(maxAbsDiff(output(got, 'h'), want.h)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(output(got, 'moe_in'), want.moeIn)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(output(got, 'router_logits'), want.routerLogits)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(output(got, 'new_k'), want.newK)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(output(got, 'new_v'), want.newV)).toBeLessThanOrEqual(TOLERANCE);
      if (config.sharedExpertGate) {
        expect(want.sharedGate).toBeDefined();
        expect(maxAbsDiff(output(got, 'shared_gate'), want.sharedGate ?? [])).toBeLessThanOrEqual(TOLERANCE);
        expect(got['shared_gate']?.dims).toEqual([6, 1]);
      } else {
        expect(got['shared_gate']).toBeUndefined();
      }
      expect(got['new_k']?.dims).toEqual([6, config.numKvHeads, config.headDim]);
      expect(got['router_logits']?.dims).toEqual([6, config.numExperts]);
    });

    it('gives the one-shot result when the prompt runs in two chunks with past_k/past_v', async () => {
      const session = await attentionSession(config, weights);
      const x = residual(config, 7, 2);
      const h = config.hiddenSize;
      const oneShot = await runAttention(session, config, x, range(0, 7));
      const first = await runAttention(session, config, x.subarray(0, 4 * h), range(0, 4));
      const past = { k: output(first, 'new_k'), v: output(first, 'new_v') };
      const second = await runAttention(session, config, x.subarray(4 * h), range(4, 3), past);
      const want = referenceAttention(config, weights, LAYER, x.subarray(4 * h), range(4, 3), past.k, past.v);
      for (const name of ['h', 'moe_in', 'router_logits'] as const) {
        const width = name === 'router_logits' ? config.numExperts : h;
        expect(maxAbsDiff(output(second, name), output(oneShot, name).subarray(4 * width))).toBeLessThanOrEqual(
          TOLERANCE,
        );
      }
      const kvSize = config.numKvHeads * config.headDim;
      expect(maxAbsDiff(output(second, 'new_k'), output(oneShot, 'new_k').subarray(4 * kvSize))).toBeLessThanOrEqual(
        TOLERANCE,
      );
      expect(maxAbsDiff(output(second, 'h'), want.h)).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(output(second, 'new_v'), want.newV)).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it('decodes token by token from prefix views of a preallocated per-sequence cache buffer', async () => {
    const config = getPreset('tiny', { qkNorm: 'head' });
    const weights = randomWeights(config, 12);
    const session = await attentionSession(config, weights);
    const h = config.hiddenSize;
    const kvSize = config.numKvHeads * config.headDim;
    const numTokens = 5;
    const x = residual(config, numTokens, 3);
    const cacheK = new Float32Array(config.maxContext * kvSize);
    const cacheV = new Float32Array(config.maxContext * kvSize);
    const oneShot = await runAttention(session, config, x, range(0, numTokens));
    for (let t = 0; t < numTokens; t++) {
      const past = { k: cacheK.subarray(0, t * kvSize), v: cacheV.subarray(0, t * kvSize) };
      const step = await runAttention(session, config, x.subarray(t * h, (t + 1) * h), [t], past);
      cacheK.set(output(step, 'new_k'), t * kvSize);
      cacheV.set(output(step, 'new_v'), t * kvSize);
      expect(maxAbsDiff(output(step, 'h'), output(oneShot, 'h').subarray(t * h, (t + 1) * h))).toBeLessThanOrEqual(
        TOLERANCE,
      );
    }
    expect(maxAbsDiff(cacheK.subarray(0, numTokens * kvSize), output(oneShot, 'new_k'))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('rotates by absolute position: the same token at another position gives other keys', async () => {
    const config = getPreset('tiny');
    const weights = randomWeights(config, 13);
    const session = await attentionSession(config, weights);
    const x = residual(config, 1, 4);
    const at0 = await runAttention(session, config, x, [0]);
    const at9 = await runAttention(session, config, x, [9]);
    const want9 = referenceAttention(config, weights, LAYER, x, [9], new Float32Array(0), new Float32Array(0));
    expect(maxAbsDiff(output(at0, 'new_v'), output(at9, 'new_v'))).toBe(0);
    expect(maxAbsDiff(output(at0, 'new_k'), output(at9, 'new_k'))).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(output(at9, 'new_k'), want9.newK)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('names its inputs and outputs as the engine expects', async () => {
    const config = getPreset('tiny', { sharedExpertFfnSize: 16, sharedExpertGate: true });
    const session = await attentionSession(config, randomWeights(config, 14));
    expect([...session.inputNames]).toEqual(['x', 'positions', 'past_k', 'past_v']);
    expect([...session.outputNames]).toEqual(['h', 'moe_in', 'router_logits', 'new_k', 'new_v', 'shared_gate']);
  });
});
