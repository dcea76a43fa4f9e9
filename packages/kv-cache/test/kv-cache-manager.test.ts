import { describe, expect, it } from 'vitest';
import { BlockPool, KvCacheManager, hashBlocks, kvNamespace } from '../src/index.ts';
import type { BlockHash } from '../src/index.ts';

const ns = kvNamespace({ modelId: 'tiny', weightsDigestHex: '0'.repeat(64), kvDtype: 'f32', blockSize: 4, salt: '' });
const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const hashesOf = (tokens: number[]): BlockHash[] => hashBlocks(ns, tokens, 4);

function setup(numBlocks: number): { pool: BlockPool; kv: KvCacheManager } {
  const pool = new BlockPool({ numBlocks, blockSize: 4 });
  return { pool, kv: new KvCacheManager(pool) };
}

/** Runs a prompt as a new sequence: look up the prefix, allocate, commit its full blocks. */
function admit(kv: KvCacheManager, seqId: string, tokens: number[]): readonly number[] {
  const prefix = kv.findCachedPrefix(hashesOf(tokens), tokens);
  const result = kv.allocate(seqId, tokens.length, prefix.blockIds);
  if (!result.ok) throw new Error('allocation failed');
  kv.commitFullBlocks(seqId, hashesOf(tokens), tokens);
  return kv.blockTable(seqId);
}

