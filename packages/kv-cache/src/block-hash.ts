/**
 * Chained prefix hashes of full KV blocks (docs/architecture.md §6, vectors in packages/kv-cache/test/fixtures/kv-block-hash.json):
 *
 *   ns = SHA-256(utf8("switchyard-kv/v1|model=<id>|weights=<hex>|dtype=<kv dtype>|block=<n>|salt=<salt>"))
 *   h0 = SHA-256(ns ‖ tokens of block 0),  hi = SHA-256(h(i-1) ‖ tokens of block i)
 *
 * Tokens are little-endian uint32; only full blocks are hashed. A block's hash therefore names its whole
 * prefix, so equal hashes on two nodes mean the same KV content (same model, weights, dtype, tenant).
 */
import { createHash } from 'node:crypto';

/** Lower-case hex SHA-256 (64 characters) of a full block and, through the chain, of its whole prefix. */
export type BlockHash = string & { readonly __brand: 'BlockHash' };

/** Everything that makes two caches' KV bytes interchangeable. */
export interface KvNamespaceParams {
  readonly modelId: string;
  /** Hex digest of the weights (changing weights must not hit old pages). */
  readonly weightsDigestHex: string;
  /** KV dtype, e.g. `f32`, `int8`. */
  readonly kvDtype: string;
  readonly blockSize: number;
  /** Per-tenant salt, set by the server and never taken from the client; `''` for none. */
  readonly salt: string;
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The namespace string exactly as hashed. */
export function kvNamespaceString(p: KvNamespaceParams): string {
  return `switchyard-kv/v1|model=${p.modelId}|weights=${p.weightsDigestHex}|dtype=${p.kvDtype}|block=${p.blockSize}|salt=${p.salt}`;
}

/** ns = SHA-256(utf8(namespace string)), 32 bytes: the parent of block 0. */
export function kvNamespace(p: KvNamespaceParams): Uint8Array {
  return createHash('sha256').update(kvNamespaceString(p), 'utf8').digest();
}

export function isBlockHash(value: string): value is BlockHash {
  return HASH_PATTERN.test(value);
}

/** Brands a hash that arrived from outside (wire, events); throws RangeError if it is not 64 lower-case hex. */
export function asBlockHash(value: string): BlockHash {
  if (!isBlockHash(value)) throw new RangeError(`not a block hash: ${JSON.stringify(value)}`);
  return value;
}

/**
 * Hashes one block, tokens[start, start + blockSize), given its parent: the namespace bytes for block 0,
 * else the previous block's hash. The incremental step the engine calls each time a block fills.
 */
export function hashBlock(
  parent: Uint8Array | BlockHash,
  tokens: ArrayLike<number>,
  blockSize: number,
  start = 0,
): BlockHash {
  return bytesToHex(digestBlock(typeof parent === 'string' ? hexToBytes(parent) : parent, tokens, blockSize, start));
}

/**
 * Hashes the full blocks startBlock, startBlock + 1, … of `tokens` (a trailing partial block is ignored).
 * `parent` is the hash of block startBlock − 1 and is required when startBlock > 0.
 */
export function hashBlocks(
  ns: Uint8Array,
  tokens: ArrayLike<number>,
  blockSize: number,
  startBlock = 0,
  parent?: BlockHash,
): BlockHash[] {
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new RangeError(`blockSize must be an integer ≥ 1, got ${blockSize}`);
  if (startBlock > 0 && parent === undefined)
    throw new RangeError(`hashBlocks: block ${startBlock} needs its parent hash`);
  let previous = startBlock > 0 && parent !== undefined ? hexToBytes(parent) : ns;
  const hashes: BlockHash[] = [];
  const numFull = Math.floor(tokens.length / blockSize);
  for (let b = startBlock; b < numFull; b++) {
    previous = digestBlock(previous, tokens, blockSize, b * blockSize);
    hashes.push(bytesToHex(previous));
  }
  return hashes;
}

function digestBlock(parent: Uint8Array, tokens: ArrayLike<number>, blockSize: number, start: number): Uint8Array {
  if (parent.length !== 32) throw new RangeError(`parent must be 32 bytes, got ${parent.length}`);
  if (start < 0 || start + blockSize > tokens.length)
    throw new RangeError(`block [${start}, ${start + blockSize}) exceeds ${tokens.length} tokens`);
  const bytes = new Uint8Array(blockSize * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < blockSize; i++) {
    const token = tokens[start + i] ?? -1;
    if (!Number.isInteger(token) || token < 0 || token > 0xffff_ffff)
      throw new RangeError(`token ${token} is not a uint32`);
    view.setUint32(i * 4, token, true);
  }
  return createHash('sha256').update(parent).update(bytes).digest();
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** 32 raw bytes → BlockHash. */
export function bytesToHex(bytes: Uint8Array): BlockHash {
  let hex = '';
  for (const b of bytes) hex += HEX[b] ?? '';
  return hex as BlockHash;
}

/** BlockHash → 32 raw bytes. */
export function hexToBytes(hash: BlockHash): Uint8Array {
  if (!isBlockHash(hash)) throw new RangeError(`not a block hash: ${JSON.stringify(hash)}`);
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(hash.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
