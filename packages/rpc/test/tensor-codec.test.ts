import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  TensorFormatError,
  decodeBf16,
  decodeF32,
  encodeBf16,
  encodeF32,
  roundToBf16,
  validateTensor,
} from '../src/index.ts';
import type { Tensor } from '../src/index.ts';

describe('f32 tensors', () => {
  it('encodes without copying: the tensor bytes are the array memory', () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6]);
    const tensor = encodeF32(values, [2, 3]);
    values[0] = 42;
    expect(tensor.data.readFloatLE(0)).toBe(42);
    expect(tensor).toMatchObject({ dtype: 'DTYPE_F32', shape: [2, 3] });
  });

  it('decodes aligned bytes as a view and unaligned bytes as a copy with the same values', () => {
    const aligned = encodeF32(new Float32Array([1.5, -2.25]), [2]);
    const view = decodeF32(aligned);
    expect(view.buffer).toBe(aligned.data.buffer);

    const backing = Buffer.alloc(9);
    const unalignedData = backing.subarray(1);
    unalignedData.writeFloatLE(1.5, 0);
    unalignedData.writeFloatLE(-2.25, 4);
    const copy = decodeF32({ dtype: 'DTYPE_F32', shape: [2], data: unalignedData });
    expect(copy.buffer).not.toBe(backing.buffer);
    expect([...copy]).toEqual([1.5, -2.25]);
  });

  it('rejects a byte length that does not match the shape with a TensorFormatError (INVALID_ARGUMENT)', () => {
    const tensor: Tensor = { dtype: 'DTYPE_F32', shape: [2, 3], data: Buffer.alloc(20) };
    expect(() => validateTensor(tensor)).toThrow(TensorFormatError);
    try {
      decodeF32(tensor);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', name: 'TensorFormatError' });
    }
  });

  it('rejects an unspecified dtype, a negative dimension and a dtype mismatch', () => {
    expect(() => validateTensor({ dtype: 'DTYPE_UNSPECIFIED', shape: [1], data: Buffer.alloc(4) })).toThrow(
      TensorFormatError,
    );
    expect(() => validateTensor({ dtype: 'DTYPE_F32', shape: [-1], data: Buffer.alloc(0) })).toThrow(TensorFormatError);
    expect(() => decodeF32({ dtype: 'DTYPE_I32', shape: [1], data: Buffer.alloc(4) })).toThrow(TensorFormatError);
    expect(() => encodeF32(new Float32Array(5), [2, 3])).toThrow(TensorFormatError);
  });

  it('accepts every dtype at its element size', () => {
    const sizes = { DTYPE_F32: 4, DTYPE_BF16: 2, DTYPE_F16: 2, DTYPE_I8: 1, DTYPE_I32: 4, DTYPE_I64: 8 } as const;
    for (const [dtype, size] of Object.entries(sizes)) {
      expect(() =>
        validateTensor({ dtype: dtype as Tensor['dtype'], shape: [3, 2], data: Buffer.alloc(6 * size) }),
      ).not.toThrow();
    }
  });
});

describe('bf16 tensors', () => {
  it('keeps values that bf16 represents exactly, including signed zero and infinities', () => {
    const values = new Float32Array([0, -0, 1, -2, 0.5, 3.75, Infinity, -Infinity, 2 ** -126]);
    const decoded = decodeBf16(encodeBf16(values, [values.length]));
    expect([...decoded]).toEqual([...values]);
    expect(Object.is(decoded[1], -0)).toBe(true);
  });

  it('rounds ties to even', () => {
    expect(roundToBf16(1 + 2 ** -8)).toBe(1);
    expect(roundToBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect(roundToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7);
  });

  it('stays within a relative error of 2^-8 on normal values and keeps NaN a NaN', () => {
    const values = new Float32Array(10_000);
    let state = 7;
    for (let i = 0; i < values.length; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      values[i] = (state / 2 ** 32 - 0.5) * 10 ** ((i % 13) - 6);
    }
    const decoded = decodeBf16(encodeBf16(values, [values.length]));
    let worst = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i] ?? 0;
      if (value !== 0) worst = Math.max(worst, Math.abs((decoded[i] ?? 0) - value) / Math.abs(value));
    }
    expect(worst).toBeLessThanOrEqual(2 ** -8);
    expect(worst).toBeGreaterThan(2 ** -10);
    expect(Number.isNaN(roundToBf16(NaN))).toBe(true);
  });

  it('uses two bytes per element and decodes at any byte alignment', () => {
    const tensor = encodeBf16(new Float32Array([1, 2, 3]), [3]);
    expect(tensor.data.byteLength).toBe(6);
    const shifted = Buffer.alloc(7).subarray(1);
    tensor.data.copy(shifted);
    expect([...decodeBf16({ dtype: 'DTYPE_BF16', shape: [3], data: shifted })]).toEqual([1, 2, 3]);
  });
});
