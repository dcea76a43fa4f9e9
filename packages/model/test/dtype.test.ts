import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/dtype.ts';

const f16 = (...values: number[]) => Array.from(f32ToF16(Float32Array.from(values)));
const bf16 = (...values: number[]) => Array.from(f32ToBf16(Float32Array.from(values)));

describe('f16', () => {
  it('encodes normals, subnormals, zeros, infinities and NaN', () => {
    expect(f16(1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 0, -0)).toEqual([
      0x3c00, 0xc000, 0x3800, 0x7bff, 0x0400, 0x0001, 0, 0x8000,
    ]);
    expect(f16(Infinity, -Infinity, 65520, 1e-10)).toEqual([0x7c00, 0xfc00, 0x7c00, 0]);
    expect((f16(NaN)[0] ?? 0) & 0x7c00).toBe(0x7c00);
  });

  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(f16(1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20)).toEqual([0x3c00, 0x3c02, 0x3c01]);
  });

  it('decodes every f16 back to the value it encodes', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const widened = f16ToF32(all);
    const again = f32ToF16(widened);
    const mismatches: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (!isNaN && again[h] !== h) mismatches.push(h);
    }
    expect(mismatches).toEqual([]);
    expect(widened[0x3c00]).toBe(1);
    expect(widened[0x0001]).toBe(2 ** -24);
  });
});

describe('bf16', () => {
  it('keeps the top 16 bits, rounding to nearest even', () => {
    expect(bf16(1, -2, Infinity)).toEqual([0x3f80, 0xc000, 0x7f80]);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7 → 1 (even); 1 + 3·2^-8 → 1 + 2^-6 (even).
    expect(bf16(1 + 2 ** -8, 1 + 3 * 2 ** -8)).toEqual([0x3f80, 0x3f82]);
    expect(Number.isNaN(bf16ToF32(Uint16Array.from(bf16(NaN)))[0])).toBe(true);
    expect(Array.from(bf16ToF32(Uint16Array.from([0x3f80, 0xc000])))).toEqual([1, -2]);
  });
});