describe('KvCacheManager', () => {
  it('allocates a block table that covers the requested tokens', () => {
    const { kv } = setup(8);
    expect(kv.allocate('a', 10)).toEqual({ ok: true, newBlockIds: [0, 1, 2] });
    expect(kv.blockTable('a')).toEqual([0, 1, 2]);
    expect(kv.numFreeBlocks).toBe(5);
    expect(kv.usage).toBe(3 / 8);
  });

  it('frees tail blocks first so prefix blocks are evicted last', () => {
    const { pool, kv } = setup(5);
    kv.allocate('a', 10);
    expect(kv.free('a')).toBe(true);
    expect(pool.freeQueue()).toEqual([3, 4, 2, 1, 0]);
    expect(kv.hasSequence('a')).toBe(false);
  });

  it('reuses a freed prefix block before evicting it', () => {
    const { pool, kv } = setup(5);
    admit(kv, 'a', prompt);
    kv.free('a');
    expect(kv.findCachedPrefix(hashesOf(prompt), prompt)).toEqual({ blockIds: [0, 1], numCachedTokens: 8 });
    expect(kv.allocate('b', 10, [0, 1])).toEqual({ ok: true, newBlockIds: [3] });
    expect(kv.blockTable('b')).toEqual([0, 1, 3]);
    expect([0, 1, 2, 3, 4].map((id) => pool.refCount(id))).toEqual([1, 1, 0, 1, 0]);
    expect(pool.freeQueue()).toEqual([4, 2]);
  });

  it('shares cached blocks between live sequences through ref counts', () => {
    const { pool, kv } = setup(8);
    admit(kv, 'a', prompt);
    expect(admit(kv, 'b', [...prompt.slice(0, 8), 42])).toEqual([0, 1, 3]);
    expect([pool.refCount(0), pool.refCount(1), pool.refCount(2), pool.refCount(3)]).toEqual([2, 2, 1, 1]);
    kv.free('a');
    expect([pool.refCount(0), pool.refCount(1)]).toEqual([1, 1]);
    expect(pool.freeQueue()).toEqual([4, 5, 6, 7, 2]);
  });

  it('leaves at least one prompt token to compute', () => {
    const { kv } = setup(4);
    admit(kv, 'a', prompt);
    const eight = prompt.slice(0, 8);
    expect(kv.findCachedPrefix(hashesOf(eight), eight)).toEqual({ blockIds: [0], numCachedTokens: 4 });
  });

  it('stops at the first block that is not cached', () => {
    const { kv } = setup(8);
    admit(kv, 'a', prompt);
    const other = [1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 9];
    expect(kv.findCachedPrefix(hashesOf(other), other)).toEqual({ blockIds: [0], numCachedTokens: 4 });
  });

  it('counts prefix queries and hit tokens', () => {
    const { kv } = setup(8);
    admit(kv, 'a', prompt);
    admit(kv, 'b', prompt);
    expect([kv.numPrefixQueries, kv.numPrefixQueryTokens, kv.numPrefixHitTokens]).toEqual([2, 20, 8]);
  });

  it('changes nothing when an allocation cannot be satisfied', () => {
    const { pool, kv } = setup(4);
    kv.allocate('a', 12);
    expect(kv.allocate('b', 5)).toEqual({ ok: false, reason: 'no-free-blocks', numFree: 1, numNeeded: 2 });
    expect(kv.hasSequence('b')).toBe(false);
    expect(pool.freeQueue()).toEqual([3]);
  });

  it('counts reviving free cached blocks against the free blocks', () => {
    const { pool, kv } = setup(4);
    admit(kv, 'a', prompt.slice(0, 8));
    kv.free('a');
    kv.allocate('c', 8);
    expect(pool.freeQueue()).toEqual([1, 0]);
    const nine = prompt.slice(0, 9);
    const prefix = kv.findCachedPrefix(hashesOf(nine), nine);
    expect(prefix.blockIds).toEqual([0, 1]);
    expect(kv.allocate('b', 9, prefix.blockIds)).toEqual({
      ok: false,
      reason: 'no-free-blocks',
      numFree: 2,
      numNeeded: 3,
    });
    expect(pool.freeQueue()).toEqual([1, 0]);
    expect([pool.refCount(0), pool.refCount(1)]).toEqual([0, 0]);
    expect(pool.blockHash(0)).toBe(hashesOf(nine)[0]);
  });

  it('grows a table by whole blocks only when needed, append-only', () => {
    const { kv } = setup(3);
    kv.allocate('a', 4);
    expect(kv.appendSlots('a', 4)).toEqual({ ok: true, newBlockIds: [] });
    expect(kv.appendSlots('a', 5)).toEqual({ ok: true, newBlockIds: [1] });
    expect(kv.appendSlots('a', 8)).toEqual({ ok: true, newBlockIds: [] });
    expect(kv.appendSlots('a', 16)).toEqual({ ok: false, reason: 'no-free-blocks', numFree: 1, numNeeded: 2 });
    expect(kv.blockTable('a')).toEqual([0, 1]);
    expect(kv.appendSlots('a', 12)).toEqual({ ok: true, newBlockIds: [2] });
    expect(kv.blockTable('a')).toEqual([0, 1, 2]);
  });

  it('commits newly full blocks during decode so later prompts can share them', () => {
    const { pool, kv } = setup(4);
    const tokens = [1, 2, 3];
    kv.allocate('a', 3);
    kv.commitFullBlocks('a', hashesOf(tokens), tokens);
    expect(pool.blockHash(0)).toBeUndefined();
    tokens.push(4, 5);
    kv.appendSlots('a', tokens.length);
    kv.commitFullBlocks('a', hashesOf(tokens), tokens);
    expect([pool.blockHash(0), pool.blockHash(1)]).toEqual([hashesOf(tokens)[0], undefined]);
    expect(() => kv.commitFullBlocks('a', hashesOf([...tokens, 6, 7, 8, 9, 10, 11, 12]), tokens)).toThrow(RangeError);
  });

  it('treats sequence ids as a contract: unknown ids throw typed errors, free reports false', () => {
    const { kv } = setup(2);
    expect(() => kv.blockTable('nope')).toThrow(
      expect.objectContaining({ name: 'UnknownSequenceError', code: 'unknown-sequence' }),
    );
    expect(kv.free('nope')).toBe(false);
    kv.allocate('a', 1);
    expect(() => kv.allocate('a', 1)).toThrow(expect.objectContaining({ code: 'duplicate-sequence' }));
  });
});
