/**
 * The canonical tensor names and shapes a config requires (the contract written on `WeightMap` in
 * types.ts). Random weights, checkpoint validation, HF import and export all walk this one list.
 */

import type { ModelConfig } from './types.ts';

/** What a tensor is, which decides how it is initialised and counted. */
export type TensorRole = 'embedding' | 'lm_head' | 'norm' | 'linear' | 'bias' | 'router' | 'selection_bias';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: TensorRole;
}

export type ExpertProjection = 'gate_proj' | 'up_proj' | 'down_proj';
export type AttentionProjection = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj';

const layer = (i: number): string => `model.layers.${i}`;

/** Canonical tensor names (HF Qwen/OLMoE naming). */
export const tensorNames = {
  embedTokens: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  inputNorm: (i: number): string => `${layer(i)}.input_layernorm.weight`,
  postAttentionNorm: (i: number): string => `${layer(i)}.post_attention_layernorm.weight`,
  attention: (i: number, proj: AttentionProjection): string => `${layer(i)}.self_attn.${proj}.weight`,
  attentionBias: (i: number, proj: 'q_proj' | 'k_proj' | 'v_proj'): string => `${layer(i)}.self_attn.${proj}.bias`,
  qNorm: (i: number): string => `${layer(i)}.self_attn.q_norm.weight`,
  kNorm: (i: number): string => `${layer(i)}.self_attn.k_norm.weight`,
  router: (i: number): string => `${layer(i)}.mlp.gate.weight`,
  selectionBias: (i: number): string => `${layer(i)}.mlp.gate.e_score_correction_bias`,
  expert: (i: number, e: number, proj: ExpertProjection): string => `${layer(i)}.mlp.experts.${e}.${proj}.weight`,
  sharedExpert: (i: number, proj: ExpertProjection): string => `${layer(i)}.mlp.shared_expert.${proj}.weight`,
  sharedExpertGate: (i: number): string => `${layer(i)}.mlp.shared_expert_gate.weight`,
} as const;

function attentionSpecs(c: ModelConfig, i: number): TensorSpec[] {
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const specs: TensorSpec[] = [
    { name: tensorNames.attention(i, 'q_proj'), shape: [q, h], role: 'linear' },
    { name: tensorNames.attention(i, 'k_proj'), shape: [kv, h], role: 'linear' },
    { name: tensorNames.attention(i, 'v_proj'), shape: [kv, h], role: 'linear' },
    { name: tensorNames.attention(i, 'o_proj'), shape: [h, q], role: 'linear' },
  ];
  if (c.attentionBias) {
    specs.push(
      { name: tensorNames.attentionBias(i, 'q_proj'), shape: [q], role: 'bias' },
      { name: tensorNames.attentionBias(i, 'k_proj'), shape: [kv], role: 'bias' },
      { name: tensorNames.attentionBias(i, 'v_proj'), shape: [kv], role: 'bias' },
    );
  }
  if (c.qkNorm !== 'none') {
    const perHead = c.qkNorm === 'head';
    specs.push(
      { name: tensorNames.qNorm(i), shape: [perHead ? c.headDim : q], role: 'norm' },
      { name: tensorNames.kNorm(i), shape: [perHead ? c.headDim : kv], role: 'norm' },
    );
  }
  return specs;
}

function swiglu(names: (proj: ExpertProjection) => string, h: number, f: number): TensorSpec[] {
  return [
    { name: names('gate_proj'), shape: [f, h], role: 'linear' },
    { name: names('up_proj'), shape: [f, h], role: 'linear' },
    { name: names('down_proj'), shape: [h, f], role: 'linear' },
  ];
}

function moeSpecs(c: ModelConfig, i: number): TensorSpec[] {
  const h = c.hiddenSize;
  const specs: TensorSpec[] = [{ name: tensorNames.router(i), shape: [c.numExperts, h], role: 'router' }];
  if (c.selectionBias)
    specs.push({ name: tensorNames.selectionBias(i), shape: [c.numExperts], role: 'selection_bias' });
  for (let e = 0; e < c.numExperts; e++) {
    specs.push(...swiglu((proj) => tensorNames.expert(i, e, proj), h, c.expertFfnSize));
  }
  if (c.sharedExpertFfnSize > 0) {
    specs.push(...swiglu((proj) => tensorNames.sharedExpert(i, proj), h, c.sharedExpertFfnSize));
    if (c.sharedExpertGate) specs.push({ name: tensorNames.sharedExpertGate(i), shape: [1, h], role: 'linear' });
  }
  return specs;
}

/** Every tensor the config requires, in model order (embedding, layers, final norm, LM head). */
export function weightLayout(config: ModelConfig): readonly TensorSpec[] {
  const h = config.hiddenSize;
  const specs: TensorSpec[] = [{ name: tensorNames.embedTokens, shape: [config.vocabSize, h], role: 'embedding' }];
  for (let i = 0; i < config.numLayers; i++) {
    specs.push({ name: tensorNames.inputNorm(i), shape: [h], role: 'norm' });
    specs.push(...attentionSpecs(config, i));
    specs.push({ name: tensorNames.postAttentionNorm(i), shape: [h], role: 'norm' });
    specs.push(...moeSpecs(config, i));
  }
  specs.push({ name: tensorNames.finalNorm, shape: [h], role: 'norm' });
  if (!config.tieWordEmbeddings)
    specs.push({ name: tensorNames.lmHead, shape: [config.vocabSize, h], role: 'lm_head' });
  return specs;
}

/** Number of elements of a shape. */
export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
