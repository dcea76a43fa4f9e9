/**
 * Reusable graph fragments: linear layers in fp32 or int8 and RMSNorm. Weights arrive in the HF
 * layout [out, in]; the fragments store whatever layout their op wants.
 */
import type { F32Tensor } from '@switchyard/model';
import { attrInt, attrInts, MS_DOMAIN, type GraphBuilder, type Value } from './graph-builder.ts';
import { OnnxDataType } from './onnx-proto.ts';
import { quantizeInt8PerChannel, type Int8PerChannel } from './quantize.ts';
import { transpose2d } from '@switchyard/model';

/**
 * How a linear layer's weight is stored and multiplied. Both int8 formats hold the same per-output-channel
 * symmetric codes and scales (`quantizeInt8PerChannel`), so they multiply by the same dequantised weight.
 * - `fp32`: MatMul with the transposed weight [in, out].
 * - `int8`: `com.microsoft.MatMulNBits` (bits=8, the per-channel scale repeated over K blocks of 128).
 *   With accuracy level 4 (the default) activations are quantised to int8 per row and K block and the
 *   VNNI int8 kernel runs: ≈ 3× faster than fp32 at N=1 when the weights come from memory. What the engine
 *   runs for int8 (kernels.ts `weightFormatOf`). NOTE: a row's result can differ in the last bits between
 *   a one-row call and a call of several rows (a different kernel; measured 7e-7 on an olmoe-size expert),
 *   never by another row's values.
 * - `int8-rows`: the activations are quantised too, per row (symmetric, uint8 with zero point 128), and
 *   `MatMulInteger` multiplies codes by codes (MLAS's u8s8 QGEMM, VNNI on AVX512-VNNI CPUs); the int32
 *   result is scaled by the row's and the column's scales. Per row, so a row's result does not depend on
 *   the other rows of the batch, bit for bit. Against `int8` with weights read from memory (`npm run
 *   bench:kernels`, one [M×2048]·[2048×2048] round-robin over 24 weights): slower up to 16 rows (0.6–0.8×
 *   at one row), faster from 32 (≈ 1.25× at 32, ≈ 1.35× at 64). NOTE: an earlier measurement on one weight,
 *   which stays in cache, had it faster from one row up.
 * - `int8-qdq`: int8 [in, out] + scales → `DequantizeLinear(axis=1)` → MatMul, the portable QDQ form.
 *   NOTE: onnxruntime 1.30 (its DQ → MatMulNBits fusion, optimisation level 'extended' and up) rewrites
 *   this pair into MatMulNBits at session creation, at the accuracy level of the session option
 *   `session.qdq_matmulnbits_accuracy_level` (onnxruntime default 4: int8 activations);
 *   `createSession(…, { exactQdqInt8: true })` sets 0: fp32 activations, exact, slow.
 */
export type WeightFormat = 'fp32' | 'int8' | 'int8-rows' | 'int8-qdq';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'int8', 'int8-rows', 'int8-qdq'];

/**
 * `accuracy_level` of MatMulNBits: 4 quantises activations to int8 per K block (fast); 0 multiplies fp32
 * activations by the dequantised weight (exact, but onnxruntime 1.30's 8-bit kernel then dequantises the
 * whole weight on every call: ≈ 30× slower than fp32).
 */
export type NbitsAccuracyLevel = 0 | 4;

/** MLAS's blocked int8 kernels take block sizes 16…256; 128 suits every K we use. */
function nbitsBlockSize(k: number): number {
  let block = 16;
  while (block < 128 && block < k) block *= 2;
  return block;
}

function int8QdqLinear(
  g: GraphBuilder,
  x: Value,
  name: string,
  quantized: Int8PerChannel,
  out: number,
  inn: number,
): Value {
  const q = g.initializer(`${name}.q`, transposedCodes(quantized, out, inn), [inn, out]);
  const scale = g.initializer(`${name}.scale`, quantized.scales, [out]);
  const zeroPoint = g.initializer(`${name}.zero_point`, new Int8Array(out), [out]);
  const w = g.op('DequantizeLinear', [q, scale, zeroPoint], { axis: attrInt(1) });
  return g.matmul(x, w);
}

/** Codes transposed to the [in, out] layout MatMul-style ops take. */
function transposedCodes(quantized: Int8PerChannel, out: number, inn: number): Int8Array {
  const qT = new Int8Array(out * inn);
  for (let r = 0; r < out; r++) {
    for (let c = 0; c < inn; c++) qT[c * out + r] = quantized.q[r * inn + c] ?? 0;
  }
  return qT;
}

/**
 * x [M, in] → per-row scale s = max|x_row| / 127, codes round(x / s) + 128 (uint8) → MatMulInteger with
 * the int8 weight codes → int32 × s_row × s_col. NOTE: the scale is floored at 1e-30 so an all-zero row
 * (a padding row) gives zeros, not NaN.
 */
