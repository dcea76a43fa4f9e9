/** Looking up canonical tensors in a WeightMap, with a typed failure when one is missing or misshapen. */
import { MissingTensorError, TensorShapeError } from './errors.ts';
import type { F32Tensor, WeightMap } from './types.ts';

/** Returns the tensor, checking its shape when `expectedShape` is given. */
export function requireWeight(weights: WeightMap, name: string, expectedShape?: readonly number[]): F32Tensor {
  const t = weights.get(name);
  if (t === undefined) throw new MissingTensorError(name, 'the weight map');
  if (expectedShape !== undefined) {
    const same = t.shape.length === expectedShape.length && t.shape.every((d, k) => d === expectedShape[k]);
    if (!same) throw new TensorShapeError(name, expectedShape, t.shape);
  }
  return t;
}

/** Transposes a 2-D row-major tensor: [rows, cols] → [cols, rows]. */
export function transpose2d(t: F32Tensor): Float32Array {
  const [rows = 0, cols = 0] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c] ?? 0;
  }
  return out;
}

/** Stacks 2-D tensors with equal column counts row-wise: [r1, C] ++ [r2, C] → [r1 + r2, C]. */
export function concatRows(tensors: readonly F32Tensor[]): F32Tensor {
  const cols = tensors[0]?.shape[1] ?? 0;
  const rows = tensors.reduce((n, t) => n + (t.shape[0] ?? 0), 0);
  const data = new Float32Array(rows * cols);
  let offset = 0;
  for (const t of tensors) {
    data.set(t.data, offset);
    offset += t.data.length;
  }
  return { shape: [rows, cols], data };
}
