/**
 * Parameter counting from shapes: total, active per token (broken down by part), and the matmul
 * parameters per token that the cost model turns into FLOPs. Works on a `ShapeSpec`; `ModelConfig`s go
 * through `shapeOfConfig`.
 *
 * Conventions:
 * - "active per token" counts the whole embedding matrix and LM head (as most publishers do), every
 *   norm and bias, the router, the top-k routed experts and the shared experts;
 * - "matmul per token" is the compute-active set: weight matrices a token is multiplied with
 *   (attention projections, router, chosen and shared experts, dense FFNs, LM head) — no embedding
 *   (a lookup), no norms, biases or sinks. FLOPs per token ≈ 2 × matmul params + attention's
 *   context-dependent term, which is not a parameter count and lives in the cost model;
 * - with tied embeddings the LM head holds no parameters of its own (`lmHead` = 0 in total and active)
 *   but is still a matmul.
 */

import type { PublishedParams } from './real-models.ts';
import { shapeOfConfig } from './shape-spec.ts';
import type { AttentionShape, ShapeSpec } from './shape-spec.ts';
import type { ModelConfig } from './types.ts';

export interface ParamBreakdown {
  readonly embedding: number;
  /** Projections, their biases, Q/K norms, sinks (MLA: the low-rank projections and their norms). */
  readonly attention: number;
  /** Router weight plus router and selection biases. */
  readonly router: number;
  readonly routedExperts: number;
  /** Shared experts and the shared-expert gate. */
  readonly sharedExperts: number;
  /** Leading dense layers' FFNs (DeepSeek-V3). */
  readonly denseFfn: number;
  /** Per-layer input / post-attention norms and the final norm. */
  readonly norms: number;
  readonly lmHead: number;
}

export interface ParamCounts {
  readonly total: ParamBreakdown;
  readonly totalParams: number;
  readonly activePerToken: ParamBreakdown;
  readonly activeParamsPerToken: number;
  readonly matmulParamsPerToken: number;
}

export function sumBreakdown(b: ParamBreakdown): number {
  return b.embedding + b.attention + b.router + b.routedExperts + b.sharedExperts + b.denseFfn + b.norms + b.lmHead;
}

interface AttentionCount {
  readonly params: number;
  readonly matmul: number;
}

function attentionPerLayer(a: AttentionShape, h: number): AttentionCount {
  if (a.kind === 'mla') {
    const qHead = a.qkNopeHeadDim + a.qkRopeHeadDim;
    const qMatmul = a.qLoraRank > 0 ? h * a.qLoraRank + a.qLoraRank * a.numHeads * qHead : h * a.numHeads * qHead;
    const kvMatmul = h * (a.kvLoraRank + a.qkRopeHeadDim) + a.kvLoraRank * a.numHeads * (a.qkNopeHeadDim + a.vHeadDim);
    const oMatmul = a.numHeads * a.vHeadDim * h;
    const matmul = qMatmul + kvMatmul + oMatmul;
    return { params: matmul + a.qLoraRank + a.kvLoraRank, matmul };
  }
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const matmul = 2 * h * q + 2 * h * kv;
  const biases = (a.qkvBias ? q + 2 * kv : 0) + (a.outputBias ? h : 0);
  const qkNorm = a.qkNorm === 'projection' ? q + kv : a.qkNorm === 'head' ? 2 * a.headDim : 0;
  return { params: matmul + biases + qkNorm + (a.sinks ? a.numHeads : 0), matmul };
}

function swigluParams(h: number, f: number): number {
  return 3 * h * f;
}

/** Counts of a shape. */
export function countParams(s: ShapeSpec): ParamCounts {
  const h = s.hiddenSize;
  const numMoeLayers = s.numLayers - s.numDenseLayers;
  const attention = attentionPerLayer(s.attention, h);
  const expert = swigluParams(h, s.expertFfnSize) + (s.expertBias ? 2 * s.expertFfnSize + h : 0);
  const routerMatmul = s.numExperts * h;
  const router = routerMatmul + (s.routerBias ? s.numExperts : 0) + (s.selectionBias ? s.numExperts : 0);
  const sharedMatmul =
    s.sharedExpertFfnSize > 0 ? swigluParams(h, s.sharedExpertFfnSize) + (s.sharedExpertGate ? h : 0) : 0;
  const dense = swigluParams(h, s.denseFfnSize);
  const embedding = s.vocabSize * h;
  const lmHead = s.tieWordEmbeddings ? 0 : s.vocabSize * h;

  const common = {
    embedding,
    attention: s.numLayers * attention.params,
    router: numMoeLayers * router,
    sharedExperts: numMoeLayers * sharedMatmul,
    denseFfn: s.numDenseLayers * dense,
    norms: s.numLayers * 2 * h + h,
    lmHead,
  };
  const total: ParamBreakdown = { ...common, routedExperts: numMoeLayers * s.numExperts * expert };
  const activePerToken: ParamBreakdown = { ...common, routedExperts: numMoeLayers * s.numExpertsPerToken * expert };
  const matmulParamsPerToken =
    s.numLayers * attention.matmul +
    numMoeLayers * (routerMatmul + s.numExpertsPerToken * swigluParams(h, s.expertFfnSize) + sharedMatmul) +
    s.numDenseLayers * dense +
    s.vocabSize * h;
  return {
    total,
    totalParams: sumBreakdown(total),
    activePerToken,
    activeParamsPerToken: sumBreakdown(activePerToken),
    matmulParamsPerToken,
  };
}

/** Counts of a runnable config. */
export function countConfigParams(config: ModelConfig): ParamCounts {
  return countParams(shapeOfConfig(config));
}

/**
 * Our active count under a publisher's convention: everything but the embedding and LM head, plus
 * whichever of the two the publisher includes.
 */
export function comparableActiveParams(counts: ParamCounts, published: PublishedParams): number {
  const a = counts.activePerToken;
  return (
    counts.activeParamsPerToken -
    (published.activeIncludesEmbedding ? 0 : a.embedding) -
    (published.activeIncludesLmHead ? 0 : a.lmHead)
  );
}

export type ExpertWeightFormat = 'f32' | 'int8';

/**
 * Bytes of one SwiGLU expert's weights (H×F gate and up, F×H down). int8 is per-output-channel
 * symmetric: 1 byte per weight plus one fp32 scale per output channel (F + F + H channels).
 */
export function swigluSizeBytes(hiddenSize: number, ffnSize: number, format: ExpertWeightFormat): number {
  const weights = swigluParams(hiddenSize, ffnSize);
  return format === 'f32' ? 4 * weights : weights + 4 * (2 * ffnSize + hiddenSize);
}

/** Bytes of one routed expert of `config`. */
export function expertSizeBytes(config: ModelConfig, format: ExpertWeightFormat): number {
  return swigluSizeBytes(config.hiddenSize, config.expertFfnSize, format);
}

/** Bytes of all weights of `config`: fp32 everywhere except the routed experts, in `expertFormat`. */
export function weightsSizeBytes(config: ModelConfig, expertFormat: ExpertWeightFormat): number {
  const counts = countConfigParams(config);
  const nonExpert = counts.totalParams - counts.total.routedExperts;
  return 4 * nonExpert + config.numLayers * config.numExperts * expertSizeBytes(config, expertFormat);
}