function int8RowsLinear(g: GraphBuilder, x: Value, name: string, quantized: Int8PerChannel, out: number, inn: number) {
  const absMax = g.op('ReduceMax', [g.op('Abs', [x])], { axes: attrInts([-1]), keepdims: attrInt(1) });
  const rowScale = g.div(g.op('Max', [absMax, g.scalarF32(1e-30)]), g.scalarF32(127));
  const shifted = g.add(g.op('Round', [g.div(x, rowScale)]), g.scalarF32(128));
  const codes = g.op('Cast', [shifted], { to: attrInt(OnnxDataType.uint8) });
  const q = g.initializer(`${name}.q`, transposedCodes(quantized, out, inn), [inn, out]);
  const aZero = g.initializer(`${name}.a_zero_point`, Uint8Array.from([128]), []);
  const bZero = g.initializer(`${name}.b_zero_point`, new Int8Array(1), []);
  const acc = g.op('MatMulInteger', [codes, q, aZero, bZero]);
  const scaled = g.mul(g.op('Cast', [acc], { to: attrInt(OnnxDataType.float) }), rowScale);
  return g.mul(scaled, g.initializer(`${name}.scale`, quantized.scales, [out]));
}

function int8NbitsLinear(
  g: GraphBuilder,
  x: Value,
  name: string,
  quantized: Int8PerChannel,
  dims: { readonly out: number; readonly inn: number },
  accuracyLevel: NbitsAccuracyLevel,
): Value {
  const { out, inn } = dims;
  const blockSize = nbitsBlockSize(inn);
  const numBlocks = Math.ceil(inn / blockSize);
  const paddedK = numBlocks * blockSize;
  // Codes are uint8 with zero point 128: q_u8 = q_i8 + 128, padding encodes 0.
  const b = new Uint8Array(out * paddedK).fill(128);
  const scales = new Float32Array(out * numBlocks);
  for (let r = 0; r < out; r++) {
    for (let c = 0; c < inn; c++) b[r * paddedK + c] = (quantized.q[r * inn + c] ?? 0) + 128;
    scales.fill(quantized.scales[r] ?? 0, r * numBlocks, (r + 1) * numBlocks);
  }
  const inputs = [
    x,
    g.initializer(`${name}.qb`, b, [out, numBlocks, blockSize]),
    g.initializer(`${name}.scales`, scales, [out, numBlocks]),
    g.initializer(`${name}.zero_points`, new Uint8Array(out * numBlocks).fill(128), [out, numBlocks]),
  ];
  const attrs = {
    K: attrInt(inn),
    N: attrInt(out),
    bits: attrInt(8),
    block_size: attrInt(blockSize),
    accuracy_level: attrInt(accuracyLevel),
  };
  return g.op('MatMulNBits', inputs, attrs, MS_DOMAIN);
}

export interface LinearOptions {
  /** Default `fp32`. */
  readonly format?: WeightFormat;
  /** Only for `int8`; default 4. */
  readonly nbitsAccuracyLevel?: NbitsAccuracyLevel;
  readonly bias?: F32Tensor;
}

/** `x · Wᵀ (+ b)` for x [..., in] and an HF weight [out, in]. */
export function linear(g: GraphBuilder, x: Value, weight: F32Tensor, name: string, options: LinearOptions = {}): Value {
  const [out = 0, inn = 0] = weight.shape;
  const format = options.format ?? 'fp32';
  let y: Value;
  if (format === 'fp32') {
    y = g.matmul(x, g.initializer(`${name}.weight_t`, transpose2d(weight), [inn, out]));
  } else if (format === 'int8-qdq') {
    y = int8QdqLinear(g, x, name, quantizeInt8PerChannel(weight), out, inn);
  } else if (format === 'int8-rows') {
    y = int8RowsLinear(g, x, name, quantizeInt8PerChannel(weight), out, inn);
  } else {
    const level = options.nbitsAccuracyLevel ?? 4;
    y = int8NbitsLinear(g, x, name, quantizeInt8PerChannel(weight), { out, inn }, level);
  }
  const bias = options.bias;
  return bias === undefined ? y : g.add(y, g.initializer(`${name}.bias`, bias.data, [out]));
}

/**
 * RMSNorm over the last axis: `w * x / sqrt(mean(x²) + eps)`, in fp32. Written as the exact
 * Pow → ReduceMean → Add → Sqrt → Div → Mul chain that onnxruntime fuses into SimplifiedLayerNormalization.
 */
export function rmsNorm(g: GraphBuilder, x: Value, weight: F32Tensor, name: string, eps: number): Value {
  const squared = g.op('Pow', [x, g.scalarF32(2)]);
  const meanSquare = g.op('ReduceMean', [squared], { axes: attrInts([-1]), keepdims: attrInt(1) });
  const rms = g.op('Sqrt', [g.add(meanSquare, g.scalarF32(eps))]);
  const w = g.initializer(`${name}.weight`, weight.data, [weight.data.length]);
  return g.mul(g.div(x, rms), w);
}
