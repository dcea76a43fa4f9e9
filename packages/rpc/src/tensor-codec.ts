/**
 * Tensor ⇄ typed array. Encoding f32 never copies (the Tensor's Buffer is a view over the
 * Float32Array's memory); decoding f32 copies only when the received bytes are not 4-byte aligned.
 * All wire data is little-endian; this module refuses to load on a big-endian host.
 */
import { endianness } from 'node:os';
import { readBf16, writeBf16 } from './bf16.ts';
import { TensorFormatError } from './errors.ts';
import type { DType, Tensor } from './wire-types.ts';

if (endianness() !== 'LE') throw new Error('@switchyard/rpc assumes a little-endian host');

/** Bytes per element of each dtype. */
export const DTYPE_SIZE_BYTES: Readonly<Record<DType, number>> = {
  DTYPE_UNSPECIFIED: 0,
  DTYPE_F32: 4,
  DTYPE_BF16: 2,
  DTYPE_F16: 2,
  DTYPE_I8: 1,
  DTYPE_I32: 4,
  DTYPE_I64: 8,
};

/** Number of elements of a shape (1 for rank 0). */
export function numElements(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/**
 * Throws TensorFormatError unless the dtype is a real one, every dimension is a non-negative safe
 * integer and data.byteLength = product(shape) × sizeof(dtype).
 */
export function validateTensor(tensor: Tensor): void {
  const sizeBytes = DTYPE_SIZE_BYTES[tensor.dtype] as number | undefined;
  if (sizeBytes === undefined || sizeBytes === 0) {
    throw new TensorFormatError(`tensor dtype ${String(tensor.dtype)} is not a valid element type`);
  }
  for (const dim of tensor.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TensorFormatError(`tensor shape [${tensor.shape.join(', ')}] has an invalid dimension`);
    }
  }
  const expectedBytes = numElements(tensor.shape) * sizeBytes;
  if (tensor.data.byteLength !== expectedBytes) {
    throw new TensorFormatError(
      `tensor of shape [${tensor.shape.join(', ')}] and ${tensor.dtype} needs ${expectedBytes} bytes, got ${tensor.data.byteLength}`,
    );
  }
}

/** An F32 tensor whose data is a view over `values` (no copy): do not mutate `values` until sent. */
export function encodeF32(values: Float32Array, shape: readonly number[]): Tensor {
  checkElementCount(values.length, shape);
  const data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return { dtype: 'DTYPE_F32', shape, data };
}

/** A BF16 tensor of `values` rounded to nearest even (a new 2-byte-per-element buffer). */
export function encodeBf16(values: Float32Array, shape: readonly number[]): Tensor {
  checkElementCount(values.length, shape);
  const data = Buffer.allocUnsafeSlow(values.length * 2);
  writeBf16(values, data);
  return { dtype: 'DTYPE_BF16', shape, data };
}

/** The values of an F32 tensor: a view when the bytes are 4-byte aligned, else a copy. */
export function decodeF32(tensor: Tensor): Float32Array {
  expectDType(tensor, 'DTYPE_F32');
  validateTensor(tensor);
  const { data } = tensor;
  if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  const copy = new Float32Array(data.byteLength / 4);
  new Uint8Array(copy.buffer).set(data);
  return copy;
}

/** The values of a BF16 tensor widened to float32 (always a new array). */
export function decodeBf16(tensor: Tensor): Float32Array {
  expectDType(tensor, 'DTYPE_BF16');
  validateTensor(tensor);
  const out = new Float32Array(tensor.data.byteLength / 2);
  readBf16(tensor.data, out);
  return out;
}

/** The values of an F32 or BF16 tensor as float32; any other dtype is a TensorFormatError. */
export function decodeFloat(tensor: Tensor): Float32Array {
  return tensor.dtype === 'DTYPE_BF16' ? decodeBf16(tensor) : decodeF32(tensor);
}

/** Encodes `values` in the requested float wire format. */
export function encodeFloat(values: Float32Array, shape: readonly number[], format: FloatFormat): Tensor {
  return format === 'bf16' ? encodeBf16(values, shape) : encodeF32(values, shape);
}

/** Float formats the data plane can use on the wire: f32 (the default, bit-exact) or bf16. */
export type FloatFormat = 'f32' | 'bf16';

function expectDType(tensor: Tensor, dtype: DType): void {
  if (tensor.dtype !== dtype) {
    throw new TensorFormatError(`expected a ${dtype} tensor, got ${String(tensor.dtype)}`);
  }
}

function checkElementCount(length: number, shape: readonly number[]): void {
  if (numElements(shape) !== length) {
    throw new TensorFormatError(`${length} values do not fill shape [${shape.join(', ')}]`);
  }
}
