/**
 * Per-output-channel symmetric int8 weight quantisation (docs/architecture.md §3): for a weight [out, in],
 * `scale[r] = max|w[r, :]| / 127`, `q[r, c] = round(w[r, c] / scale[r])` clamped to [-127, 127]
 * (round half away from zero). Dequantised: `w ≈ q * scale` computed in fp32, exactly as
 * `DequantizeLinear` does.
 */
import type { F32Tensor } from '@switchyard/model';

export interface Int8PerChannel {
  /** Same layout as the weight: [out, in], row-major. */
  readonly q: Int8Array;
  /** One scale per output channel (row); 0 for an all-zero row (whose q is all 0). */
  readonly scales: Float32Array;
}

function matrixDims(weight: F32Tensor): { rows: number; cols: number } {
  const [rows, cols] = weight.shape;
  if (weight.shape.length !== 2 || rows === undefined || cols === undefined) {
    throw new Error(`expected a 2-D weight, got shape [${weight.shape.join(', ')}]`);
  }
  return { rows, cols };
}

export function quantizeInt8PerChannel(weight: F32Tensor): Int8PerChannel {
  const { rows, cols } = matrixDims(weight);
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = weight.data.subarray(r * cols, (r + 1) * cols);
    let maxAbs = 0;
    for (const w of row) maxAbs = Math.max(maxAbs, Math.abs(w));
    const scale = Math.fround(maxAbs / 127);
    scales[r] = scale;
    if (scale === 0) continue;
    for (let c = 0; c < cols; c++) {
      const x = (row[c] ?? 0) / scale;
      const rounded = Math.sign(x) * Math.round(Math.abs(x));
      q[r * cols + c] = Math.max(-127, Math.min(127, rounded));
    }
  }
  return { q, scales };
}

/** The fp32 weight an int8 graph actually multiplies by: `fround(q * scale)`. */
export function dequantizeInt8PerChannel(shape: readonly number[], quantized: Int8PerChannel): F32Tensor {
  const cols = shape[1] ?? 0;
  const data = new Float32Array(quantized.q.length);
  for (let k = 0; k < data.length; k++) {
    data[k] = (quantized.q[k] ?? 0) * (quantized.scales[Math.floor(k / cols)] ?? 0);
  }
  return { shape: [...shape], data };
}
