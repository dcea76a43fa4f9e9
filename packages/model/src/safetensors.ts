/**
 * Lazy safetensors reading. `SafetensorsFile.open` reads and validates only the header; each tensor's
 * bytes are read on demand with positional reads straight into the typed array that is returned, so a
 * large checkpoint is never held in memory twice. f16 and bf16 are widened to f32 on read.
 *
 * NOTE: tensor bytes are little-endian and are read into typed arrays as they are; every platform
 * Node supports in practice is little-endian, and `open` refuses to run on one that is not.
 */

import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { bf16ToF32, f16ToF32 } from './dtype.ts';
import { MissingTensorError, SafetensorsFormatError, TensorDtypeError, TensorShapeError } from './errors.ts';
import { MAX_HEADER_BYTES, fromHeaderDtype, parseHeader } from './safetensors-format.ts';
import type { HeaderEntry, SafetensorsDtype } from './safetensors-format.ts';
import type { F32Tensor } from './types.ts';
import { numElements } from './weight-layout.ts';

/** Where a tensor lives and what it is, without its data. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A tensor as loaded: floats widened to f32, int8 kept as int8. */
export type LoadedTensor =
  | { readonly dtype: 'f32'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'i8'; readonly shape: readonly number[]; readonly data: Int8Array };

/** Read access to named tensors, one at a time (a single file or a sharded checkpoint). */
export interface TensorReader {
  readonly tensorNames: readonly string[];
  info(name: string): TensorInfo | undefined;
  /** Reads one tensor. Throws MissingTensorError, or TensorDtypeError for a dtype we cannot load. */
  read(name: string): Promise<LoadedTensor>;
  /** Reads one float tensor as f32, checking its shape when `expectedShape` is given. */
  readF32(name: string, expectedShape?: readonly number[]): Promise<F32Tensor>;
  close(): Promise<void>;
}

/** Largest single positional read (Node caps one read below 2 GiB). */
const MAX_READ_BYTES = 1 << 30;

async function readFully(handle: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(MAX_READ_BYTES, target.length - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) throw new SafetensorsFormatError(file, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Widens to f32 or checks the shape: the shared tail of every `readF32`. */
export function toF32Tensor(name: string, tensor: LoadedTensor, expectedShape?: readonly number[]): F32Tensor {
  if (tensor.dtype !== 'f32') throw new TensorDtypeError(name, 'f32, f16 or bf16', tensor.dtype);
  if (expectedShape !== undefined && !sameShape(expectedShape, tensor.shape)) {
    throw new TensorShapeError(name, expectedShape, tensor.shape);
  }
  return { shape: tensor.shape, data: tensor.data };
}

/** One open safetensors file. Invariant: the header was validated against the file size at open. */
export class SafetensorsFile implements TensorReader {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensorNames: readonly string[];
  private readonly handle: FileHandle;
  private readonly infos: ReadonlyMap<string, TensorInfo>;

  private constructor(
    path: string,
    handle: FileHandle,
    metadata: Readonly<Record<string, string>>,
    infos: Map<string, TensorInfo>,
  ) {
    this.path = path;
    this.handle = handle;
    this.metadata = metadata;
    this.infos = infos;
    this.tensorNames = [...infos.keys()].sort();
  }

  /** Opens `path` and validates its header. Throws SafetensorsFormatError for a malformed file. */
  static async open(path: string): Promise<SafetensorsFile> {
    if (endianness() !== 'LE') throw new SafetensorsFormatError(path, 'reading safetensors needs a little-endian host');
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size < 8) throw new SafetensorsFormatError(path, `file is ${size} bytes, too short for a header`);
      const prefix = new Uint8Array(8);
      await readFully(handle, prefix, 0, path);
      const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
      if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
        throw new SafetensorsFormatError(
          path,
          `header length ${headerLength} exceeds the file (${size} bytes) or the ${MAX_HEADER_BYTES}-byte limit`,
        );
      }
      const headerBytes = new Uint8Array(Number(headerLength));
      await readFully(handle, headerBytes, 8, path);
      const dataStart = 8 + headerBytes.length;
      const header = parseHeader(
        new TextDecoder('utf-8', { fatal: false }).decode(headerBytes),
        size - dataStart,
        path,
      );
      const infos = new Map<string, TensorInfo>();
      for (const entry of header.entries) infos.set(entry.name, infoOf(entry, path, dataStart));
      return new SafetensorsFile(path, handle, Object.freeze(header.metadata), infos);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  info(name: string): TensorInfo | undefined {
    return this.infos.get(name);
  }

  async read(name: string): Promise<LoadedTensor> {
    const info = this.infos.get(name);
    if (info === undefined) throw new MissingTensorError(name, this.path);
    const dtype = fromHeaderDtype(info.dtype);
    if (dtype === undefined) throw new TensorDtypeError(name, 'F32, F16, BF16 or I8', info.dtype);
    const count = numElements(info.shape);
    switch (dtype) {
      case 'f32': {
        const data = new Float32Array(count);
        await readFully(this.handle, new Uint8Array(data.buffer), info.byteOffset, this.path);
        return { dtype: 'f32', shape: info.shape, data };
      }
      case 'f16':
      case 'bf16': {
        const bits = new Uint16Array(count);
        await readFully(this.handle, new Uint8Array(bits.buffer), info.byteOffset, this.path);
        return { dtype: 'f32', shape: info.shape, data: dtype === 'bf16' ? bf16ToF32(bits) : f16ToF32(bits) };
      }
      case 'i8': {
        const data = new Int8Array(count);
        await readFully(this.handle, new Uint8Array(data.buffer), info.byteOffset, this.path);
        return { dtype: 'i8', shape: info.shape, data };
      }
    }
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<F32Tensor> {
    const info = this.infos.get(name);
    // Check the shape before reading the bytes: a mismatch should not cost a large read.
    if (info !== undefined && expectedShape !== undefined && !sameShape(expectedShape, info.shape)) {
      throw new TensorShapeError(name, expectedShape, info.shape);
    }
    return toF32Tensor(name, await this.read(name), expectedShape);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function infoOf(entry: HeaderEntry, file: string, dataStart: number): TensorInfo {
  return {
    name: entry.name,
    dtype: entry.dtype,
    shape: entry.shape,
    file,
    byteOffset: dataStart + entry.begin,
    byteLength: entry.end - entry.begin,
  };
}
