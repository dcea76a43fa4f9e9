/**
 * Policy on top of the block pool (vLLM v1 `KVCacheManager`): which blocks each sequence holds, prefix
 * reuse, growth and release. All counts are plain numbers the telemetry reads.
 *
 * Invariants (kept by this class):
 * - A block table is append-only while its sequence lives: entry i always covers tokens
 *   [i·blockSize, (i+1)·blockSize), so slots already handed to the attention op never move.
 * - Each live sequence holds exactly one reference on each block of its table.
 * - Every operation that can fail for lack of blocks checks first and changes nothing on failure.
 * - `free` releases blocks tail first, so a sequence's prefix blocks are evicted last (vLLM's rule).
 */
import type { BlockHash } from './block-hash.ts';
import type { BlockPool, NoFreeBlocks } from './block-pool.ts';
import { DuplicateSequenceError, UnknownSequenceError } from './errors.ts';

export interface CachedPrefix {
  /** Leading blocks found in the cache, in order; no references taken yet. */
  readonly blockIds: readonly number[];
  readonly numCachedTokens: number;
}

export type AllocateSlotsResult = { readonly ok: true; readonly newBlockIds: readonly number[] } | NoFreeBlocks;

interface SequenceBlocks {
  readonly blockIds: number[];
  /** Leading blocks whose hash is registered (or that came from the cache). */
  numCommitted: number;
}

export class KvCacheManager {
  readonly #pool: BlockPool;
  readonly #sequences = new Map<string, SequenceBlocks>();
  #numPrefixQueries = 0;
  #numPrefixQueryTokens = 0;
  #numPrefixHitTokens = 0;

  constructor(pool: BlockPool) {
    this.#pool = pool;
  }

  get blockSize(): number {
    return this.#pool.blockSize;
  }

  get numFreeBlocks(): number {
    return this.#pool.numFreeBlocks;
  }

  /** Fraction of blocks held by live sequences, in [0, 1]. Free-but-cached blocks count as free. */
  get usage(): number {
    return 1 - this.#pool.numFreeBlocks / this.#pool.numBlocks;
  }

  /** findCachedPrefix calls. */
  get numPrefixQueries(): number {
    return this.#numPrefixQueries;
  }

  /** Prompt tokens looked up by findCachedPrefix. */
  get numPrefixQueryTokens(): number {
    return this.#numPrefixQueryTokens;
  }

  /** Of those, tokens found cached (hit rate = hit tokens ÷ query tokens). */
  get numPrefixHitTokens(): number {
    return this.#numPrefixHitTokens;
  }

  hasSequence(seqId: string): boolean {
    return this.#sequences.has(seqId);
  }

  /** The sequence's block table (a live, append-only view; do not keep it past `free`). */
  blockTable(seqId: string): readonly number[] {
    return this.#get(seqId).blockIds;
  }

  /**
   * The longest run of leading full blocks of `tokens` that is cached (hash hit and equal tokens).
   * Never covers the whole prompt: at least one token is left to compute, so the step has logits
   * (vLLM's rule). Takes no references — pass the result to `allocate` before anything else allocates.
   */
  findCachedPrefix(hashes: readonly BlockHash[], tokens: ArrayLike<number>): CachedPrefix {
    const blockSize = this.#pool.blockSize;
    const maxBlocks = Math.min(hashes.length, Math.floor(Math.max(tokens.length - 1, 0) / blockSize));
    const blockIds: number[] = [];
    for (const hash of hashes.slice(0, maxBlocks)) {
      const id = this.#pool.findCachedBlock(hash, tokens, blockIds.length * blockSize);
      if (id === undefined) break;
      blockIds.push(id);
    }
    const numCachedTokens = blockIds.length * blockSize;
    this.#numPrefixQueries++;
    this.#numPrefixQueryTokens += tokens.length;
    this.#numPrefixHitTokens += numCachedTokens;
    return { blockIds, numCachedTokens };
  }

