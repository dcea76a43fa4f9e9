/** Reference SwiGLU expert: y [N, H] = down(silu(gate(x)) * up(x)), no biases. */
import type { F32Tensor } from '../types.ts';
import { linearRows, silu } from './ops.ts';

export interface ReferenceSwiGluWeights {
  /** [F, H] */
  readonly gate: F32Tensor;
  /** [F, H] */
  readonly up: F32Tensor;
  /** [H, F] */
  readonly down: F32Tensor;
}

export function referenceSwiGlu(w: ReferenceSwiGluWeights, x: Float32Array, numRows: number): Float32Array {
  const gate = linearRows(x, numRows, w.gate);
  const up = linearRows(x, numRows, w.up);
  const hidden = gate.map((g, i) => silu(g) * (up[i] ?? 0));
  return linearRows(hidden, numRows, w.down);
}
