/**
 * The block pool: mechanism only (vLLM v1 `BlockPool`, nano-vllm `BlockManager`). Policy — which blocks
 * a sequence gets — lives in KvCacheManager.
 *
 * Invariants (kept by this class):
 * - Blocks 0..numBlocks-1 exist for the pool's lifetime; a block is in the free queue ⇔ its ref count is 0.
 * - The free queue is LRU-first: freed blocks join the tail, allocation takes the head, so the block
 *   freed longest ago is reused first.
 * - Lazy eviction: a freed block keeps its hash and stays findable (and revivable by `touch`) until
 *   `allocate` takes it; only then is its hash dropped (a `removed` event).
 * - `#byHash.get(h) === b` ⇔ `#hashes[b] === h`: at most one block per hash. A second block computed
 *   with the same hash (two sequences prefilling the same prefix at once) stays unhashed; it is correct,
 *   only not shareable.
 */
import type { BlockHash } from './block-hash.ts';
import { FreeBlockQueue } from './free-block-queue.ts';

export type BlockPoolEvent =
  | { readonly type: 'stored'; readonly blockHash: BlockHash; readonly blockId: number }
  | { readonly type: 'removed'; readonly blockHash: BlockHash; readonly blockId: number };

export interface BlockPoolOptions {
  readonly numBlocks: number;
  /** Tokens per block. */
  readonly blockSize: number;
  /** Called synchronously when a hash is registered or evicted (feeds KV events). */
  readonly onEvent?: (event: BlockPoolEvent) => void;
}

/** Not enough free blocks: an expected outcome, returned rather than thrown. */
export interface NoFreeBlocks {
  readonly ok: false;
  readonly reason: 'no-free-blocks';
  readonly numFree: number;
  readonly numNeeded: number;
}

export type AllocateBlocksResult = { readonly ok: true; readonly blockIds: readonly number[] } | NoFreeBlocks;

export class BlockPool {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly #refCounts: Int32Array;
  readonly #hashes: (BlockHash | undefined)[];
  /** Token ids of each cached block, for the content check on a hash hit (nano-vllm). */
  readonly #tokens: Uint32Array;
  readonly #byHash = new Map<BlockHash, number>();
  readonly #free: FreeBlockQueue;
  readonly #onEvent: ((event: BlockPoolEvent) => void) | undefined;

