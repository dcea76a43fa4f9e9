/**
 * Plain-loop kernels of the reference forward. Sums run in float64 and results are stored as fp32 at
 * tensor boundaries, which keeps the reference at least as accurate as onnxruntime's fp32 kernels.
 */
import type { F32Tensor } from '../types.ts';

/** y [rows, out] = x [rows, in] · Wᵀ (+ b), for an HF weight W [out, in]. */
export function linearRows(x: Float32Array, rows: number, weight: F32Tensor, bias?: F32Tensor): Float32Array {
  const [out = 0, inn = 0] = weight.shape;
  const w = weight.data;
  const y = new Float32Array(rows * out);
  for (let r = 0; r < rows; r++) {
    const xOff = r * inn;
    for (let o = 0; o < out; o++) {
      const wOff = o * inn;
      let sum = bias === undefined ? 0 : (bias.data[o] ?? 0);
      for (let c = 0; c < inn; c++) sum += (x[xOff + c] ?? 0) * (w[wOff + c] ?? 0);
      y[r * out + o] = sum;
    }
  }
  return y;
}

/**
 * RMSNorm over consecutive chunks of `dim` values: `w * x / sqrt(mean(x²) + eps)`. `weight` has `dim`
 * entries and is applied to every chunk (per-head norms pass dim = headDim).
 */
export function rmsNormChunks(x: Float32Array, dim: number, weight: F32Tensor, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let off = 0; off < x.length; off += dim) {
    let sumSquares = 0;
    for (let c = 0; c < dim; c++) sumSquares += (x[off + c] ?? 0) ** 2;
    const inv = 1 / Math.sqrt(sumSquares / dim + eps);
    for (let c = 0; c < dim; c++) y[off + c] = (weight.data[c] ?? 0) * (x[off + c] ?? 0) * inv;
  }
  return y;
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

export function silu(v: number): number {
  return v * sigmoid(v);
}

/** Softmax of a list of numbers (max-subtracted, float64). */
export function softmax(values: readonly number[] | Float32Array): number[] {
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  const exps = Array.from(values, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * RoPE in the rotate_half (GPT-NeoX) layout on `numHeads` heads of `headDim` per row, in place:
 * for i < D/2, angle = position · theta^(-2i/D),
 * x'[i] = x[i]·cos − x[i+D/2]·sin and x'[i+D/2] = x[i+D/2]·cos + x[i]·sin.
 */
export function applyRopeInPlace(
  x: Float32Array,
  positions: readonly number[],
  numHeads: number,
  headDim: number,
  theta: number,
): void {
  const half = headDim / 2;
  positions.forEach((position, row) => {
    for (let i = 0; i < half; i++) {
      const angle = position * Math.pow(theta, (-2 * i) / headDim);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      for (let head = 0; head < numHeads; head++) {
        const off = (row * numHeads + head) * headDim;
        const a = x[off + i] ?? 0;
        const b = x[off + i + half] ?? 0;
        x[off + i] = a * cos - b * sin;
        x[off + i + half] = b * cos + a * sin;
      }
    }
  });
}

/** Row-wise element access helper: a [rows, cols] slice view of row r. */
export function row(x: Float32Array, cols: number, r: number): Float32Array {
  return x.subarray(r * cols, (r + 1) * cols);
}
