/**
 * Reference of the attention block (plus post-attention norm, router logits and shared-expert gate)
 * for one sequence: the same contract as `buildAttentionGraph`, in plain loops.
 */
import { requireWeight } from '../weight-access.ts';
import type { ModelConfig, WeightMap } from '../types.ts';
import { tensorNames as names } from '../weight-layout.ts';
import { applyRopeInPlace, linearRows, rmsNormChunks, sigmoid, softmax } from './ops.ts';

export interface ReferenceAttentionOutput {
  /** [S, H] = x + o_proj(Attn(RMSNorm(x))) */
  readonly h: Float32Array;
  /** [S, H] = RMSNorm_post(h) */
  readonly moeIn: Float32Array;
  /** [S, E] */
  readonly routerLogits: Float32Array;
  /** [S, nKV, D], after q/k norm and RoPE */
  readonly newK: Float32Array;
  /** [S, nKV, D] */
  readonly newV: Float32Array;
  /** [S] = sigmoid(moe_in · w_sgᵀ), when the config has a shared-expert gate */
  readonly sharedGate?: Float32Array;
}

function project(config: ModelConfig, weights: WeightMap, layer: number, normed: Float32Array, numNew: number) {
  const get = (name: string) => requireWeight(weights, name);
  const bias = (proj: 'q_proj' | 'k_proj' | 'v_proj') =>
    config.attentionBias ? get(names.attentionBias(layer, proj)) : undefined;
  let q = linearRows(normed, numNew, get(names.attention(layer, 'q_proj')), bias('q_proj'));
  let k = linearRows(normed, numNew, get(names.attention(layer, 'k_proj')), bias('k_proj'));
  const v = linearRows(normed, numNew, get(names.attention(layer, 'v_proj')), bias('v_proj'));
  const { numHeads, numKvHeads, headDim, rmsNormEps: eps } = config;
  if (config.qkNorm === 'projection') {
    q = rmsNormChunks(q, numHeads * headDim, get(names.qNorm(layer)), eps);
    k = rmsNormChunks(k, numKvHeads * headDim, get(names.kNorm(layer)), eps);
  } else if (config.qkNorm === 'head') {
    q = rmsNormChunks(q, headDim, get(names.qNorm(layer)), eps);
    k = rmsNormChunks(k, headDim, get(names.kNorm(layer)), eps);
  }
  return { q, k, v };
}

/**
 * Causal attention of S new queries over P past + S new keys: query i sees slots 0 … P + i.
 * Returns the per-token context [S, nH * D].
 */
function attend(
  config: ModelConfig,
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  numPast: number,
  numNew: number,
): Float32Array {
  const { numHeads, numKvHeads, headDim } = config;
  const group = numHeads / numKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const context = new Float32Array(numNew * numHeads * headDim);
  for (let s = 0; s < numNew; s++) {
    for (let head = 0; head < numHeads; head++) {
      const kvHead = Math.floor(head / group);
      const qOff = (s * numHeads + head) * headDim;
      const numVisible = numPast + s + 1;
      const scores = new Array<number>(numVisible);
      for (let j = 0; j < numVisible; j++) {
        const kOff = (j * numKvHeads + kvHead) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += (q[qOff + d] ?? 0) * (keys[kOff + d] ?? 0);
        scores[j] = dot * scale;
      }
      const probs = softmax(scores);
      for (let d = 0; d < headDim; d++) {
        let sum = 0;
        for (let j = 0; j < numVisible; j++)
          sum += (probs[j] ?? 0) * (values[(j * numKvHeads + kvHead) * headDim + d] ?? 0);
        context[qOff + d] = sum;
      }
    }
  }
  return context;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * One layer's attention block for S new tokens at `positions`, given the sequence's past K/V
 * [P, nKV, D] (token-major, as the graph takes them).
 */
export function referenceAttention(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  x: Float32Array,
  positions: readonly number[],
  pastK: Float32Array,
  pastV: Float32Array,
): ReferenceAttentionOutput {
  const { hiddenSize: hSize, numHeads, numKvHeads, headDim, rmsNormEps: eps } = config;
  const numNew = positions.length;
  const numPast = pastK.length / (numKvHeads * headDim);
  const get = (name: string) => requireWeight(weights, name);

  const normed = rmsNormChunks(x, hSize, get(names.inputNorm(layer)), eps);
  const { q, k, v } = project(config, weights, layer, normed, numNew);
  applyRopeInPlace(q, positions, numHeads, headDim, config.ropeTheta);
  applyRopeInPlace(k, positions, numKvHeads, headDim, config.ropeTheta);
  const context = attend(config, q, concat(pastK, k), concat(pastV, v), numPast, numNew);
  const attnOut = linearRows(context, numNew, get(names.attention(layer, 'o_proj')));
  const h = x.map((value, i) => value + (attnOut[i] ?? 0));
  const moeIn = rmsNormChunks(h, hSize, get(names.postAttentionNorm(layer)), eps);
  const routerLogits = linearRows(moeIn, numNew, get(names.router(layer)));
  const base = { h, moeIn, routerLogits, newK: k, newV: v };
  if (!config.sharedExpertGate) return base;
  const gateLogits = linearRows(moeIn, numNew, get(names.sharedExpertGate(layer)));
  return { ...base, sharedGate: gateLogits.map(sigmoid) };
}
