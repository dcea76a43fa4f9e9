/**
 * Streaming, byte-deterministic safetensors writing. The header is computed from the tensors'
 * descriptors up front; then each tensor's data is pulled (a value or a thunk), written in chunks and
 * dropped, so writing a multi-GB model holds about one tensor in memory. Same tensors → same bytes.
 *
 * The file is written as `<path>.partial` and renamed into place when complete, so a crash never
 * leaves a truncated file under the real name.
 */

import type { Hash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { encodeFloats } from './dtype.ts';
import type { TensorData } from './dtype.ts';
import { TensorDtypeError, TensorShapeError } from './errors.ts';
import { layOut } from './safetensors-format.ts';
import type { TensorDescriptor } from './safetensors-format.ts';
import type { DType } from './types.ts';
import { numElements } from './weight-layout.ts';

/**
 * A tensor's data: a value; a function that produces it when the writer reaches it; or a function
 * producing it as consecutive chunks (in the stored representation, or f32 for a float dtype). The
 * writer is done with a chunk before it requests the chunk after next, so a producer may rotate two
 * buffers (see `ChunkBuffers`).
 */
export type TensorDataSource =
  | TensorData
  | (() => TensorData | Promise<TensorData>)
  | { readonly chunks: () => Iterable<TensorData> | AsyncIterable<TensorData> };

export interface TensorToWrite extends TensorDescriptor {
  /** Float32Array for f32 (also accepted, and narrowed, for f16/bf16); raw bits in a Uint16Array for f16/bf16; Int8Array for i8. */
  readonly data: TensorDataSource;
}

/** Called after every chunk with cumulative bytes written and the total to write. */
export type ProgressCallback = (bytesWritten: number, totalBytes: number) => void;

export interface WriteSafetensorsOptions {
  readonly metadata?: Readonly<Record<string, string>>;
  readonly onProgress?: ProgressCallback;
  /** Updated with every byte written, in file order (lets a caller hash several shards as one stream). */
  readonly hash?: Hash;
}

/** Chunk size for writes, hashing and progress: large enough to be cheap, small enough to report often. */
const CHUNK_BYTES = 16 << 20;

function toBytes(name: string, dtype: DType, data: TensorData): Uint8Array {
  let stored: TensorData = data;
  if (data instanceof Float32Array && (dtype === 'f16' || dtype === 'bf16')) stored = encodeFloats(data, dtype);
  const matches =
    (dtype === 'f32' && stored instanceof Float32Array) ||
    ((dtype === 'f16' || dtype === 'bf16') && stored instanceof Uint16Array) ||
    (dtype === 'i8' && stored instanceof Int8Array);
  if (!matches) throw new TensorDtypeError(name, dtype, stored.constructor.name);
  return new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
}

async function* pieces(source: TensorDataSource): AsyncGenerator<TensorData> {
  if (typeof source === 'function') yield await source();
  else if ('chunks' in source) yield* source.chunks();
  else yield source;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** Writes `tensors` to `path` as safetensors. Returns the file size. */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  options: WriteSafetensorsOptions = {},
): Promise<{ readonly sizeBytes: number }> {
  const layout = layOut(tensors, options.metadata);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  if (byName.size !== tensors.length) {
    const duplicate = tensors.find((t, i) => tensors.findIndex((u) => u.name === t.name) !== i);
    throw new Error(`bug: tensor "${duplicate?.name ?? '?'}" is listed twice`);
  }
  const partial = `${path}.partial`;
  const handle = await open(partial, 'w');
  let written = 0;
  // One write in flight while the next chunk is produced and hashed: generation, hashing and the
  // write system call overlap. `pending` is awaited before the next write starts, which is what makes
  // the two-buffer rotation of chunk producers safe.
  let pending: Promise<void> = Promise.resolve();
  const emit = async (bytes: Uint8Array): Promise<void> => {
    for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
      const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + CHUNK_BYTES));
      options.hash?.update(chunk);
      await pending;
      pending = writeAll(handle, chunk);
      written += chunk.length;
      options.onProgress?.(written, layout.fileBytes);
    }
  };
  try {
    try {
      await emit(layout.headerBytes);
      for (const entry of layout.entries) {
        const source = byName.get(entry.name)?.data;
        if (source === undefined) throw new Error(`bug: layout lists "${entry.name}" but no tensor has that name`);
        let elements = 0;
        for await (const piece of pieces(source)) {
          elements += piece.length;
          if (elements > numElements(entry.shape)) break;
          await emit(toBytes(entry.name, entry.dtype, piece));
        }
        if (elements !== numElements(entry.shape)) throw new TensorShapeError(entry.name, entry.shape, [elements]);
      }
      await pending;
    } finally {
      await pending.catch(() => undefined);
      await handle.close();
    }
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  await rename(partial, path);
  return { sizeBytes: layout.fileBytes };
}
