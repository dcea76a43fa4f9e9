/**
 * `ShapeSpec`: the shapes of a decoder, wide enough to describe real models that `ModelConfig` cannot
 * run (MLA attention, leading dense layers, expert and router biases, attention sinks). It exists for
 * counting parameters, bytes and FLOPs only; nothing executes a ShapeSpec.
 */

import type { ModelConfig, QkNorm } from './types.ts';

/** Grouped-query attention (covers MHA and MQA). */
export interface GqaShape {
  readonly kind: 'gqa';
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Biases on the Q/K/V projections. */
  readonly qkvBias: boolean;
  /** A bias on the output projection (gpt-oss). */
  readonly outputBias: boolean;
  readonly qkNorm: QkNorm;
  /** One learned sink logit per head (gpt-oss). */
  readonly sinks: boolean;
}

/** Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and a compressed, shared KV latent. */
export interface MlaShape {
  readonly kind: 'mla';
  readonly numHeads: number;
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly qkNopeHeadDim: number;
  readonly qkRopeHeadDim: number;
  readonly vHeadDim: number;
}

export type AttentionShape = GqaShape | MlaShape;

export interface ShapeSpec {
  readonly name: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly attention: AttentionShape;
  /** The first `numDenseLayers` layers have a dense SwiGLU FFN instead of experts (DeepSeek-V3: 3). */
  readonly numDenseLayers: number;
  readonly denseFfnSize: number;
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly expertFfnSize: number;
  /** Biases on the experts' projections (gpt-oss): 2F on gate/up, H on down. */
  readonly expertBias: boolean;
  /** A bias on the router logits (gpt-oss). */
  readonly routerBias: boolean;
  /** A per-expert selection bias (DeepSeek-V3 `e_score_correction_bias`). */
  readonly selectionBias: boolean;
  /** All shared experts fused into one SwiGLU of this intermediate size; 0 = none. */
  readonly sharedExpertFfnSize: number;
  readonly sharedExpertGate: boolean;
  readonly tieWordEmbeddings: boolean;
}

/** The ShapeSpec of a runnable config (GQA, every layer MoE, no expert biases). */
export function shapeOfConfig(config: ModelConfig): ShapeSpec {
  return {
    name: config.name,
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    attention: {
      kind: 'gqa',
      numHeads: config.numHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      qkvBias: config.attentionBias,
      outputBias: false,
      qkNorm: config.qkNorm,
      sinks: false,
    },
    numDenseLayers: 0,
    denseFfnSize: 0,
    numExperts: config.numExperts,
    numExpertsPerToken: config.numExpertsPerToken,
    expertFfnSize: config.expertFfnSize,
    expertBias: false,
    routerBias: false,
    selectionBias: config.selectionBias,
    sharedExpertFfnSize: config.sharedExpertFfnSize,
    sharedExpertGate: config.sharedExpertGate,
    tieWordEmbeddings: config.tieWordEmbeddings,
  };
}