  /**
   * Creates the block table of a new sequence: references the cached prefix blocks (reviving free ones)
   * and allocates fresh blocks until the table covers `numTokensNeeded` tokens. On failure nothing changes.
   */
  allocate(seqId: string, numTokensNeeded: number, cachedBlockIds: readonly number[] = []): AllocateSlotsResult {
    if (this.#sequences.has(seqId)) throw new DuplicateSequenceError(seqId);
    const numBlocksNeeded = this.#blocksFor(numTokensNeeded);
    if (cachedBlockIds.length > numBlocksNeeded) {
      throw new RangeError(
        `${cachedBlockIds.length} cached blocks exceed the ${numBlocksNeeded} needed for ${numTokensNeeded} tokens`,
      );
    }
    for (const id of cachedBlockIds) {
      if (this.#pool.blockHash(id) === undefined)
        throw new Error(`block ${id} is no longer cached; look the prefix up again`);
    }
    const numNew = numBlocksNeeded - cachedBlockIds.length;
    // Reviving a free cached block takes it out of the free queue too, so it counts against the free blocks.
    const numRevived = cachedBlockIds.filter((id) => this.#pool.refCount(id) === 0).length;
    const numFree = this.#pool.numFreeBlocks;
    if (numNew + numRevived > numFree)
      return { ok: false, reason: 'no-free-blocks', numFree, numNeeded: numNew + numRevived };

    this.#pool.touch(cachedBlockIds);
    const newBlockIds = this.#takeBlocks(numNew);
    this.#sequences.set(seqId, { blockIds: [...cachedBlockIds, ...newBlockIds], numCommitted: cachedBlockIds.length });
    return { ok: true, newBlockIds };
  }

  /**
   * Grows a sequence's table to cover `newTotalTokens` (decode, or the next prefill chunk). Allocates
   * nothing when the table already suffices. On failure nothing changes.
   */
  appendSlots(seqId: string, newTotalTokens: number): AllocateSlotsResult {
    const seq = this.#get(seqId);
    const numNew = Math.max(0, this.#blocksFor(newTotalTokens) - seq.blockIds.length);
    const numFree = this.#pool.numFreeBlocks;
    if (numNew > numFree) return { ok: false, reason: 'no-free-blocks', numFree, numNeeded: numNew };
    const newBlockIds = this.#takeBlocks(numNew);
    seq.blockIds.push(...newBlockIds);
    return { ok: true, newBlockIds };
  }

  /**
   * Registers the hashes of the sequence's newly full blocks so other sequences can share them.
   * `hashes` are the chained hashes of blocks 0..hashes.length-1 and `tokens` the sequence's tokens;
   * call only once those blocks' K/V has been written. Blocks already committed are skipped.
   */
  commitFullBlocks(seqId: string, hashes: readonly BlockHash[], tokens: ArrayLike<number>): void {
    const seq = this.#get(seqId);
    const blockSize = this.#pool.blockSize;
    if (hashes.length > seq.blockIds.length || hashes.length * blockSize > tokens.length) {
      throw new RangeError(`${hashes.length} hashes for ${seq.blockIds.length} blocks and ${tokens.length} tokens`);
    }
    for (let i = seq.numCommitted; i < hashes.length; i++) {
      const blockId = seq.blockIds[i];
      const hash = hashes[i];
      if (blockId === undefined || hash === undefined) break;
      this.#pool.cacheFullBlock(blockId, hash, tokens, i * blockSize);
    }
    seq.numCommitted = Math.max(seq.numCommitted, hashes.length);
  }

  /** Releases a sequence's blocks, tail first; their hashes stay findable until reused. False if unknown. */
  free(seqId: string): boolean {
    const seq = this.#sequences.get(seqId);
    if (seq === undefined) return false;
    this.#pool.free(seq.blockIds.toReversed());
    this.#sequences.delete(seqId);
    return true;
  }

  #takeBlocks(count: number): readonly number[] {
    const result = this.#pool.allocate(count);
    // Checked by the caller beforehand; failing here would be a bug in this class.
    if (!result.ok) throw new Error(`allocation of ${count} blocks failed after the free check`);
    return result.blockIds;
  }

  #blocksFor(numTokens: number): number {
    if (!Number.isInteger(numTokens) || numTokens < 0)
      throw new RangeError(`token count must be an integer ≥ 0, got ${numTokens}`);
    return Math.ceil(numTokens / this.#pool.blockSize);
  }

  #get(seqId: string): SequenceBlocks {
    const seq = this.#sequences.get(seqId);
    if (seq === undefined) throw new UnknownSequenceError(seqId);
    return seq;
  }
}
