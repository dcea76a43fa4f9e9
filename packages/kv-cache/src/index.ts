/**
 * @switchyard/kv-cache — the paged KV cache's bookkeeping: chained prefix hashes, the block pool with its
 * LRU free queue, per-sequence block tables, and the page wire format. No I/O; `node:crypto` only for
 * SHA-256. The K/V tensors themselves live with the attention op; blocks are the unit of accounting,
 * prefix sharing and transfer.
 */
export type { BlockHash, KvNamespaceParams } from './block-hash.ts';
export {
  asBlockHash,
  bytesToHex,
  hashBlock,
  hashBlocks,
  hexToBytes,
  isBlockHash,
  kvNamespace,
  kvNamespaceString,
} from './block-hash.ts';
export { FreeBlockQueue } from './free-block-queue.ts';
export type { AllocateBlocksResult, BlockPoolEvent, BlockPoolOptions, NoFreeBlocks } from './block-pool.ts';
export { BlockPool } from './block-pool.ts';
export type { AllocateSlotsResult, CachedPrefix } from './kv-cache-manager.ts';
export { KvCacheManager } from './kv-cache-manager.ts';
export type { KvEventBatch, KvEventBatcherOptions, KvEventOp } from './kv-events.ts';
export { KvEventBatcher } from './kv-events.ts';
export type { ApplyOutcome, EngineIndexState, PrefixIndexOptions } from './prefix-index.ts';
export { ClusterPrefixIndex } from './prefix-index.ts';
export type { KvPage } from './page-codec.ts';
export { decodePages, encodePages } from './page-codec.ts';
export {
  DuplicateSequenceError,
  MalformedPagesError,
  PageChecksumError,
  UnknownSequenceError,
  UnsupportedPagesVersionError,
} from './errors.ts';