  constructor(options: BlockPoolOptions) {
    const { numBlocks, blockSize } = options;
    if (!Number.isInteger(numBlocks) || numBlocks < 1)
      throw new RangeError(`numBlocks must be an integer ≥ 1, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1)
      throw new RangeError(`blockSize must be an integer ≥ 1, got ${blockSize}`);
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.#refCounts = new Int32Array(numBlocks);
    this.#hashes = new Array<BlockHash | undefined>(numBlocks).fill(undefined);
    this.#tokens = new Uint32Array(numBlocks * blockSize);
    this.#free = new FreeBlockQueue(numBlocks);
    this.#onEvent = options.onEvent;
  }

  /** Blocks with ref count 0, cached or not. */
  get numFreeBlocks(): number {
    return this.#free.length;
  }

  /** Blocks whose hash is registered (in use or free-but-revivable). */
  get numCachedBlocks(): number {
    return this.#byHash.size;
  }

  /** Every registered hash (in use or free-but-revivable), e.g. for a KV-event snapshot. */
  cachedHashes(): BlockHash[] {
    return [...this.#byHash.keys()];
  }

  refCount(blockId: number): number {
    return this.#refCounts[this.#checkId(blockId)] ?? 0;
  }

  blockHash(blockId: number): BlockHash | undefined {
    return this.#hashes[this.#checkId(blockId)];
  }

  /** Free block ids, next to be reused first (O(n); for tests and debugging). */
  freeQueue(): number[] {
    return this.#free.toArray();
  }

  /** The block registered under `hash` (in use or free-but-revivable), without a content check. */
  cachedBlockOf(hash: BlockHash): number | undefined {
    return this.#byHash.get(hash);
  }

  /** A copy of the token ids stored with block `blockId` (meaningful while it holds a hash). */
  blockTokens(blockId: number): Uint32Array {
    const base = this.#checkId(blockId) * this.blockSize;
    return this.#tokens.slice(base, base + this.blockSize);
  }

  /**
   * Takes `count` blocks from the head of the free queue, evicting their hashes, each with ref count 1.
   * All or nothing: on failure nothing changes.
   */
  allocate(count: number): AllocateBlocksResult {
    if (count > this.#free.length)
      return { ok: false, reason: 'no-free-blocks', numFree: this.#free.length, numNeeded: count };
    const blockIds: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.#free.popFront();
      if (id === undefined) throw new Error('free queue shorter than its length');
      this.#evictHash(id);
      this.#refCounts[id] = 1;
      blockIds.push(id);
    }
    return { ok: true, blockIds };
  }

  /** Takes one more reference on each block; a free (cached) block leaves the free queue — a revival. */
  touch(blockIds: readonly number[]): void {
    for (const id of blockIds) {
      if (this.refCount(id) === 0) this.#free.remove(id);
      this.#refCounts[id] = (this.#refCounts[id] ?? 0) + 1;
    }
  }

  /**
   * Drops one reference on each block, in the order given; a block reaching 0 joins the free-queue tail
   * with its hash kept. Throws on a block that is already free (a double free is a bug).
   */
  free(blockIds: readonly number[]): void {
    for (const id of blockIds) {
      const ref = this.refCount(id);
      if (ref === 0) throw new Error(`block ${id} freed twice`);
      this.#refCounts[id] = ref - 1;
      if (ref === 1) this.#free.pushBack(id);
    }
  }

  /**
   * The block cached under `hash` if its stored tokens equal tokens[start, start + blockSize), else
   * undefined. Takes no reference: call `touch` before anything else can allocate.
   */
  findCachedBlock(hash: BlockHash, tokens: ArrayLike<number>, start: number): number | undefined {
    const id = this.#byHash.get(hash);
    if (id === undefined) return undefined;
    const base = id * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) {
      if (this.#tokens[base + i] !== tokens[start + i]) return undefined;
    }
    return id;
  }

  /**
   * Registers a full, in-use block under `hash`, storing its tokens tokens[start, start + blockSize).
   * Returns false (and changes nothing) if another block already holds this hash. Re-registering the
   * same hash is a no-op; a different hash on an already hashed block throws (full blocks never change).
   */
  cacheFullBlock(blockId: number, hash: BlockHash, tokens: ArrayLike<number>, start: number): boolean {
    if (this.refCount(blockId) === 0) throw new Error(`block ${blockId} is free; only in-use blocks are cached`);
    const current = this.#hashes[blockId];
    if (current === hash) return true;
    if (current !== undefined) throw new Error(`block ${blockId} already holds hash ${current}`);
    if (this.#byHash.has(hash)) return false;
    if (start < 0 || start + this.blockSize > tokens.length)
      throw new RangeError(`block tokens [${start}, ${start + this.blockSize}) exceed ${tokens.length}`);
    const base = blockId * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) this.#tokens[base + i] = tokens[start + i] ?? 0;
    this.#hashes[blockId] = hash;
    this.#byHash.set(hash, blockId);
    this.#onEvent?.({ type: 'stored', blockHash: hash, blockId });
    return true;
  }

  #evictHash(id: number): void {
    const hash = this.#hashes[id];
    if (hash === undefined) return;
    this.#hashes[id] = undefined;
    this.#byHash.delete(hash);
    this.#onEvent?.({ type: 'removed', blockHash: hash, blockId: id });
  }

  #checkId(blockId: number): number {
    if (!Number.isInteger(blockId) || blockId < 0 || blockId >= this.numBlocks) {
      throw new RangeError(`block id ${blockId} outside [0, ${this.numBlocks})`);
    }
    return blockId;
  }
}
