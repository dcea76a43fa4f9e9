/**
 * Token economics from shapes alone (no run): price per device-hour and a throughput in, cost per
 * million tokens and what MoE sparsity, int8 experts and prefix-cache hits save out. Pure.
 *
 * Throughput (define once, use everywhere): tokens per second **per device** (the cluster's rate ÷
 * its devices). Given one blended rate, input and output tokens cost the same device time; given
 * separate rates, each phase is priced as if a device did only that phase at that rate (disaggregated
 * prefill and decode), so cost per million = price per device-second ÷ rate × 10⁶.
 *
 * Savings, each against the same model without that one feature:
 * - MoE sparsity: a dense model of the same total size does dense-equivalent FLOPs per token; at the
 *   same FLOP rate it would cost (dense ÷ active FLOPs) times as much.
 * - int8 experts: decode at small batch is memory-bound, so its time scales with the weight bytes read
 *   per token: the dense weights (fp32) plus top-k experts per MoE layer in fp32 or int8. The measured
 *   throughput is taken to be in `expertFormat`; the other format's cost is scaled by the byte ratio.
 * - Prefix cache: a hit skips the prefill of the cached prefix (the first tokens of the prompt), so it
 *   saves exactly those positions' share of prefill FLOPs — a little less than the hit rate, since early
 *   positions attend to fewer tokens.
 */

import { countParams, getRealModel, type ExpertWeightFormat, type ShapeSpec } from '@switchyard/model';
import {
  computeModelOfShape,
  numMoeLayers,
  prefillFlops,
  rowCompute,
  type ComputeModel,
} from './compute-accounting.ts';

export class EconomicsError extends Error {
  override readonly name = 'EconomicsError';
  readonly code = 'invalid_economics' as const;
}

/** US dollars per million tokens for a device-hour price and a per-device rate. */
export function costPerMillionTokensUsd(deviceHourUsd: number, tokensPerSecond: number): number {
  if (!(tokensPerSecond > 0)) throw new EconomicsError(`tokens per second must be positive, got ${tokensPerSecond}`);
  if (!(deviceHourUsd >= 0)) throw new EconomicsError(`the device-hour price must be ≥ 0, got ${deviceHourUsd}`);
  return ((deviceHourUsd / 3600) * 1e6) / tokensPerSecond;
}

export interface Throughput {
  readonly inputTokensPerSecond: number;
  readonly outputTokensPerSecond: number;
}

/** One blended rate, optionally overridden per phase. */
export function throughputOf(tokensPerSecond: number, input?: number, output?: number): Throughput {
  return { inputTokensPerSecond: input ?? tokensPerSecond, outputTokensPerSecond: output ?? tokensPerSecond };
}

export interface ShapeEconomicsOptions {
  readonly deviceHourUsd: number;
  readonly throughput: Throughput;
  /** Expert format the throughput was measured with. */
  readonly expertFormat: ExpertWeightFormat;
  /** Prompt length behind the per-token figures: an output token attends to this many tokens. */
  readonly contextTokens: number;
  /** Fraction of prompt tokens found in the prefix cache (0 ≤ rate < 1). */
  readonly prefixHitRate: number;
}

export interface ShapeEconomics {
  readonly model: string;
  readonly totalParams: number;
  /** Publisher convention (params.ts): embedding, norms, router, top-k and shared experts, LM head. */
  readonly activeParamsPerToken: number;
  readonly activeFraction: number;
  readonly published?: { readonly totalParams: number; readonly activeParams: number; readonly activeFraction: number };
  readonly contextTokens: number;
  /** An output token: a decode row at position `contextTokens` with the LM head. */
  readonly flopsPerOutputToken: number;
  readonly denseEquivalentFlopsPerOutputToken: number;
  /** A prompt token, averaged over positions [0, contextTokens), no LM head. */
  readonly flopsPerInputToken: number;
  readonly denseEquivalentFlopsPerInputToken: number;
  readonly costPerMillionInputUsd: number;
  readonly costPerMillionOutputUsd: number;
  readonly savings: ShapeSavings;
}

export interface ShapeSavings {
  readonly moeSparsity: {
    /** 1 − active ÷ dense-equivalent FLOPs (output tokens). */
    readonly flopsFraction: number;
    readonly usdPerMillionInput: number;
    readonly usdPerMillionOutput: number;
  };
  readonly int8Experts: {
    /** The measured throughput already ran int8 experts. */
    readonly applied: boolean;
    readonly weightBytesPerOutputTokenFp32: number;
    readonly weightBytesPerOutputTokenInt8: number;
    /** fp32 ÷ int8 bytes: decode speed-up when memory-bound. */
    readonly memoryBoundSpeedup: number;
    /** Cost per million output tokens with fp32 experts minus with int8 experts. */
    readonly usdPerMillionOutput: number;
  };
  readonly prefixCache: {
    readonly hitRate: number;
    /** Share of prefill FLOPs skipped. */
    readonly prefillFlopsFraction: number;
    readonly usdPerMillionInput: number;
  };
}

