/**
 * The whole model in plain TypeScript (no onnxruntime): embedding lookup, per layer attention with a KV
 * cache, router, routed experts, shared expert, final norm and LM head. Slow and obvious on purpose:
 * it is the oracle the ONNX graphs (and through them the engine) are tested against, stage by stage.
 */
import { requireWeight } from '../weight-access.ts';
import type { F32Tensor, ModelConfig, WeightMap } from '../types.ts';
import { tensorNames as names, type ExpertProjection } from '../weight-layout.ts';
import { referenceAttention, type ReferenceAttentionOutput } from './attention.ts';
import { referenceSwiGlu, type ReferenceSwiGluWeights } from './expert.ts';
import { linearRows, rmsNormChunks, row } from './ops.ts';
import { referenceRoute, type ReferenceRouting } from './router.ts';

/**
 * Per-layer K/V of one sequence, token-major [numTokens, nKV, D] like the graphs' `past_k`/`past_v`.
 * Invariant: every layer holds the same number of tokens between forwards; `referenceForward` appends
 * each layer's new K/V as it goes.
 */
export class ReferenceKvCache {
  readonly #keys: Float32Array[];
  readonly #values: Float32Array[];
  readonly #tokenSize: number;

  constructor(config: ModelConfig) {
    this.#keys = Array.from({ length: config.numLayers }, () => new Float32Array(0));
    this.#values = Array.from({ length: config.numLayers }, () => new Float32Array(0));
    this.#tokenSize = config.numKvHeads * config.headDim;
  }

  get numTokens(): number {
    return (this.#keys[0]?.length ?? 0) / this.#tokenSize;
  }

  keys(layer: number): Float32Array {
    return this.#keys[layer] ?? new Float32Array(0);
  }

  values(layer: number): Float32Array {
    return this.#values[layer] ?? new Float32Array(0);
  }

  append(layer: number, newK: Float32Array, newV: Float32Array): void {
    const grow = (old: Float32Array, extra: Float32Array) => {
      const out = new Float32Array(old.length + extra.length);
      out.set(old);
      out.set(extra, old.length);
      return out;
    };
    this.#keys[layer] = grow(this.keys(layer), newK);
    this.#values[layer] = grow(this.values(layer), newV);
  }
}

export interface ReferenceLayerTrace extends ReferenceAttentionOutput {
  /** Per token: the experts chosen and their weights. */
  readonly routing: readonly ReferenceRouting[];
  /** [S, H] = h + Σ wₑ·Eₑ(moe_in) + shared: the next layer's input. */
  readonly output: Float32Array;
}

export interface ReferenceForwardResult {
  /** [T, V] */
  readonly logits: Float32Array;
  /** [T, H]: the residual stream after the last layer, before the final norm. */
  readonly hiddenStates: Float32Array;
  readonly perLayer: readonly ReferenceLayerTrace[];
}

export function referenceEmbed(config: ModelConfig, weights: WeightMap, tokens: readonly number[]): Float32Array {
  const h = config.hiddenSize;
  const table = requireWeight(weights, names.embedTokens, [config.vocabSize, h]);
  const x = new Float32Array(tokens.length * h);
  tokens.forEach((token, t) => x.set(row(table.data, h, token), t * h));
  return x;
}

export function referenceExpertWeights(
  weights: WeightMap,
  layer: number,
  expert: number | 'shared',
): ReferenceSwiGluWeights {
  const get = (proj: ExpertProjection): F32Tensor =>
    requireWeight(weights, expert === 'shared' ? names.sharedExpert(layer, proj) : names.expert(layer, expert, proj));
  return { gate: get('gate_proj'), up: get('up_proj'), down: get('down_proj') };
}

/** The MoE half of a layer: route each token, run its experts and the shared expert, add to h. */
export function referenceMoe(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  attention: ReferenceAttentionOutput,
): { routing: ReferenceRouting[]; output: Float32Array } {
  const hSize = config.hiddenSize;
  const numTokens = attention.h.length / hSize;
  const bias = config.selectionBias ? requireWeight(weights, names.selectionBias(layer)).data : undefined;
  const shared = config.sharedExpertFfnSize > 0 ? referenceExpertWeights(weights, layer, 'shared') : undefined;
  const routing: ReferenceRouting[] = [];
  const output = new Float32Array(numTokens * hSize);
  for (let t = 0; t < numTokens; t++) {
    const moeIn = row(attention.moeIn, hSize, t);
    const decision = referenceRoute(config, row(attention.routerLogits, config.numExperts, t), bias);
    routing.push(decision);
    const sum = Float64Array.from(row(attention.h, hSize, t));
    decision.experts.forEach((expert, j) => {
      const y = referenceSwiGlu(referenceExpertWeights(weights, layer, expert), moeIn, 1);
      const w = decision.weights[j] ?? 0;
      for (let c = 0; c < hSize; c++) sum[c] = (sum[c] ?? 0) + w * (y[c] ?? 0);
    });
    if (shared !== undefined) {
      const y = referenceSwiGlu(shared, moeIn, 1);
      const gate = attention.sharedGate?.[t] ?? 1;
      for (let c = 0; c < hSize; c++) sum[c] = (sum[c] ?? 0) + gate * (y[c] ?? 0);
    }
    output.set(sum, t * hSize);
  }
  return { routing, output };
}

/** Final RMSNorm and LM head: [T, H] → [T, V]. */
export function referenceLmHead(config: ModelConfig, weights: WeightMap, x: Float32Array): Float32Array {
  const h = config.hiddenSize;
  const normed = rmsNormChunks(x, h, requireWeight(weights, names.finalNorm, [h]), config.rmsNormEps);
  const head = requireWeight(weights, config.tieWordEmbeddings ? names.embedTokens : names.lmHead, [
    config.vocabSize,
    h,
  ]);
  return linearRows(normed, x.length / h, head);
}

/**
 * Runs `tokens` through the model after whatever `cache` already holds (positions continue from
 * `cache.numTokens`), appending their K/V to it. A fresh cache is used when none is given.
 */
export function referenceForward(
  config: ModelConfig,
  weights: WeightMap,
  tokens: readonly number[],
  cache: ReferenceKvCache = new ReferenceKvCache(config),
): ReferenceForwardResult {
  const start = cache.numTokens;
  const positions = tokens.map((_, t) => start + t);
  let x = referenceEmbed(config, weights, tokens);
  const perLayer: ReferenceLayerTrace[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const attention = referenceAttention(config, weights, layer, x, positions, cache.keys(layer), cache.values(layer));
    cache.append(layer, attention.newK, attention.newV);
    const moe = referenceMoe(config, weights, layer, attention);
    perLayer.push({ ...attention, ...moe });
    x = moe.output;
  }
  return { logits: referenceLmHead(config, weights, x), hiddenStates: x, perLayer };
}
