/**
 * The shared vocabulary of Switchyard's model package: the resolved model config and the in-memory
 * weights. Every other package (engine, executors, services) speaks these types.
 *
 * Conventions are those of the Hugging Face Mixtral / OLMoE / Qwen-MoE code (docs/architecture.md §3).
 */

/** How the router turns logits into scores. */
export type Scoring = 'softmax' | 'sigmoid';

/** Where Q/K RMSNorm is applied: none, over the whole projection (OLMoE), or per head (Qwen3-MoE). */
export type QkNorm = 'none' | 'projection' | 'head';

/** The architecture family a config came from; `switchyard` for our own presets. */
export type ModelFamily = 'switchyard' | 'mixtral' | 'olmoe' | 'qwen2_moe' | 'qwen3_moe' | 'deepseek_v3' | 'gpt_oss';

/**
 * A validated, fully defaulted, frozen model config. Field names are ours (camelCase); import maps the
 * Hugging Face names onto them.
 */
export interface ModelConfig {
  readonly family: ModelFamily;
  /** Short model id used in API responses and KV hash namespaces, e.g. `tiny`, `small`. */
  readonly name: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxContext: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** Q/K/V projections carry biases (Qwen2-MoE). */
  readonly attentionBias: boolean;
  readonly qkNorm: QkNorm;
  readonly numExperts: number;
  /** top-k: experts chosen per token. */
  readonly numExpertsPerToken: number;
  /** Intermediate size of one routed expert's SwiGLU. */
  readonly expertFfnSize: number;
  readonly scoring: Scoring;
  /** Renormalise the chosen top-k weights to sum to 1. */
  readonly normTopKProb: boolean;
  /** Multiplies the final routing weights (DeepSeek-V3). 1 for most families. */
  readonly routedScalingFactor: number;
  /** A per-expert bias added to scores only to choose experts (DeepSeek-V3 `e_score_correction_bias`). */
  readonly selectionBias: boolean;
  /** Intermediate size of the shared expert (all shared experts fused into one SwiGLU); 0 = none. */
  readonly sharedExpertFfnSize: number;
  /** The shared expert's output is scaled by sigmoid(x · w) (Qwen2-MoE `shared_expert_gate`). */
  readonly sharedExpertGate: boolean;
  readonly tieWordEmbeddings: boolean;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
}

export type DType = 'f32' | 'f16' | 'bf16' | 'i8';

/** A dense fp32 tensor, row-major. */
export interface F32Tensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Model weights keyed by canonical tensor name (HF Qwen/OLMoE naming; Mixtral's `w1/w2/w3` and
 * `block_sparse_moe` are renamed on import):
 *
 * - `model.embed_tokens.weight` [V, H]
 * - `model.layers.{i}.input_layernorm.weight` [H]
 * - `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight` ([nH*D, H], [nKV*D, H], [nKV*D, H], [H, nH*D])
 * - `model.layers.{i}.self_attn.{q,k,v}_proj.bias` (when attentionBias)
 * - `model.layers.{i}.self_attn.{q,k}_norm.weight` ([nH*D] / [nKV*D] for 'projection', [D] for 'head')
 * - `model.layers.{i}.post_attention_layernorm.weight` [H]
 * - `model.layers.{i}.mlp.gate.weight` [E, H]
 * - `model.layers.{i}.mlp.gate.e_score_correction_bias` [E] (when selectionBias)
 * - `model.layers.{i}.mlp.experts.{e}.{gate,up}_proj.weight` [F, H], `...down_proj.weight` [H, F]
 * - `model.layers.{i}.mlp.shared_expert.{gate,up}_proj.weight` [S, H], `down_proj` [H, S]
 * - `model.layers.{i}.mlp.shared_expert_gate.weight` [1, H] (when sharedExpertGate)
 * - `model.norm.weight` [H]
 * - `lm_head.weight` [V, H] (absent when tieWordEmbeddings: the embedding is used)
 */
export type WeightMap = ReadonlyMap<string, F32Tensor>;
