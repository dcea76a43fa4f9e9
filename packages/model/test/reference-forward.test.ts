import { describe, expect, it } from 'vitest';
import { getPreset } from '../src/presets.ts';
import { randomWeights } from '../src/random-weights.ts';
import {
  maxAbsDiff,
  referenceAttention,
  referenceForward,
  ReferenceKvCache,
  referenceRoute,
} from '../src/reference/index.ts';

describe('reference router', () => {
  const softmaxTop2 = getPreset('tiny', { numExperts: 4, numExpertsPerToken: 2, normTopKProb: false });

  it('chooses the top-k by score, best first, and gives the lower expert id a tie', () => {
    const r = referenceRoute(softmaxTop2, Float32Array.from([1, 3, 1, 3]));
    expect(r.experts).toEqual([1, 3]);
    const tie = referenceRoute(softmaxTop2, Float32Array.from([2, 1, 2, 2]));
    expect(tie.experts).toEqual([0, 2]);
  });

  it('uses raw softmax scores over all experts when normTopKProb is off', () => {
    const logits = Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4)]);
    const r = referenceRoute(softmaxTop2, logits);
    expect(r.experts).toEqual([3, 2]);
    expect(r.weights[0]).toBeCloseTo(0.4, 7);
    expect(r.weights[1]).toBeCloseTo(0.3, 7);
  });

  it('renormalises the chosen weights to sum 1 when normTopKProb is on', () => {
    const config = getPreset('tiny', { numExperts: 4, numExpertsPerToken: 2, normTopKProb: true });
    const r = referenceRoute(config, Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4)]));
    expect(r.weights[0]).toBeCloseTo(4 / 7, 7);
    expect(r.weights[1]).toBeCloseTo(3 / 7, 7);
  });

  it('lets the selection bias change which experts are chosen but not their weights', () => {
    const config = getPreset('tiny', {
      numExperts: 4,
      numExpertsPerToken: 2,
      scoring: 'sigmoid',
      selectionBias: true,
      normTopKProb: false,
      routedScalingFactor: 2,
    });
    const logits = Float32Array.from([2, 1, 0, -1]);
    const r = referenceRoute(config, logits, Float32Array.from([0, 0, 0, 5]));
    expect(r.experts).toEqual([3, 0]);
    expect(r.weights[0]).toBeCloseTo(2 / (1 + Math.exp(1)), 12);
    expect(r.weights[1]).toBeCloseTo(2 / (1 + Math.exp(-2)), 12);
  });
});

describe('reference forward', () => {
  const config = getPreset('tiny', { qkNorm: 'head', sharedExpertFfnSize: 16, sharedExpertGate: true });
  const weights = randomWeights(config, 51);
  const tokens = [config.bosTokenId, 10, 20, 30, 40, 50];

  it('gives the same logits when the prompt runs in chunks through a KV cache', () => {
    const oneShot = referenceForward(config, weights, tokens);
    const cache = new ReferenceKvCache(config);
    const first = referenceForward(config, weights, tokens.slice(0, 4), cache);
    const rest = referenceForward(config, weights, tokens.slice(4), cache);
    expect(cache.numTokens).toBe(6);
    const v = config.vocabSize;
    expect(maxAbsDiff(first.logits, oneShot.logits.subarray(0, 4 * v))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(rest.logits, oneShot.logits.subarray(4 * v))).toBeLessThanOrEqual(1e-5);
  });

  it('is causal: changing a later token leaves earlier logits untouched', () => {
    const a = referenceForward(config, weights, tokens);
    const b = referenceForward(config, weights, [...tokens.slice(0, 5), 99]);
    const v = config.vocabSize;
    expect(maxAbsDiff(a.logits.subarray(0, 5 * v), b.logits.subarray(0, 5 * v))).toBe(0);
    expect(maxAbsDiff(a.logits.subarray(5 * v), b.logits.subarray(5 * v))).toBeGreaterThan(1e-3);
  });

  it('records every layer’s stages with their shapes, and top-k routing per token', () => {
    const r = referenceForward(config, weights, tokens);
    expect(r.perLayer).toHaveLength(config.numLayers);
    const kv = config.numKvHeads * config.headDim;
    for (const layer of r.perLayer) {
      expect(layer.h).toHaveLength(tokens.length * config.hiddenSize);
      expect(layer.routerLogits).toHaveLength(tokens.length * config.numExperts);
      expect(layer.newK).toHaveLength(tokens.length * kv);
      expect(layer.sharedGate).toHaveLength(tokens.length);
      expect(layer.routing.map((d) => d.experts.length)).toEqual(tokens.map(() => config.numExpertsPerToken));
    }
    expect(r.logits).toHaveLength(tokens.length * config.vocabSize);
  });

  it('attends to a single token as the identity over V (softmax of one score is 1)', () => {
    const c = getPreset('tiny');
    const w = randomWeights(c, 52);
    const x = Float32Array.from({ length: c.hiddenSize }, (_, i) => Math.sin(i));
    const one = referenceAttention(c, w, 0, x, [0], new Float32Array(0), new Float32Array(0));
    // With one key, the context of each query head is its KV head's value vector.
    const group = c.numHeads / c.numKvHeads;
    const context = new Float32Array(c.numHeads * c.headDim);
    for (let head = 0; head < c.numHeads; head++) {
      const kvHead = Math.floor(head / group);
      context.set(one.newV.subarray(kvHead * c.headDim, (kvHead + 1) * c.headDim), head * c.headDim);
    }
    const o = w.get('model.layers.0.self_attn.o_proj.weight');
    expect(o).toBeDefined();
    const expected = x.map((v, r) => {
      let sum = 0;
      for (let k = 0; k < context.length; k++) sum += (o?.data[r * context.length + k] ?? 0) * (context[k] ?? 0);
      return v + sum;
    });
    expect(maxAbsDiff(one.h, expected)).toBeLessThanOrEqual(1e-5);
  });
});
