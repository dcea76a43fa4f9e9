/**
 * KV page extents on the wire (pure: no I/O). An extent is the concatenation, in `blockHashes`
 * order, of equally sized encoded pages, each holding one block's K and V for all layers.
 * Senders coalesce small extents to ≥ minExtentBytes and cut each into chunks of ≤ maxChunkBytes;
 * receivers reassemble them with an ExtentAssembler.
 */
import { DataLossError, InvalidArgumentError, ResourceExhaustedError } from './errors.ts';
import type { WireKvPageChunk } from './wire-types.ts';

export interface KvExtent {
  /** The blocks covered, in order; page i of n is bytes [i·size/n, (i+1)·size/n) of `data`. */
  readonly blockHashes: readonly string[];
  readonly data: Uint8Array;
}

export const MIN_EXTENT_BYTES = 1024 * 1024;
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** Room left in each chunk message for its non-data fields (tags, lengths, indices). */
const CHUNK_OVERHEAD_BYTES = 64;

/** Throws InvalidArgumentError unless the extent covers ≥ 1 block with equally sized, non-empty pages. */
export function validateExtent(extent: KvExtent): void {
  const numBlocks = extent.blockHashes.length;
  if (numBlocks === 0) throw new InvalidArgumentError('a KV extent must cover at least one block');
  if (extent.blockHashes.some((hash) => hash.length === 0)) throw new InvalidArgumentError('a KV block hash is empty');
  if (extent.data.byteLength === 0 || extent.data.byteLength % numBlocks !== 0) {
    throw new InvalidArgumentError(
      `a KV extent of ${extent.data.byteLength} bytes cannot hold ${numBlocks} equal pages`,
    );
  }
}

/** Bytes per page of a (valid) extent. */
export function pageSizeBytes(extent: KvExtent): number {
  return extent.data.byteLength / extent.blockHashes.length;
}

/**
 * Merges runs of adjacent small extents (same page size) until each reaches minExtentBytes.
 * NOTE: an extent that is already ≥ minExtentBytes is never merged (merging copies), so a small run
 * just before it goes out undersized; so may the last one. Only small extents are ever copied.
 */
export async function* coalesceExtents(
  source: Iterable<KvExtent> | AsyncIterable<KvExtent>,
  minExtentBytes: number,
): AsyncGenerator<KvExtent> {
  let run: KvExtent[] = [];
  let runBytes = 0;
  for await (const extent of source) {
    validateExtent(extent);
    const first = run[0];
    if (
      first !== undefined &&
      (extent.data.byteLength >= minExtentBytes || pageSizeBytes(extent) !== pageSizeBytes(first))
    ) {
      yield mergeExtents(run);
      run = [];
      runBytes = 0;
    }
    run.push(extent);
    runBytes += extent.data.byteLength;
    if (runBytes >= minExtentBytes) {
      yield mergeExtents(run);
      run = [];
      runBytes = 0;
    }
  }
  if (run.length > 0) yield mergeExtents(run);
}

function mergeExtents(run: readonly KvExtent[]): KvExtent {
  const [only, ...rest] = run;
  if (only !== undefined && rest.length === 0) return only;
  return {
    blockHashes: run.flatMap((extent) => extent.blockHashes),
    data: Buffer.concat(run.map((extent) => extent.data)),
  };
}

/**
 * The chunk messages of one extent; their data are views into extent.data (no copy). The first
 * chunk names the blocks and the extent size, and `namespace` when given.
 */
export function chunksOfExtent(
  extent: KvExtent,
  extentIndex: number,
  maxChunkBytes: number,
  namespace = '',
): WireKvPageChunk[] {
  const bytes = Buffer.from(extent.data.buffer, extent.data.byteOffset, extent.data.byteLength);
  const headerBytes = namespace.length + extent.blockHashes.reduce((sum, hash) => sum + hash.length + 4, 0);
  const firstBudget = Math.max(1, maxChunkBytes - CHUNK_OVERHEAD_BYTES - headerBytes);
  const budget = maxChunkBytes - CHUNK_OVERHEAD_BYTES;
  const chunks: WireKvPageChunk[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const isFirst = offset === 0;
    const end = Math.min(bytes.byteLength, offset + (isFirst ? firstBudget : budget));
    chunks.push({
      namespace: isFirst ? namespace : '',
      extentIndex,
      blockHashes: isFirst ? extent.blockHashes : [],
      extentSizeBytes: isFirst ? bytes.byteLength : 0,
      offsetBytes: offset,
      data: bytes.subarray(offset, end),
    });
    offset = end;
  }
  return chunks;
}

interface PartialExtent {
  readonly blockHashes: readonly string[];
  readonly buffer: Buffer;
  receivedBytes: number;
}

/**
 * Rebuilds extents from chunks in arrival order.
 * Invariants: extents complete in index order 0, 1, 2, …; an extent's chunks arrive without gaps or
 * overlaps; the total size never exceeds maxTotalBytes. Any violation throws (DataLossError, or
 * ResourceExhaustedError for the size bound) and the assembler must not be used again.
 */
export class ExtentAssembler {
  readonly #maxTotalBytes: number;
  #totalBytes = 0;
  #nextIndex = 0;
  #current: PartialExtent | undefined;

  constructor(maxTotalBytes: number) {
    this.#maxTotalBytes = maxTotalBytes;
  }

  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Takes the next chunk; returns the extent it completes, if any. */
  accept(chunk: WireKvPageChunk): KvExtent | undefined {
    const current = this.#current ?? this.#begin(chunk);
    if (chunk.extentIndex !== this.#nextIndex || chunk.offsetBytes !== current.receivedBytes) {
      throw new DataLossError(
        `KV chunk for extent ${chunk.extentIndex} at offset ${chunk.offsetBytes}, expected extent ${this.#nextIndex} at ${current.receivedBytes}`,
      );
    }
    if (current.receivedBytes + chunk.data.byteLength > current.buffer.byteLength) {
      throw new DataLossError(
        `KV extent ${chunk.extentIndex} overflows its declared ${current.buffer.byteLength} bytes`,
      );
    }
    // A single-chunk extent keeps the received bytes (see #begin); others are copied together.
    if (current.buffer !== chunk.data) chunk.data.copy(current.buffer, current.receivedBytes);
    current.receivedBytes += chunk.data.byteLength;
    if (current.receivedBytes < current.buffer.byteLength) return undefined;
    this.#current = undefined;
    this.#nextIndex++;
    return { blockHashes: current.blockHashes, data: current.buffer };
  }

  /** Call at the end of the stream: throws DataLossError if an extent was cut short. */
  finish(): void {
    if (this.#current !== undefined) {
      throw new DataLossError(`KV stream ended inside extent ${this.#nextIndex}`);
    }
  }

  #begin(chunk: WireKvPageChunk): PartialExtent {
    const sizeBytes = chunk.extentSizeBytes;
    const numBlocks = chunk.blockHashes.length;
    if (numBlocks === 0 || !Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % numBlocks !== 0) {
      throw new DataLossError(`KV extent ${chunk.extentIndex} starts without a valid size and block list`);
    }
    if (this.#totalBytes + sizeBytes > this.#maxTotalBytes) {
      throw new ResourceExhaustedError(`KV transfer exceeds ${this.#maxTotalBytes} bytes`);
    }
    this.#totalBytes += sizeBytes;
    const current: PartialExtent = {
      blockHashes: [...chunk.blockHashes],
      buffer: chunk.data.byteLength === sizeBytes ? chunk.data : Buffer.allocUnsafe(sizeBytes),
      receivedBytes: 0,
    };
    this.#current = current;
    return current;
  }
}
