/**
 * Router scoring: logits → per-expert scores over ALL experts, as Hugging Face does before top-k.
 * Arithmetic is done in float64 and stored as float32, so results are the correctly rounded fp32 values
 * (at most one ulp away from PyTorch's fp32 kernels).
 */
import type { Scoring } from './types.ts';

/** The logistic function 1 / (1 + e^-x); also used for Qwen2-MoE's shared-expert gate. */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * Numerically stable softmax of src[start, start + n) into out[outStart, outStart + n):
 * the row maximum is subtracted before exponentiating, so no term overflows.
 */
export function softmaxRow(src: Float32Array, start: number, n: number, out: Float32Array, outStart: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, src[start + i] ?? 0);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp((src[start + i] ?? 0) - max);
  for (let i = 0; i < n; i++) out[outStart + i] = Math.exp((src[start + i] ?? 0) - max) / sum;
}

/** Element-wise sigmoid of src[start, start + n) into out[outStart, outStart + n). */
export function sigmoidRow(src: Float32Array, start: number, n: number, out: Float32Array, outStart: number): void {
  for (let i = 0; i < n; i++) out[outStart + i] = sigmoid(src[start + i] ?? 0);
}

/** Scores one row of logits with the given scoring function. */
export function scoreRow(
  scoring: Scoring,
  logits: Float32Array,
  start: number,
  numExperts: number,
  out: Float32Array,
  outStart: number,
): void {
  if (scoring === 'softmax') softmaxRow(logits, start, numExperts, out, outStart);
  else sigmoidRow(logits, start, numExperts, out, outStart);
}

/**
 * Scores a [numTokens, numExperts] row-major logits matrix (e.g. for router telemetry).
 * Allocation-free when `out` is passed; `out` may alias `logits`.
 */
export function scoreLogits(
  logits: Float32Array,
  numTokens: number,
  numExperts: number,
  scoring: Scoring,
  out: Float32Array = new Float32Array(numTokens * numExperts),
): Float32Array {
  const size = numTokens * numExperts;
  if (logits.length !== size || out.length < size) {
    throw new RangeError(`scoreLogits: expected ${size} logits (and room in out), got ${logits.length}`);
  }
  for (let t = 0; t < numTokens; t++) scoreRow(scoring, logits, t * numExperts, numExperts, out, t * numExperts);
  return out;
}
