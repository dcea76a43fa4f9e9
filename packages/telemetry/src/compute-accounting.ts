/**
 * Exact per-token compute accounting, from a model's shapes and the routing decisions actually made.
 * Pure: shapes and counts in, numbers out.
 *
 * Definitions (one "row" is one token position run through the model in one step):
 *
 * - **Active parameters of a row**: every parameter that takes part in computing it — per layer the
 *   attention block (projections, their biases, Q/K norms, sinks; MLA's low-rank projections and norms),
 *   the two RMSNorm weights, and the FFN: the router (and its biases) plus each *distinct* routed expert
 *   chosen, plus the shared experts (and their gate) — or the dense FFN in a leading dense layer; then,
 *   only for a row whose logits are computed, the final norm and the LM head.
 *   NOTE: the embedding table is not counted: a row reads one of its rows, it is not multiplied with
 *   it. For a sampled row with top-k experts at every layer this is `countParams().activeParamsPerToken`
 *   minus the embedding (untied), i.e. the publishers' figure without the lookup table.
 * - **Matmul parameters of a row**: the weight matrices the row is multiplied with (the same set without
 *   norms and biases). `FLOPs = 2 × matmul parameters + attention's context term`, where the context term
 *   is, per layer, 2 × heads × (QK head dim + V head dim) × context — `4 × heads × headDim × context`
 *   for GQA — and context = position + 1 (the row attends to itself and every earlier position).
 * - **LM head**: it runs only on rows that sample (the last row of a chunk that reaches the end of its
 *   sequence). NOTE: prefill rows that do not sample do not count it — exact means only rows whose
 *   logits are computed.
 * - **Dense-equivalent FLOPs**: the same row on a dense model of the same total size — every routed
 *   expert of every MoE layer active (router kept), same attention term.
 * - **Expert bytes**: a layer call reads each distinct expert it hits once, whatever the number of rows
 *   routed to it; bytes per expert in its dtype (`swigluSizeBytes`: fp32, or int8 with one fp32 scale
 *   per output channel).
 */

import { shapeOfConfig, swigluSizeBytes } from '@switchyard/model';
import type { AttentionShape, ExpertWeightFormat, ModelConfig, ShapeSpec } from '@switchyard/model';

/** A model's per-row cost constants. Built once by `computeModelOf`; plain frozen data. */
export interface ComputeModel {
  readonly name: string;
  readonly numLayers: number;
  /** Leading layers with a dense FFN (DeepSeek-V3: 3); the router is called for the others only. */
  readonly numDenseLayers: number;
  readonly numExperts: number;
  readonly topK: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** Active parameters every row touches whatever its routing, Σ over layers (no experts, no LM head). */
  readonly fixedParams: number;
  /** The matmul part of `fixedParams`. */
  readonly fixedMatmulParams: number;
  /** One routed expert: parameters (with biases) and matmul parameters (3 × hidden × expert FFN). */
  readonly expertParams: number;
  readonly expertMatmulParams: number;
  /** Final norm + LM head matrix (the LM head matrix is multiplied even when tied to the embedding). */
  readonly lmHeadParams: number;
  readonly lmHeadMatmulParams: number;
  /** Σ over layers of the attention FLOPs per attended token. */
  readonly attentionFlopsPerContextToken: number;
  readonly expertSizeBytes: Readonly<Record<ExpertWeightFormat, number>>;
  /** fp32 bytes of the weights every step reads apart from the routed experts (embedding table excluded). */
  readonly denseSizeBytes: number;
}

/** The cost of one computed row. */
export interface RowCompute {
  readonly activeParams: number;
  readonly matmulParams: number;
  readonly flops: number;
  readonly denseEquivalentFlops: number;
}

interface AttentionCost {
  readonly params: number;
  readonly matmul: number;
  /** FLOPs per attended token: 2 × heads × (QK dim + V dim). */
  readonly flopsPerContextToken: number;
}

function attentionCost(a: AttentionShape, h: number): AttentionCost {
  if (a.kind === 'mla') {
    const qkDim = a.qkNopeHeadDim + a.qkRopeHeadDim;
    const q = a.qLoraRank > 0 ? h * a.qLoraRank + a.qLoraRank * a.numHeads * qkDim : h * a.numHeads * qkDim;
    const kv = h * (a.kvLoraRank + a.qkRopeHeadDim) + a.kvLoraRank * a.numHeads * (a.qkNopeHeadDim + a.vHeadDim);
    const matmul = q + kv + a.numHeads * a.vHeadDim * h;
    return {
      params: matmul + a.qLoraRank + a.kvLoraRank,
      matmul,
      flopsPerContextToken: 2 * a.numHeads * (qkDim + a.vHeadDim),
    };
  }
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const matmul = 2 * h * q + 2 * h * kv;
  const biases = (a.qkvBias ? q + 2 * kv : 0) + (a.outputBias ? h : 0);
  const qkNorm = a.qkNorm === 'projection' ? q + kv : a.qkNorm === 'head' ? 2 * a.headDim : 0;
  return {
    params: matmul + biases + qkNorm + (a.sinks ? a.numHeads : 0),
    matmul,
    flopsPerContextToken: 4 * a.numHeads * a.headDim,
  };
}

