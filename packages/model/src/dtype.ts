/**
 * Element types of stored tensors and conversions between them. f16 and bf16 are carried as their raw
 * 16-bit patterns in a Uint16Array; reading widens them to f32 (exact), writing narrows f32 with
 * round-to-nearest-even (as PyTorch does).
 */

import type { DType } from './types.ts';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i8: 1 };

/** Element data of a stored tensor, by dtype. */
export type TensorData = Float32Array | Uint16Array | Int8Array;

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

let f16Table: Float32Array | undefined;

/** All 65,536 f16 values as f32, built once (exact: every f16 is an f32). */
function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const exponent = (h >>> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      let value: number;
      if (exponent === 0) value = mantissa * 2 ** -24;
      else if (exponent === 0x1f) value = mantissa === 0 ? Infinity : NaN;
      else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
      f16Table[h] = h & 0x8000 ? -value : value;
    }
  }
  return f16Table;
}

export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i] ?? 0] ?? 0;
  return out;
}

export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const out32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) out32[i] = (bits[i] ?? 0) << 16;
  return out;
}

/** Narrows to bf16, round-to-nearest-even; NaN stays NaN. */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const u = bits[i] ?? 0;
    if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) out[i] = ((u >>> 16) | 0x40) & 0xffff;
    else out[i] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

function f32ToF16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** Narrows to IEEE f16, round-to-nearest-even; overflow becomes ±infinity. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i] ?? 0);
  return out;
}

/** Converts f32 values to the stored representation of `dtype` (i8 is not a float conversion). */
export function encodeFloats(values: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float32Array | Uint16Array {
  if (dtype === 'f32') return values;
  return dtype === 'bf16' ? f32ToBf16(values) : f32ToF16(values);
}
