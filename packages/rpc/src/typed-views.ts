/**
 * Typed-array views over received bytes. protobuf.js hands bytes fields over as views into the
 * received message, at whatever byte offset the field happened to land; a view needs 4-byte
 * alignment, so an unaligned field is copied once.
 */
import { InvalidArgumentError } from './errors.ts';

export function int32View(bytes: Uint8Array, what: string): Int32Array {
  checkMultipleOf4(bytes, what);
  if (bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Int32Array(copyBytes(bytes));
}

export function float32View(bytes: Uint8Array, what: string): Float32Array {
  checkMultipleOf4(bytes, what);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(copyBytes(bytes));
}

/** A Buffer over a typed array's memory (no copy). */
export function bytesOf(values: Int32Array | Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function checkMultipleOf4(bytes: Uint8Array, what: string): void {
  if (bytes.byteLength % 4 !== 0) {
    throw new InvalidArgumentError(`${what} has ${bytes.byteLength} bytes, not a multiple of 4`);
  }
}

function copyBytes(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}