/** Per-row cost constants of a shape (real-model presets included: MLA, dense layers, biases). */
export function computeModelOfShape(s: ShapeSpec): ComputeModel {
  const h = s.hiddenSize;
  const numMoe = s.numLayers - s.numDenseLayers;
  const attention = attentionCost(s.attention, h);
  const routerMatmul = s.numExperts * h;
  const router = routerMatmul + (s.routerBias ? s.numExperts : 0) + (s.selectionBias ? s.numExperts : 0);
  const shared = s.sharedExpertFfnSize > 0 ? 3 * h * s.sharedExpertFfnSize + (s.sharedExpertGate ? h : 0) : 0;
  const dense = 3 * h * s.denseFfnSize;
  const expertMatmul = 3 * h * s.expertFfnSize;
  const fixedMatmul = s.numLayers * attention.matmul + numMoe * (routerMatmul + shared) + s.numDenseLayers * dense;
  const fixedParams = s.numLayers * (attention.params + 2 * h) + numMoe * (router + shared) + s.numDenseLayers * dense;
  const lmHeadMatmul = s.vocabSize * h;
  return Object.freeze({
    name: s.name,
    numLayers: s.numLayers,
    numDenseLayers: s.numDenseLayers,
    numExperts: s.numExperts,
    topK: s.numExpertsPerToken,
    hiddenSize: h,
    vocabSize: s.vocabSize,
    fixedParams,
    fixedMatmulParams: fixedMatmul,
    expertParams: expertMatmul + (s.expertBias ? 2 * s.expertFfnSize + h : 0),
    expertMatmulParams: expertMatmul,
    lmHeadParams: lmHeadMatmul + h,
    lmHeadMatmulParams: lmHeadMatmul,
    attentionFlopsPerContextToken: s.numLayers * attention.flopsPerContextToken,
    expertSizeBytes: Object.freeze({
      f32: swigluSizeBytes(h, s.expertFfnSize, 'f32'),
      int8: swigluSizeBytes(h, s.expertFfnSize, 'int8'),
    }),
    denseSizeBytes: 4 * (fixedParams + lmHeadMatmul + h),
  });
}

/** Per-row cost constants of a runnable config. */
export function computeModelOf(config: ModelConfig): ComputeModel {
  return computeModelOfShape(shapeOfConfig(config));
}

/** MoE layers of the model (the router runs there). */
export function numMoeLayers(m: ComputeModel): number {
  return m.numLayers - m.numDenseLayers;
}

/**
 * The cost of one row at absolute `position`, given `expertActivations` — Σ over MoE layers of the
 * distinct experts it was routed to (top-k at every layer: numMoeLayers × topK) — and whether its
 * logits were computed.
 */
export function rowCompute(m: ComputeModel, position: number, expertActivations: number, sampled: boolean): RowCompute {
  const head = sampled ? 1 : 0;
  const matmulParams = m.fixedMatmulParams + expertActivations * m.expertMatmulParams + head * m.lmHeadMatmulParams;
  const attention = m.attentionFlopsPerContextToken * (position + 1);
  const denseMatmul =
    m.fixedMatmulParams + numMoeLayers(m) * m.numExperts * m.expertMatmulParams + head * m.lmHeadMatmulParams;
  return {
    activeParams: m.fixedParams + expertActivations * m.expertParams + head * m.lmHeadParams,
    matmulParams,
    flops: 2 * matmulParams + attention,
    denseEquivalentFlops: 2 * denseMatmul + attention,
  };
}

/**
 * FLOPs of prefilling positions [0, numTokens) with top-k routing and no LM head: what a prefix-cache
 * hit of `numTokens` tokens saves. Closed form of Σ_p rowCompute(p).flops.
 */
export function prefillFlops(m: ComputeModel, numTokens: number): number {
  const perRowMatmul = m.fixedMatmulParams + numMoeLayers(m) * m.topK * m.expertMatmulParams;
  return numTokens * 2 * perRowMatmul + (m.attentionFlopsPerContextToken * numTokens * (numTokens + 1)) / 2;
}

/** Aggregates over computed rows (a request's, a step's, a run's). */
export interface ComputeTotals {
  readonly numTokens: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  /** Rows whose logits were computed. */
  readonly numSampled: number;
  readonly activeParams: number;
  readonly flops: number;
  readonly prefillFlops: number;
  readonly decodeFlops: number;
  readonly denseEquivalentFlops: number;
  /** Σ over rows and MoE layers of distinct experts chosen. */
  readonly expertActivations: number;
}

export type MutableTotals = { -readonly [K in keyof ComputeTotals]: ComputeTotals[K] };

export function emptyTotals(): MutableTotals {
  return {
    numTokens: 0,
    numPrefillTokens: 0,
    numDecodeTokens: 0,
    numSampled: 0,
    activeParams: 0,
    flops: 0,
    prefillFlops: 0,
    decodeFlops: 0,
    denseEquivalentFlops: 0,
    expertActivations: 0,
  };
}

/** Adds one row to `into`. `isPrefill`: the row is a prompt position (input), else a generated one. */
export function addRow(
  into: MutableTotals,
  row: RowCompute,
  isPrefill: boolean,
  sampled: boolean,
  expertActivations: number,
): void {
  into.numTokens += 1;
  if (isPrefill) {
    into.numPrefillTokens += 1;
    into.prefillFlops += row.flops;
  } else {
    into.numDecodeTokens += 1;
    into.decodeFlops += row.flops;
  }
  if (sampled) into.numSampled += 1;
  into.activeParams += row.activeParams;
  into.flops += row.flops;
  into.denseEquivalentFlops += row.denseEquivalentFlops;
  into.expertActivations += expertActivations;
}