/** Economics of a real-model preset by name. */
export function presetEconomics(name: string, options: ShapeEconomicsOptions): ShapeEconomics {
  const real = getRealModel(name);
  const e = shapeEconomics(real.shape, options);
  const p = real.published;
  return {
    ...e,
    published: {
      totalParams: p.totalParams,
      activeParams: p.activeParams,
      activeFraction: p.activeParams / p.totalParams,
    },
  };
}

export function shapeEconomics(shape: ShapeSpec, options: ShapeEconomicsOptions): ShapeEconomics {
  const { deviceHourUsd, throughput, contextTokens, prefixHitRate, expertFormat } = options;
  if (!Number.isInteger(contextTokens) || contextTokens < 1)
    throw new EconomicsError(`context tokens must be a positive integer, got ${contextTokens}`);
  if (!(prefixHitRate >= 0 && prefixHitRate < 1))
    throw new EconomicsError(`the prefix hit rate must be in [0, 1), got ${prefixHitRate}`);
  const counts = countParams(shape);
  const m = computeModelOfShape(shape);
  const topK = numMoeLayers(m) * m.topK;
  const output = rowCompute(m, contextTokens, topK, true);
  const inputFlops = prefillFlops(m, contextTokens) / contextTokens;
  const inputDense = inputFlops + 2 * numMoeLayers(m) * (m.numExperts - m.topK) * m.expertMatmulParams;
  const costIn = costPerMillionTokensUsd(deviceHourUsd, throughput.inputTokensPerSecond);
  const costOut = costPerMillionTokensUsd(deviceHourUsd, throughput.outputTokensPerSecond);
  return {
    model: shape.name,
    totalParams: counts.totalParams,
    activeParamsPerToken: counts.activeParamsPerToken,
    activeFraction: counts.activeParamsPerToken / counts.totalParams,
    contextTokens,
    flopsPerOutputToken: output.flops,
    denseEquivalentFlopsPerOutputToken: output.denseEquivalentFlops,
    flopsPerInputToken: inputFlops,
    denseEquivalentFlopsPerInputToken: inputDense,
    costPerMillionInputUsd: costIn,
    costPerMillionOutputUsd: costOut,
    savings: {
      moeSparsity: {
        flopsFraction: 1 - output.flops / output.denseEquivalentFlops,
        usdPerMillionInput: costIn * (inputDense / inputFlops - 1),
        usdPerMillionOutput: costOut * (output.denseEquivalentFlops / output.flops - 1),
      },
      int8Experts: int8Savings(m, expertFormat, costOut),
      prefixCache: prefixSavings(m, contextTokens, prefixHitRate, costIn),
    },
  };
}

/** Weight bytes one decode token reads at batch 1: dense weights plus top-k experts per MoE layer. */
export function weightBytesPerToken(m: ComputeModel, format: ExpertWeightFormat): number {
  return m.denseSizeBytes + numMoeLayers(m) * m.topK * m.expertSizeBytes[format];
}

function int8Savings(m: ComputeModel, measured: ExpertWeightFormat, costOut: number): ShapeSavings['int8Experts'] {
  const fp32 = weightBytesPerToken(m, 'f32');
  const int8 = weightBytesPerToken(m, 'int8');
  const speedup = fp32 / int8;
  const costFp32 = measured === 'f32' ? costOut : costOut * speedup;
  const costInt8 = measured === 'int8' ? costOut : costOut / speedup;
  return {
    applied: measured === 'int8',
    weightBytesPerOutputTokenFp32: fp32,
    weightBytesPerOutputTokenInt8: int8,
    memoryBoundSpeedup: speedup,
    usdPerMillionOutput: costFp32 - costInt8,
  };
}

function prefixSavings(
  m: ComputeModel,
  contextTokens: number,
  hitRate: number,
  costIn: number,
): ShapeSavings['prefixCache'] {
  const cached = Math.floor(hitRate * contextTokens);
  const fraction = prefillFlops(m, cached) / prefillFlops(m, contextTokens);
  return { hitRate, prefillFlopsFraction: fraction, usdPerMillionInput: costIn * fraction };
}
