/**
 * bfloat16 ⇄ float32. bf16 keeps float32's sign and 8-bit exponent and the top 7 mantissa bits, so
 * a conversion is a 16-bit shift with round-to-nearest-even. Relative error ≤ 2⁻⁸ for normal values.
 */

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** Rounds float32 bits to the nearest bf16 (ties to even); NaN stays a (quiet) NaN of the same sign. */
export function bf16BitsFromF32Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Rounds one number to bf16 and widens it back: what a value becomes after a bf16 round trip. */
export function roundToBf16(value: number): number {
  F32_SCRATCH[0] = value;
  U32_SCRATCH[0] = (bf16BitsFromF32Bits(U32_SCRATCH[0] ?? 0) << 16) >>> 0;
  return F32_SCRATCH[0];
}

/** Writes the bf16 little-endian bytes of `values` into `out` (2 bytes per element). */
export function writeBf16(values: Float32Array, out: Uint8Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const half = bf16BitsFromF32Bits(bits[i] ?? 0);
    out[2 * i] = half & 0xff;
    out[2 * i + 1] = half >>> 8;
  }
}

/** Widens bf16 little-endian bytes into `out` (any byte alignment of `bytes` is fine). */
export function readBf16(bytes: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) {
    bits[i] = (((bytes[2 * i + 1] ?? 0) << 24) | ((bytes[2 * i] ?? 0) << 16)) >>> 0;
  }
}
