/**
 * The parts of an attention block every attention graph shares: input RMSNorm, Q/K/V projections with
 * optional biases and Q/K norm (prologue), and o_proj, the residual add, the post-attention RMSNorm,
 * the router and the shared-expert gate (epilogue). Only the attention core in between differs.
 */
import type { ModelConfig, WeightMap } from '@switchyard/model';
import { tensorNames as names } from '@switchyard/model';
import type { GraphBuilder, Value } from './graph-builder.ts';
import { linear, rmsNorm, type WeightFormat } from './layers.ts';
import { requireWeight } from '@switchyard/model';

export interface AttentionPrologue {
  /** [S, nH, D], after Q norm, before RoPE */
  readonly q: Value;
  /** [S, nKV, D], after K norm, before RoPE */
  readonly k: Value;
  /** [S, nKV, D] */
  readonly v: Value;
}

export function attentionPrologue(
  g: GraphBuilder,
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  x: Value,
  format: WeightFormat,
): AttentionPrologue {
  const { hiddenSize: h, numHeads, numKvHeads, headDim, rmsNormEps: eps } = config;
  const w = (name: string, shape: readonly number[]) => requireWeight(weights, name, shape);
  const project = (proj: 'q_proj' | 'k_proj' | 'v_proj', size: number, input: Value) =>
    linear(g, input, w(names.attention(layer, proj), [size, h]), proj, {
      format,
      ...(config.attentionBias ? { bias: w(names.attentionBias(layer, proj), [size]) } : {}),
    });
  const normed = rmsNorm(g, x, w(names.inputNorm(layer), [h]), 'input_layernorm', eps);
  const qSize = numHeads * headDim;
  const kvSize = numKvHeads * headDim;
  let q = project('q_proj', qSize, normed);
  let k = project('k_proj', kvSize, normed);
  const v = g.reshape(project('v_proj', kvSize, normed), [0, numKvHeads, headDim]);
  if (config.qkNorm === 'projection') {
    q = rmsNorm(g, q, w(names.qNorm(layer), [qSize]), 'q_norm', eps);
    k = rmsNorm(g, k, w(names.kNorm(layer), [kvSize]), 'k_norm', eps);
  }
  q = g.reshape(q, [0, numHeads, headDim]);
  k = g.reshape(k, [0, numKvHeads, headDim]);
  if (config.qkNorm === 'head') {
    q = rmsNorm(g, q, w(names.qNorm(layer), [headDim]), 'q_norm', eps);
    k = rmsNorm(g, k, w(names.kNorm(layer), [headDim]), 'k_norm', eps);
  }
  return { q, k, v };
}

export interface AttentionEpilogue {
  /** [S, H] = x + o_proj(context) */
  readonly residual: Value;
  /** [S, H] */
  readonly moeIn: Value;
  /** [S, E] */
  readonly routerLogits: Value;
  /** [S, 1], when the config has a shared-expert gate */
  readonly sharedGate: Value | undefined;
}

/** From the attention context [S, nH * D] to the residual, the MoE input and the router logits. */
export function attentionEpilogue(
  g: GraphBuilder,
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  x: Value,
  context: Value,
  format: WeightFormat,
): AttentionEpilogue {
  const { hiddenSize: h, numHeads, headDim, rmsNormEps: eps } = config;
  const w = (name: string, shape: readonly number[]) => requireWeight(weights, name, shape);
  const attnOut = linear(g, context, w(names.attention(layer, 'o_proj'), [h, numHeads * headDim]), 'o_proj', {
    format,
  });
  const residual = g.add(x, attnOut);
  const moeIn = rmsNorm(g, residual, w(names.postAttentionNorm(layer), [h]), 'post_attention_layernorm', eps);
  // NOTE: the router stays fp32 whatever the projection format: a flipped top-k choice costs far more
  // accuracy than its tiny weight saves.
  const routerLogits = linear(g, moeIn, w(names.router(layer), [config.numExperts, h]), 'router');
  const sharedGate = config.sharedExpertGate
    ? g.sigmoid(linear(g, moeIn, w(names.sharedExpertGate(layer), [1, h]), 'shared_expert_gate'))
    : undefined;
  return { residual, moeIn, routerLogits, sharedGate };
}

/**
 * Declares the attention block's outputs — `h`, `moe_in`, `router_logits`, `new_k`, `new_v` and, when
 * the model has one, `shared_gate` — with `rows` as the name of the token dimension.
 */
export function outputAttentionBlock(
  g: GraphBuilder,
  config: ModelConfig,
  rows: string,
  epilogue: AttentionEpilogue,
  newK: Value,
  newV: Value,
): void {
  const { hiddenSize: h, numKvHeads, headDim } = config;
  g.output(epilogue.residual, 'h', 'float', [rows, h]);
  g.output(epilogue.moeIn, 'moe_in', 'float', [rows, h]);
  g.output(epilogue.routerLogits, 'router_logits', 'float', [rows, config.numExperts]);
  g.output(newK, 'new_k', 'float', [rows, numKvHeads, headDim]);
  g.output(newV, 'new_v', 'float', [rows, numKvHeads, headDim]);
  if (epilogue.sharedGate !== undefined) g.output(epilogue.sharedGate, 'shared_gate', 'float', [rows, 1]);
}
